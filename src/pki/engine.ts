/**
 * The pkijs crypto engine used for RFC 5280 path validation: WebCrypto from `globalThis.crypto`
 * (browser-safe), plus EdDSA certificate signatures (RFC 8410: Ed25519, Ed448), which pkijs does
 * not know, verified by the MLS engine's signature primitives (one implementation of each).
 * Passed explicitly to pkijs calls: the global pkijs engine is never changed.
 */
import * as pkijs from "pkijs";
import { Ciphersuite } from "../mls/ciphersuite.js";
import { suiteImpl } from "../mls/suite.js";

/** RFC 8410 §3 algorithm identifiers. */
export const OID_ED25519 = "1.3.101.112";
export const OID_ED448 = "1.3.101.113";

class PkiCryptoEngine extends pkijs.CryptoEngine {
  override async verifyWithPublicKey(
    data: BufferSource,
    signature: Parameters<pkijs.CryptoEngine["verifyWithPublicKey"]>[1],
    publicKeyInfo: pkijs.PublicKeyInfo,
    signatureAlgorithm: pkijs.AlgorithmIdentifier,
    shaAlgorithm?: string,
  ): Promise<boolean> {
    const oid = signatureAlgorithm.algorithmId;
    if (oid === OID_ED25519 || oid === OID_ED448) {
      // RFC 8410 §6: the key's algorithm must be the signature's; PureEdDSA over the TBS bytes.
      if (publicKeyInfo.algorithm.algorithmId !== oid) return false;
      const suite =
        oid === OID_ED25519
          ? Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
          : Ciphersuite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448;
      const impl = await suiteImpl(suite);
      const bytes =
        data instanceof Uint8Array
          ? data
          : ArrayBuffer.isView(data)
            ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
            : new Uint8Array(data);
      return impl.signature.verify(
        publicKeyInfo.subjectPublicKey.valueBlock.valueHexView,
        bytes,
        signature.valueBlock.valueHexView,
      );
    }
    return super.verifyWithPublicKey(data, signature, publicKeyInfo, signatureAlgorithm, shaAlgorithm);
  }
}

let engine: PkiCryptoEngine | undefined;

/** The engine (created on first use; needs `globalThis.crypto.subtle`). */
export function pkiEngine(): pkijs.ICryptoEngine {
  if (engine === undefined) {
    const crypto = globalThis.crypto;
    if (crypto?.subtle === undefined)
      throw new Error("X.509 validation needs WebCrypto (globalThis.crypto.subtle)");
    engine = new PkiCryptoEngine({ name: "mlskp", crypto });
  }
  return engine;
}
