import { getCiphersuiteImpl, type CiphersuiteImpl, type CryptoProvider } from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { selectCryptoProvider } from "./crypto/select.js";
import type { Ciphersuite } from "./ciphersuite.js";

let override: CryptoProvider | undefined;
let cache = new Map<number, Promise<CiphersuiteImpl>>();

/**
 * Use `provider` for every MLS operation from now on (default: node:crypto under Node.js,
 * WebCrypto with @noble fallbacks in browsers).
 */
export function useCryptoProvider(provider: CryptoProvider | undefined): void {
  override = provider;
  cache = new Map();
}

/** The engine's implementation of a cipher suite with the active provider (cached). */
export function suiteImpl(ciphersuite: Ciphersuite): Promise<CiphersuiteImpl> {
  let p = cache.get(ciphersuite);
  if (p === undefined) {
    p = (async () => {
      const provider = override ?? (await selectCryptoProvider());
      return getCiphersuiteImpl(getCiphersuiteFromId(ciphersuite as CiphersuiteId), provider);
    })();
    p.catch(() => cache.delete(ciphersuite));
    cache.set(ciphersuite, p);
  }
  return p;
}
