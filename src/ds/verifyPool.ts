/**
 * Signature verification off the event loop (Node.js only, behind the `./ds` subpath): a pool of
 * worker threads sized by the cores. An upload's packages are split into small chunks, and the
 * workers take chunks from the pending uploads in turn, so one client's 1 000-package batch does
 * not hold everybody else's upload behind it. Idle workers never keep the process alive.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { X509TrustStore, X509ValidationResult } from "../pki/validate.js";
import { validateChain, verifyPackage, type VerifyResult } from "./verifyOne.js";

export type { VerifyFailure, VerifyResult, VerifySuccess } from "./verifyOne.js";

/** The pool could not verify (closed, or a worker died): the server answers 503, not a rule. */
export class VerifierUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "VerifierUnavailableError";
  }
}

/** Message to a worker: packages to verify at `nowMs`, or certificate chains to validate against `trust`. */
export interface VerifyRequest {
  id: number;
  nowMs: number;
  packages: Uint8Array[];
  chains?: { trust: X509TrustStore; list: Uint8Array[][] };
}

/** A worker's answer: per package, its ref or the rule broken (or per chain, its validation). */
export interface VerifyReply {
  id: number;
  results: VerifyResult[] | X509ValidationResult[];
}

/** Where RFC 9420 §10.1 verification (signatures) runs. */
export interface PackageVerifier {
  /** Packages waiting or being verified. */
  readonly pending: number;
  /** Per package, in order: its ref when it verifies, else the rule broken. */
  verify(packages: readonly Uint8Array[], nowMs: number): Promise<VerifyResult[]>;
  /**
   * RFC 5280 path validation of X.509 chains (leaf first) at `nowMs` (docs/x509.md, src/ds/x509.ts).
   * Optional: without it the chains are validated on the calling thread.
   */
  validateChains?(
    chains: readonly (readonly Uint8Array[])[],
    trust: X509TrustStore,
    nowMs: number,
  ): Promise<X509ValidationResult[]>;
  /** Start the workers ahead of the first upload (no-op in process). */
  warm(): void;
  /** Stop the workers (a pool of its own only). */
  close(): Promise<void>;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Verification on the calling thread, yielding to the event loop between packages. */
export class InProcessVerifier implements PackageVerifier {
  #pending = 0;

  get pending(): number {
    return this.#pending;
  }

  async verify(packages: readonly Uint8Array[], nowMs: number): Promise<VerifyResult[]> {
    this.#pending += packages.length;
    const out: VerifyResult[] = [];
    try {
      for (const p of packages) {
        out.push(await verifyPackage(p, nowMs));
        this.#pending--;
        await yieldToLoop();
      }
      return out;
    } finally {
      this.#pending -= packages.length - out.length;
    }
  }

  async validateChains(
    chains: readonly (readonly Uint8Array[])[],
    trust: X509TrustStore,
    nowMs: number,
  ): Promise<X509ValidationResult[]> {
    this.#pending += chains.length;
    const out: X509ValidationResult[] = [];
    try {
      for (const c of chains) {
        out.push(await validateChain(c, trust, nowMs));
        this.#pending--;
        await yieldToLoop();
      }
      return out;
    } finally {
      this.#pending -= chains.length - out.length;
    }
  }

  warm(): void {}

  async close(): Promise<void> {}
}

const here = import.meta.url;

function spawnWorker(): Worker {
  if (here.endsWith(".ts")) {
    // From source (tests, tsx): register the TypeScript loader in the worker, then load the entry.
    const entry = JSON.stringify(new URL("./verifyWorker.ts", here).href);
    return new Worker(`import("tsx/esm/api").then((t) => { t.register(); return import(${entry}); });`, {
      eval: true,
    });
  }
  return new Worker(new URL("./verifyWorker.js", here));
}

interface Job {
  /** Packages, or (with `chains`) nothing. */
  packages: readonly Uint8Array[];
  chains?: { trust: X509TrustStore; list: readonly (readonly Uint8Array[])[] };
  /** Items: packages or chains. */
  size: number;
  nowMs: number;
  results: (VerifyResult | X509ValidationResult)[];
  /** Next package index not yet sent. */
  next: number;
  /** Packages answered. */
  done: number;
  failed: boolean;
  resolve: (r: (VerifyResult | X509ValidationResult)[]) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker | undefined;
  /** The chunk in flight: its job and first index. */
  busy: { id: number; job: Job; start: number; count: number } | undefined;
}

/** A pool of verification workers. */
export class WorkerVerifier implements PackageVerifier {
  readonly size: number;
  readonly chunkSize: number;
  readonly #slots: Slot[];
  /** Jobs with chunks still to send, served in turn. */
  #queue: Job[] = [];
  #turn = 0;
  #nextId = 1;
  #pending = 0;
  #closed = false;

  constructor(size: number, options: { chunkSize?: number } = {}) {
    if (!Number.isInteger(size) || size < 1) throw new TypeError("a worker pool needs at least one worker");
    this.size = size;
    this.chunkSize = options.chunkSize ?? 25;
    this.#slots = Array.from({ length: size }, () => ({ worker: undefined, busy: undefined }));
  }

