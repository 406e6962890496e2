/**
 * Batch key package generation. Under Node.js, large batches are spread over a
 * `worker_threads` pool (one worker per core); elsewhere, or for small batches,
 * packages are generated one after another on the calling thread.
 */
import type { Ciphersuite } from "../mls/ciphersuite.js";
import { buildKeypackage, type BuildKeypackageInput, type BuiltKeypackage } from "../mls/keypackage.js";

/** Below this many packages, a batch stays on the calling thread (worker hand-off costs more). */
export const PARALLEL_THRESHOLD = 64;

export interface BatchInput extends Omit<BuildKeypackageInput, "ciphersuite"> {
  ciphersuite: Ciphersuite;
  count: number;
}

/** A pool that builds key packages off the calling thread (Node's worker_threads). */
export interface KeypackageWorkerPool {
  readonly size: number;
  build(input: BatchInput): Promise<BuiltKeypackage[]>;
}

const isNode = typeof process !== "undefined" && process.versions?.node !== undefined;
let poolPromise: Promise<KeypackageWorkerPool | undefined> | undefined;

async function workerPool(): Promise<KeypackageWorkerPool | undefined> {
  if (!isNode) return undefined;
  poolPromise ??= (async () => {
    try {
      // Non-literal specifier: browser bundlers never follow it.
      const spec = "./batchPool.js";
      const mod = (await import(/* @vite-ignore */ spec)) as { sharedWorkerPool(): KeypackageWorkerPool | undefined };
      return mod.sharedWorkerPool();
    } catch {
      return undefined;
    }
  })();
  return poolPromise;
}

/** Build `count` key packages, in parallel when it pays off. */
export async function buildKeypackages(input: BatchInput): Promise<BuiltKeypackage[]> {
  if (input.count >= PARALLEL_THRESHOLD) {
    const pool = await workerPool();
    if (pool !== undefined && pool.size > 1) return pool.build(input);
  }
  const out: BuiltKeypackage[] = [];
  for (let i = 0; i < input.count; i++) out.push(await buildKeypackage(input));
  return out;
}
