/** Stores in child processes, driven over IPC: real parallel connections to one SQLite file. */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { DeliveryServiceStore } from "../../src/ds/store.js";
import { ROOT } from "./helpers.js";

const SCRIPT = fileURLToPath(new URL("./storeProcess.ts", import.meta.url));

/** One child process that can open a store and run its methods. */
class StoreProcess {
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;

  private constructor(readonly child: ChildProcess) {
    child.on("message", (m: { id?: number; value?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.value);
    });
    child.once("exit", () => {
      for (const p of this.#pending.values()) p.reject(new Error("store process exited"));
      this.#pending.clear();
    });
  }

  static async start(): Promise<StoreProcess> {
    const child = fork(SCRIPT, [], {
      cwd: ROOT,
      execArgv: ["--import", "tsx"],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`store process exited with ${code}`)));
      child.on("message", (m: { ready?: true }) => {
        if (m.ready) resolve();
      });
    });
    return new StoreProcess(child);
  }

  call(method: string, args: unknown[]): Promise<unknown> {
    if (!this.child.connected) return Promise.reject(new Error("store process gone"));
    return new Promise((resolve, reject) => {
      const id = this.#next++;
      this.#pending.set(id, { resolve, reject });
      this.child.send({ id, method, args });
    });
  }

  /** Open `spec` in the child; the proxy's `close()` closes it there (the process stays). */
  async open(spec: string): Promise<DeliveryServiceStore> {
    await this.call("open", [spec]);
    return new Proxy({} as DeliveryServiceStore, {
      get: (_t, prop) => {
        if (prop === "kind") return "sqlite";
        if (prop === "then") return undefined;
        return (...args: unknown[]) => this.call(String(prop), args);
      },
    });
  }

  stop(): void {
    if (this.child.connected) this.child.send({ id: -1, method: "exit", args: [] });
  }
}

/** Child processes started on first use and reused by every test of a file; `stop()` in afterAll. */
export class StoreProcesses {
  readonly #procs: StoreProcess[] = [];

  /** Open `spec` in `n` processes (started as needed). */
  async open(spec: string, n: number): Promise<DeliveryServiceStore[]> {
    while (this.#procs.length < n) {
      const started = await Promise.all(
        Array.from({ length: n - this.#procs.length }, () => StoreProcess.start()),
      );
      this.#procs.push(...started);
    }
    return Promise.all(this.#procs.slice(0, n).map((p) => p.open(spec)));
  }

  stop(): void {
    for (const p of this.#procs.splice(0)) p.stop();
  }
}
