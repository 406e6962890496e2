/**
 * Crypto provider selection: node:crypto under Node.js, WebCrypto elsewhere,
 * with a process-wide override. The node provider is loaded with a dynamic
 * import whose specifier bundlers cannot follow, so browser bundles never
 * pull in `node:crypto`.
 * @module
 */
import { REGISTERED_CIPHERSUITE_NAMES, ciphersuiteParams } from "./suites.js";
import type { CiphersuiteImpl, CiphersuiteName, CryptoProvider } from "./types.js";
import { webCryptoProvider } from "./webcrypto.js";

let override: CryptoProvider | undefined;
let selected: Promise<CryptoProvider> | undefined;

/** True when running on Node.js (not a browser, not a worker without `process`). */
export function isNodeRuntime(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}

// Kept in a variable so bundlers leave the import alone (see module doc).
const NODE_PROVIDER_MODULE = "./node.js";

/** Picks the best provider for this runtime (ignores any override); memoised. */
export function selectCryptoProvider(): Promise<CryptoProvider> {
  selected ??= (async (): Promise<CryptoProvider> => {
    if (isNodeRuntime()) {
      const mod = (await import(/* @vite-ignore */ NODE_PROVIDER_MODULE)) as typeof import("./node.js");
      return mod.nodeCryptoProvider;
    }
    return webCryptoProvider;
  })();
  return selected;
}

/** A provider that resolves to the override, or else to {@link selectCryptoProvider}, on first use. */
export function defaultProvider(): CryptoProvider {
  return lazyProvider;
}

const lazyProvider: CryptoProvider = {
  async getCiphersuiteImpl(cs) {
    const p = override ?? (await selectCryptoProvider());
    return p.getCiphersuiteImpl(cs);
  },
};

/** Sets (or with `undefined`, clears) the process-wide provider override. */
export function setCryptoProvider(p: CryptoProvider | undefined): void {
  override = p;
}

/** The override if set, else the lazily selected default provider. */
export function getCryptoProvider(): CryptoProvider {
  return override ?? lazyProvider;
}

const implCache = new WeakMap<CryptoProvider, Map<number, Promise<CiphersuiteImpl>>>();

/**
 * CiphersuiteImpl for an RFC 9420 cipher suite id (e.g. 1 for
 * MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519), cached per (provider, suite).
 * Uses {@link getCryptoProvider} when no provider is given.
 */
export function ciphersuiteImpl(suite: number, provider?: CryptoProvider): Promise<CiphersuiteImpl> {
  const p = provider ?? getCryptoProvider();
  let perProvider = implCache.get(p);
  if (perProvider === undefined) {
    perProvider = new Map();
    implCache.set(p, perProvider);
  }
  let impl = perProvider.get(suite);
  if (impl === undefined) {
    const cs = ciphersuiteParams(suite);
    if (cs === undefined) return Promise.reject(noSuchSuite(suite));
    impl = p.getCiphersuiteImpl(cs);
    perProvider.set(suite, impl);
    const mine = impl;
    mine.catch(() => {
      if (perProvider.get(suite) === mine) perProvider.delete(suite);
    });
  }
  return impl;
}

/** Convenience: cipher suite name for an id, e.g. 1 -> "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519". */
export function ciphersuiteName(suite: number): CiphersuiteName {
  const cs = ciphersuiteParams(suite);
  if (cs === undefined) throw noSuchSuite(suite);
  return cs.name;
}

/** Outside RFC 9420's 1..7: a registered suite we do not implement, or an unknown number. */
function noSuchSuite(suite: number): RangeError {
  const registered = Object.hasOwn(REGISTERED_CIPHERSUITE_NAMES, suite)
    ? REGISTERED_CIPHERSUITE_NAMES[suite]
    : undefined;
  return new RangeError(
    registered === undefined
      ? `unknown MLS cipher suite ${suite}`
      : `unsupported MLS cipher suite ${suite} (${registered}): only RFC 9420's 1..7 are implemented`,
  );
}
