/**
 * Node-only worker pool for batch key package generation.
 * Secrets cross threads only inside transferred ArrayBuffers, and each side zeroes
 * its buffer once the keys are copied out.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { BuiltKeyPackage } from "../mls/keypackage/build.js";
import type { BatchInput, KeypackageWorkerPool } from "./batch.js";

/** Message to a worker. `signaturePrivateKey` is a transferred buffer the worker zeroes. */
export interface WorkerRequest {
  id: number;
  input: Omit<BatchInput, "signaturePrivateKey" | "count">;
  count: number;
  signaturePrivateKey: ArrayBuffer;
}

/** Reply from a worker. `secrets` holds initPrivateKey‖encryptionPrivateKey per package; the pool zeroes it. */
export interface WorkerReply {
  id: number;
  error?: string;
  packages: {
    bytes: Uint8Array;
    ref: Uint8Array;
    initPublicKey: Uint8Array;
    encryptionPublicKey: Uint8Array;
    initLen: number;
    encLen: number;
  }[];
  secrets: ArrayBuffer;
}

const here = import.meta.url;
const runningFromSource = here.endsWith(".ts");

function spawn(): Worker {
  let w: Worker;
  if (runningFromSource) {
    // From source (tests, tsx): register the TypeScript loader in the worker, then load the entry.
    const entry = JSON.stringify(new URL("./batchWorker.ts", here).href);
    w = new Worker(`import("tsx/esm/api").then((t) => { t.register(); return import(${entry}); });`, {
      eval: true,
    });
  } else {
    w = new Worker(new URL("./batchWorker.js", here));
  }
  return w;
}

class Pool implements KeypackageWorkerPool {
  readonly size: number;
  readonly #workers: Worker[] = [];
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();

  constructor(size: number) {
    this.size = size;
  }

  #worker(i: number): Worker {
    let w = this.#workers[i];
    if (w === undefined) {
      w = spawn();
      w.on("message", (reply: WorkerReply) => {
        const p = this.#pending.get(reply.id);
        if (p === undefined) return;
        this.#pending.delete(reply.id);
        if (reply.error !== undefined) p.reject(new Error(`key package worker failed: ${reply.error}`));
        else p.resolve(reply);
      });
      w.on("error", (err) => {
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        this.#workers[i] = undefined as unknown as Worker;
      });
      // After the listeners: adding a "message" listener refs the worker again.
      // An idle pool must never keep the process alive.
      w.unref();
      this.#workers[i] = w;
    }
    return w;
  }

  #send(i: number, req: WorkerRequest): Promise<WorkerReply> {
    const w = this.#worker(i);
    // Keep the process alive while a request is in flight; an idle pool never does.
    w.ref();
    const done = new Promise<WorkerReply>((resolve, reject) => {
      this.#pending.set(req.id, { resolve, reject });
      w.postMessage(req, [req.signaturePrivateKey]);
    });
    const idle = () => {
      if (this.#pending.size === 0) for (const worker of this.#workers) worker?.unref();
    };
    done.then(idle, idle);
    return done;
  }

  async build(input: BatchInput): Promise<BuiltKeyPackage[]> {
    const { signaturePrivateKey, count, ...rest } = input;
    const shares = splitEvenly(count, this.size);
    const replies = await Promise.all(
      shares.map((n, i) => {
        const key = new ArrayBuffer(signaturePrivateKey.length);
        new Uint8Array(key).set(signaturePrivateKey);
        return this.#send(i, { id: this.#nextId++, input: rest, count: n, signaturePrivateKey: key });
      }),
    );
    const out: BuiltKeyPackage[] = [];
    for (const reply of replies) {
      const secrets = new Uint8Array(reply.secrets);
      let o = 0;
      for (const p of reply.packages) {
        out.push({
          bytes: p.bytes,
          ref: p.ref,
          initPublicKey: p.initPublicKey,
          encryptionPublicKey: p.encryptionPublicKey,
          initPrivateKey: secrets.slice(o, o + p.initLen),
          encryptionPrivateKey: secrets.slice(o + p.initLen, o + p.initLen + p.encLen),
        });
        o += p.initLen + p.encLen;
      }
      secrets.fill(0);
    }
    return out;
  }
}

function splitEvenly(count: number, parts: number): number[] {
  const base = Math.floor(count / parts);
  const extra = count % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0)).filter((n) => n > 0);
}

let shared: Pool | undefined;

/** The process-wide pool (one worker per core, started lazily, never keeping the process alive). */
export function sharedWorkerPool(): KeypackageWorkerPool | undefined {
  const size = Math.min(availableParallelism(), 8);
  if (size < 2) return undefined;
  shared ??= new Pool(size);
  return shared;
}
