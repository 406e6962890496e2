/**
 * The light part of Wire's end-to-end identity (no X.509 library): CoreCrypto's `DeviceStatus`,
 * `E2eiConversationState`, `WireIdentity` and the JWK thumbprint of a signature key. Exported by
 * the main entry; certificate reading is in ./identity.ts (`mls-keypackages/x509`).
 */
import { ClientId } from "../credential/clientId.js";
import { CredentialType } from "../credential/credentialType.js";
import { SignatureScheme, type HashName } from "../mls/ciphersuite.js";
import { toBase64Url } from "../mls/crypto/bytes.js";
import { hash } from "../mls/hash.js";
import type { X509ValidationResult } from "./validate.js";

const JWK_CURVES: Partial<Record<SignatureScheme, { kty: "OKP" | "EC"; crv: string }>> = {
  [SignatureScheme.ED25519]: { kty: "OKP", crv: "Ed25519" },
  [SignatureScheme.ED448]: { kty: "OKP", crv: "Ed448" },
  [SignatureScheme.ECDSA_SECP256R1_SHA256]: { kty: "EC", crv: "P-256" },
  [SignatureScheme.ECDSA_SECP384R1_SHA384]: { kty: "EC", crv: "P-384" },
  [SignatureScheme.ECDSA_SECP521R1_SHA512]: { kty: "EC", crv: "P-521" },
};

/**
 * RFC 7638 JWK thumbprint of an MLS signature key (raw Ed key / SEC1 uncompressed point), hashed
 * with `hashName` and base64url-encoded: CoreCrypto's `thumbprint` of a `WireIdentity`.
 */
export function jwkThumbprint(scheme: SignatureScheme, publicKey: Uint8Array, hashName: HashName): string {
  const curve = JWK_CURVES[scheme];
  if (curve === undefined) throw new RangeError(`no JWK form for signature scheme ${scheme}`);
  let json: string;
  if (curve.kty === "OKP") {
    // RFC 7638 §3.2 / RFC 8037 Appendix A.3: members in lexicographic order, no whitespace.
    json = `{"crv":"${curve.crv}","kty":"OKP","x":"${toBase64Url(publicKey)}"}`;
  } else {
    const n = (publicKey.length - 1) / 2;
    const x = toBase64Url(publicKey.subarray(1, 1 + n));
    const y = toBase64Url(publicKey.subarray(1 + n));
    json = `{"crv":"${curve.crv}","kty":"EC","x":"${x}","y":"${y}"}`;
  }
  return toBase64Url(hash(hashName, new TextEncoder().encode(json)));
}

/** CoreCrypto's `DeviceStatus`: the standalone status of a device credential at a moment. */
/** The answer for a chain that could not be parsed or validated at all (status `invalid`, rule `parse`). */
export function unparsableChainResult(reason: string): X509ValidationResult {
  return {
    status: "invalid",
    rule: "parse",
    reason,
    leafPublicKey: new Uint8Array(0),
    notBefore: new Date(0),
    notAfter: new Date(0),
    serialNumber: "",
    thumbprint: "",
    certificate: new Uint8Array(0),
  };
}

export enum DeviceStatus {
  Valid = 1,
  Expired = 2,
  Revoked = 3,
}

/** CoreCrypto's `E2eiConversationState`. */
export enum E2eiConversationState {
  /** Every member has a valid X.509 credential. */
  Verified = 1,
  /** Some members use Basic credentials, or a certificate is expired, revoked or invalid. */
  NotVerified = 2,
  /** Every member uses a Basic credential. */
  NotEnabled = 3,
}

/** CoreCrypto's `X509Identity`: the X.509-specific part of a `WireIdentity`. */
export interface X509Identity {
  /** The handle as CoreCrypto reports it: the SAN URI, e.g. `wireapp://%40alice_wire@wire.com`. */
  handle: string;
  displayName: string;
  domain: string;
  /** PEM of the leaf certificate. */
  certificate: string;
  /** Hex of the serial number's DER integer bytes (as CoreCrypto writes it). */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

/** CoreCrypto's `WireIdentity`: who a member is, and the status of its credential now. */
export interface WireIdentity {
  clientId?: ClientId;
  status: DeviceStatus;
  /** JWK thumbprint of the member's signature key (see `jwkThumbprint`). */
  thumbprint: string;
  credentialType: CredentialType;
  x509Identity?: X509Identity;
}
