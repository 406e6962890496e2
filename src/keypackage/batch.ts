/**
 * Batch key package generation. Under Node.js, large batches are spread over a
 * `worker_threads` pool (one worker per core); elsewhere, or for small batches,
 * packages are generated one after another on the calling thread.
 */
import type { Ciphersuite } from "../mls/ciphersuite.js";
import {
  buildKeyPackage,
  buildKeyPackageSync,
  type BuildKeyPackageInput,
  type BuiltKeyPackage,
} from "../mls/keypackage/build.js";
import { suiteImpl } from "../mls/suite.js";

/** Below this many packages, a batch stays on the calling thread (worker hand-off costs more). */
export const PARALLEL_THRESHOLD = 64;

export interface BatchInput extends Omit<BuildKeyPackageInput, "ciphersuite"> {
  ciphersuite: Ciphersuite;
  count: number;
}

/** A pool that builds key packages off the calling thread (Node's worker_threads). */
export interface KeypackageWorkerPool {
  readonly size: number;
  build(input: BatchInput): Promise<BuiltKeyPackage[]>;
}

const isNode = typeof process !== "undefined" && process.versions?.node !== undefined;
let poolPromise: Promise<KeypackageWorkerPool | undefined> | undefined;

async function workerPool(): Promise<KeypackageWorkerPool | undefined> {
  if (!isNode) return undefined;
  poolPromise ??= (async () => {
    try {
      // Non-literal specifier: browser bundlers never follow it.
      const spec = "./batchPool.js";
      const mod = (await import(/* @vite-ignore */ spec)) as {
        sharedWorkerPool(): KeypackageWorkerPool | undefined;
      };
      return mod.sharedWorkerPool();
    } catch {
      return undefined;
    }
  })();
  return poolPromise;
}

/** Build one key package with the active provider (synchronously on node:crypto). */
export async function buildKeypackage(
  input: BuildKeyPackageInput & { ciphersuite: Ciphersuite },
): Promise<BuiltKeyPackage> {
  return buildKeyPackage(await suiteImpl(input.ciphersuite), input);
}

/** Build `count` key packages on this thread, one after another. */
export async function buildKeypackagesHere(input: BatchInput): Promise<BuiltKeyPackage[]> {
  const cs = await suiteImpl(input.ciphersuite);
  const out: BuiltKeyPackage[] = [];
  for (let i = 0; i < input.count; i++)
    out.push(buildKeyPackageSync(cs, input) ?? (await buildKeyPackage(cs, input)));
  return out;
}

/** Build `count` key packages, in parallel when it pays off. */
export async function buildKeypackages(input: BatchInput): Promise<BuiltKeyPackage[]> {
  if (input.count >= PARALLEL_THRESHOLD) {
    const pool = await workerPool();
    if (pool !== undefined && pool.size > 1) return pool.build(input);
  }
  return buildKeypackagesHere(input);
}