  get pending(): number {
    return this.#pending;
  }

  /** Start every worker now (they load their code in the background), so the first upload does not wait. */
  warm(): void {
    if (this.#closed) return;
    for (const slot of this.#slots) this.#worker(slot);
  }

  verify(packages: readonly Uint8Array[], nowMs: number): Promise<VerifyResult[]> {
    return this.#submit(packages, undefined, packages.length, nowMs) as Promise<VerifyResult[]>;
  }

  /** Chains are scheduled like packages (in turn with the other uploads, counted in `pending`). */
  validateChains(
    chains: readonly (readonly Uint8Array[])[],
    trust: X509TrustStore,
    nowMs: number,
  ): Promise<X509ValidationResult[]> {
    return this.#submit([], { trust, list: chains }, chains.length, nowMs) as Promise<X509ValidationResult[]>;
  }

  #submit(
    packages: readonly Uint8Array[],
    chains: Job["chains"],
    size: number,
    nowMs: number,
  ): Promise<(VerifyResult | X509ValidationResult)[]> {
    if (this.#closed) return Promise.reject(new VerifierUnavailableError("the verification pool is closed"));
    if (size === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#pending += size;
      this.#queue.push({
        packages,
        ...(chains !== undefined ? { chains } : {}),
        size,
        nowMs,
        results: new Array<VerifyResult | X509ValidationResult>(size),
        next: 0,
        done: 0,
        failed: false,
        resolve,
        reject,
      });
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const err = new VerifierUnavailableError("the verification pool is closed");
    for (const job of this.#queue) this.#fail(job, err);
    this.#queue = [];
    await Promise.all(
      this.#slots.map(async (s) => {
        if (s.busy !== undefined) this.#fail(s.busy.job, err);
        s.busy = undefined;
        const w = s.worker;
        s.worker = undefined;
        if (w !== undefined) await w.terminate();
      }),
    );
  }

  #fail(job: Job, err: Error): void {
    if (job.failed) return;
    job.failed = true;
    this.#pending -= job.size - job.done;
    job.reject(err);
  }

  /** Hand a chunk to every idle worker, taking the pending jobs in turn. */
  #pump(): void {
    for (const slot of this.#slots) {
      if (slot.busy !== undefined) continue;
      this.#queue = this.#queue.filter((j) => !j.failed && j.next < j.size);
      if (this.#queue.length === 0) break;
      this.#turn %= this.#queue.length;
      const job = this.#queue[this.#turn] as Job;
      this.#turn++;
      const start = job.next;
      // A chain costs about as much as a few packages: smaller chunks keep the turns fair.
      const count = Math.min(job.chains !== undefined ? 4 : this.chunkSize, job.size - start);
      job.next += count;
      const id = this.#nextId++;
      slot.busy = { id, job, start, count };
      const w = this.#worker(slot);
      w.ref();
      const req: VerifyRequest = { id, nowMs: job.nowMs, packages: job.packages.slice(start, start + count) };
      if (job.chains !== undefined) {
        req.chains = {
          trust: job.chains.trust,
          list: job.chains.list.slice(start, start + count).map((c) => [...c]),
        };
      }
      w.postMessage(req);
    }
  }

  #worker(slot: Slot): Worker {
    if (slot.worker !== undefined) return slot.worker;
    const w = spawnWorker();
    w.on("message", (reply: VerifyReply) => {
      const busy = slot.busy;
      if (busy === undefined || busy.id !== reply.id) return;
      slot.busy = undefined;
      w.unref();
      const { job, start, count } = busy;
      if (!job.failed) {
        for (let i = 0; i < count; i++) {
          const answer = reply.results[i];
          if (answer === undefined && job.chains !== undefined) {
            this.#fail(job, new VerifierUnavailableError("the verification worker gave no answer"));
            break;
          }
          job.results[start + i] = answer ?? {
            ok: false,
            rule: "validation_error",
            message: "the verification worker gave no answer",
          };
        }
        if (job.failed) {
          this.#pump();
          return;
        }
        job.done += count;
        this.#pending -= count;
        if (job.done === job.size) job.resolve(job.results);
      }
      this.#pump();
    });
    const lost = (err: Error): void => {
      if (slot.worker !== w) return;
      slot.worker = undefined;
      const busy = slot.busy;
      slot.busy = undefined;
      if (busy !== undefined) this.#fail(busy.job, err);
      if (!this.#closed) this.#pump();
    };
    w.on("error", (err) =>
      lost(new VerifierUnavailableError(`a verification worker failed: ${err.message}`, { cause: err })),
    );
    w.on("exit", (code) => lost(new VerifierUnavailableError(`a verification worker exited (${code})`)));
    // After the listeners: adding a "message" listener refs the worker again.
    w.unref();
    slot.worker = w;
    return w;
  }
}

/** Workers for this machine: one per core but one (the event loop's), at most 8. */
export function defaultVerifyWorkers(): number {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

let shared: WorkerVerifier | undefined;

/** The process-wide pool (started lazily; shared by every Delivery Service of the process). */
export function sharedVerifier(): PackageVerifier {
  shared ??= new WorkerVerifier(defaultVerifyWorkers());
  return shared;
}
