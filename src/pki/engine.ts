/**
 * The pkijs crypto engine used for RFC 5280 path validation: WebCrypto from `globalThis.crypto`
 * (browser-safe). Certificate signatures that are exactly an MLS suite's signature scheme —
 * RFC 8410 PureEdDSA (Ed25519, Ed448: pkijs does not know them), and ECDSA on a suite's curve with
 * that suite's hash (DER signatures, as RFC 9420 §5.1.2) — are verified by the MLS engine's own
 * primitives (one implementation of each; also much faster than importing a WebCrypto key per
 * signature). Anything else goes to WebCrypto through pkijs.
 * Passed explicitly to pkijs calls: the global pkijs engine is never changed.
 */
import * as pkijs from "pkijs";
import { Ciphersuite } from "../mls/ciphersuite.js";
import { suiteImpl } from "../mls/suite.js";

/** RFC 8410 §3 algorithm identifiers. */
export const OID_ED25519 = "1.3.101.112";
export const OID_ED448 = "1.3.101.113";
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";

/** RFC 5758 §3.2 ecdsa-with-SHA* → the named curve (RFC 5480) and the suite of that pair. */
const ECDSA_SUITES: Record<string, { curve: string; suite: Ciphersuite }> = {
  "1.2.840.10045.4.3.2": {
    curve: "1.2.840.10045.3.1.7",
    suite: Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
  },
  "1.2.840.10045.4.3.3": {
    curve: "1.3.132.0.34",
    suite: Ciphersuite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
  },
  "1.2.840.10045.4.3.4": {
    curve: "1.3.132.0.35",
    suite: Ciphersuite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
  },
};

/** The suite whose signature scheme is this certificate signature, if any. */
function engineSuite(signatureOid: string, key: pkijs.PublicKeyInfo): Ciphersuite | undefined {
  if (signatureOid === OID_ED25519) return Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
  if (signatureOid === OID_ED448) return Ciphersuite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448;
  const ecdsa = ECDSA_SUITES[signatureOid];
  if (ecdsa === undefined || key.algorithm.algorithmId !== OID_EC_PUBLIC_KEY) return undefined;
  const params = key.algorithm.algorithmParams as { valueBlock?: { toString(): string } } | undefined;
  return params?.valueBlock?.toString() === ecdsa.curve ? ecdsa.suite : undefined;
}

function bytesOf(data: BufferSource): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

class PkiCryptoEngine extends pkijs.CryptoEngine {
  override async verifyWithPublicKey(
    data: BufferSource,
    signature: Parameters<pkijs.CryptoEngine["verifyWithPublicKey"]>[1],
    publicKeyInfo: pkijs.PublicKeyInfo,
    signatureAlgorithm: pkijs.AlgorithmIdentifier,
    shaAlgorithm?: string,
  ): Promise<boolean> {
    const oid = signatureAlgorithm.algorithmId;
    // RFC 8410 §6: an EdDSA signature needs a key of the same algorithm.
    if ((oid === OID_ED25519 || oid === OID_ED448) && publicKeyInfo.algorithm.algorithmId !== oid)
      return false;
    const suite = shaAlgorithm === undefined ? engineSuite(oid, publicKeyInfo) : undefined;
    if (suite === undefined) {
      return super.verifyWithPublicKey(data, signature, publicKeyInfo, signatureAlgorithm, shaAlgorithm);
    }
    const impl = await suiteImpl(suite);
    return impl.signature.verify(
      publicKeyInfo.subjectPublicKey.valueBlock.valueHexView,
      bytesOf(data),
      signature.valueBlock.valueHexView,
    );
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
