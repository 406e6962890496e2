/**
 * Crypto providers of the engine: node:crypto (fast, Node.js only) and
 * WebCrypto (+@noble fallbacks, browsers), plus runtime selection.
 *
 * `nodeCryptoProvider` is deliberately not re-exported here so that browser
 * bundles of this entry never reach `node:crypto`; import it from
 * `./node.js` directly, or use {@link selectCryptoProvider}.
 * @module
 */
export {
  ciphersuiteImpl,
  ciphersuiteName,
  defaultProvider,
  getCryptoProvider,
  isNodeRuntime,
  selectCryptoProvider,
  setCryptoProvider,
} from "./select.js";
export {
  clearWebKeyCache,
  createWebCryptoProvider,
  webCryptoProvider,
  type WebCryptoProviderOptions,
} from "./webcrypto.js";
export type * from "./types.js";
export { CIPHERSUITES, ciphersuiteParams } from "./suites.js";
