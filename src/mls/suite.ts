import { ciphersuiteImpl, setCryptoProvider } from "./crypto/select.js";
import type { Ciphersuite } from "./ciphersuite.js";
import type { CiphersuiteImpl, CryptoProvider } from "./crypto/types.js";

/**
 * Use `provider` for every MLS operation from now on; `undefined` restores the default
 * (node:crypto under Node.js, WebCrypto with @noble fallbacks in browsers).
 */
export function useCryptoProvider(provider: CryptoProvider | undefined): void {
  setCryptoProvider(provider);
}

/** The engine's implementation of a cipher suite with the active provider (cached per provider). */
export function suiteImpl(ciphersuite: Ciphersuite): Promise<CiphersuiteImpl> {
  return ciphersuiteImpl(ciphersuite);
}
