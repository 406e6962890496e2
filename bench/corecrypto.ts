/**
 * CoreCrypto 10.3.0 (wasm build) clients for the benchmarks. The loader itself is
 * shared with the interop tests (test/interop/corecrypto.ts).
 */
import type { CipherSuite, CoreCrypto } from "@wireapp/core-crypto/browser";
import { loadCoreCrypto, type CoreCryptoModule } from "../test/interop/corecrypto.js";

export { loadCoreCrypto, type CoreCryptoModule };
type Context = Parameters<Parameters<CoreCrypto["transaction"]>[0]>[0];
type CredentialRef = Parameters<Context["generateKeyPackage"]>[0];

/** A CoreCrypto client with an in-memory database and a basic credential per requested suite. */
export interface CoreCryptoClient {
  readonly cc: CoreCryptoModule;
  readonly core: CoreCrypto;
  /** Suites with a usable credential. */
  readonly suites: readonly number[];
  /** Suites CoreCrypto refused, with its reason (e.g. UnsupportedSignatureScheme). */
  readonly unsupported: ReadonlyMap<number, string>;
  /** Generates `n` key packages for `suite` inside one transaction; returns their count. */
  generateKeyPackages(suite: number, n: number): Promise<number>;
  /** Generates key packages for `suite` in one transaction until `ms` elapsed; returns how many. */
  generateKeyPackagesFor(suite: number, ms: number): Promise<number>;
  /** One key package: its TLS encoding (KeyPackage, no MLSMessage framing) and CoreCrypto's KeyPackageRef. */
  keyPackage(suite: number): Promise<{ bytes: Uint8Array; ref: Uint8Array }>;
}

/** Flattens CoreCrypto's nested uniffi errors into one line. */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    const o = cur as { message?: unknown; inner?: Record<string, unknown> };
    if (typeof o.message === "string" && o.message !== "") parts.push(o.message);
    const inner = o.inner;
    if (inner === undefined || inner === null || typeof inner !== "object") break;
    if (typeof inner.msg === "string") {
      parts.push(inner.msg);
      break;
    }
    cur = Object.values(inner)[0];
  }
  return parts.join(": ") || String(e);
}

/** Creates an in-memory CoreCrypto client (client id on wire.com) with basic credentials for `suites`. */
export async function createCoreCryptoClient(suites: readonly number[] = [1]): Promise<CoreCryptoClient> {
  const cc = await loadCoreCrypto();
  const db = await cc.Database.inMemory();
  const core = cc.CoreCrypto.new(db);
  const clientId = new cc.ClientId(
    new cc.Uuid("3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a"),
    cc.DeviceId.fromHexString("4d2a"),
    "wire.com",
  );
  const transport = {
    async sendCommitBundle(): Promise<void> {},
    async prepareForTransport(): Promise<never> {
      throw new Error("unused");
    },
  };
  const refs = new Map<number, CredentialRef>();
  const unsupported = new Map<number, string>();
  await core.transaction(async (ctx) => {
    await ctx.mlsInit(clientId, transport);
  });
  for (const s of suites) {
    try {
      // Separate transactions: a failed addCredential aborts its transaction.
      await core.transaction(async (ctx) => {
        refs.set(s, await ctx.addCredential(cc.Credential.basic(s as CipherSuite, clientId)));
      });
    } catch (e) {
      unsupported.set(s, describeError(e));
    }
  }
  const refFor = (suite: number): CredentialRef => {
    const r = refs.get(suite);
    if (r === undefined)
      throw new Error(
        `no CoreCrypto credential for suite ${suite}: ${unsupported.get(suite) ?? "not requested"}`,
      );
    return r;
  };
  return {
    cc,
    core,
    suites: [...refs.keys()],
    unsupported,
    async generateKeyPackages(suite, n) {
      const ref = refFor(suite);
      await core.transaction(async (ctx) => {
        for (let i = 0; i < n; i++) await ctx.generateKeyPackage(ref);
      });
      return n;
    },
    async keyPackage(suite) {
      const ref = refFor(suite);
      return core.transaction(async (ctx) => {
        const kp = await ctx.generateKeyPackage(ref);
        return { bytes: kp.serialize(), ref: kp.ref().hashRef() };
      });
    },
    async generateKeyPackagesFor(suite, ms) {
      const ref = refFor(suite);
      let n = 0;
      await core.transaction(async (ctx) => {
        const end = performance.now() + ms;
        do {
          await ctx.generateKeyPackage(ref);
          n++;
        } while (performance.now() < end);
      });
      return n;
    },
  };
}
