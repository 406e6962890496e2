/**
 * JSON shapes of the Delivery Service HTTP API, shared by the server and the
 * browser-safe client. Binary fields are standard base64; refs are lowercase hex.
 */

import type { KeypackageRule } from "../errors.js";
import { Writer } from "../mls/codec/writer.js";

/** Rules an uploaded key package can break: RFC 9420 §10.1 (`Keypackage.verify`) plus the DS policy. */
export type DsRule =
  | KeypackageRule
  | "base64"
  | "too_large"
  | "credential_type"
  | "client_id_mismatch"
  | "signature_key_not_registered"
  | "signature_key_mismatch"
  | "init_key_reused"
  | "multiple_last_resort"
  /** X.509 credentials (docs/x509.md "Delivery Service"): Basic refused by `--require-x509`. */
  | "x509_required"
  /** The chain does not build to a trust anchor of the server, or a signature in it is wrong (RFC 5280 §6). */
  | "x509_untrusted"
  /** A certificate of the chain is expired / not yet valid at the DS clock (RFC 5280 §4.1.2.5). */
  | "x509_expired"
  | "x509_not_yet_valid"
  /** A certificate of the chain is listed in a configured CRL (RFC 5280 §6.3). */
  | "x509_revoked"
  /** Key usage of the leaf (digitalSignature) or of a CA (keyCertSign) is wrong (RFC 5280 §4.2.1.3). */
  | "x509_key_usage"
  /** A CA certificate of the chain is not a CA (basic constraints, RFC 5280 §4.2.1.9). */
  | "x509_basic_constraints"
  /** A certificate does not decode. */
  | "x509_malformed"
  /** The leaf names no Wire client id (SAN `wireapp://` URI). */
  | "x509_no_client_id"
  /** The leaf's client id is not the uploading client. */
  | "x509_client_id_mismatch"
  /** The leaf certificate's key is not the leaf node's signature key (RFC 9420 §5.3.1). */
  | "x509_key_mismatch"
  /** The package could not be validated for an unexpected reason (never a server error). */
  | "validation_error";

/** One rejected key package of an upload: its index in the request and the rule it broke. */
export interface DsRejection {
  index: number;
  rule: DsRule;
  message: string;
}

/** Body of every error response. */
export interface DsErrorBody {
  /** Stable machine-readable code, e.g. `invalid_key_packages`, `invalid_token`. */
  error: string;
  message: string;
  /** Only for `invalid_key_packages`: one entry per rejected package. */
  rejected?: DsRejection[];
}

export interface RegisterClientRequest {
  userId: string;
  clientId: string;
  /** Cipher suite code point (decimal string) → base64 signature public key. */
  signatureKeys: Record<string, string>;
}

export interface RegisterClientResponse {
  token: string;
}

export interface UploadRequest {
  keyPackages: string[];
}

export interface UploadResponse {
  /** Hex KeyPackageRefs, in request order. */
  refs: string[];
  /** Packages removed by a replace (PUT); 0 for POST (except a superseded last-resort package). */
  removed: number;
}

export interface CountResponse {
  ciphersuite: number;
  /** Valid, unexpired regular packages. */
  count: number;
  /** Valid, unexpired last-resort packages (0 or 1). */
  lastResort: number;
}

export interface DeleteRequest {
  refs: string[];
}

export interface DeleteResponse {
  deleted: number;
}

export interface ClaimedKeyPackageJson {
  clientId: string;
  ref: string;
  keyPackage: string;
  lastResort: boolean;
}

export interface ClaimResponse {
  keyPackages: ClaimedKeyPackageJson[];
  /** Clients of the user with no package left for the suite. */
  exhausted: string[];
}

/** Header carrying the enrollment secret on `POST /v1/clients`. */
export const ENROLLMENT_SECRET_HEADER = "x-enrollment-secret";

/** Most key packages one upload may carry. */
export const MAX_KEYPACKAGES_PER_UPLOAD = 1000;

/** Most refs one page of `GET …/key-packages` returns (and the default page size is 500). */
export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 500;

/** One of the client's own stored packages (`GET /v1/clients/:clientId/key-packages`). */
export interface DsStoredKeypackage {
  /** Hex KeyPackageRef. */
  ref: string;
  ciphersuite: number;
  lastResort: boolean;
  /** Lifetime, Unix seconds (RFC 9420 §7.2 lifetime extension). */
  notBefore: number;
  notAfter: number;
}

export interface ListKeypackagesResponse {
  keyPackages: DsStoredKeypackage[];
  /** Present when more refs follow: pass it as `cursor` for the next page. */
  nextCursor?: string;
}

export interface RotateSignatureKeyRequest {
  ciphersuite: number;
  /** Base64 of the new signature public key. */
  signatureKey: string;
  /**
   * Base64 of the key the client believes registered (the one its proof binds); when given and
   * no longer registered, the answer is 409 `stale_signature_key` instead of `invalid_proof`.
   */
  oldSignatureKey?: string;
  /** Base64 of SignWithLabel(new private key, `ROTATION_PROOF_LABEL`, `rotationProofContent(…)`). */
  proof: string;
  /** Base64 key packages signed by the new key (may be empty). */
  keyPackages: string[];
}

export interface RotateSignatureKeyResponse {
  /** Packages of the suite deleted (they were bound to the old key). */
  deleted: number;
  /** Hex refs of the packages stored, in request order. */
  refs: string[];
}

/** `event:` names of `GET /v1/clients/:clientId/events`. */
export type DsPoolEventType = "claimed" | "low_water" | "last_resort_claimed" | "rotated";

/** A package of the client was handed out; `remaining` = regular packages of the suite left valid now. */
export interface DsClaimedEvent {
  type: "claimed";
  data: { ciphersuite: number; ref: string; lastResort: boolean; remaining: number };
}

/** After a claim, fewer regular packages than the subscriber's `lowWater` are left. */
export interface DsLowWaterEvent {
  type: "low_water";
  data: { ciphersuite: number; count: number; lowWater: number };
}

/** The client's last-resort package was handed out (RFC 9750: replace it soon). */
export interface DsLastResortClaimedEvent {
  type: "last_resort_claimed";
  data: { ciphersuite: number; ref: string };
}

/** The signature key of a suite was rotated; `deleted` packages bound to the old key were removed. */
export interface DsRotatedEvent {
  type: "rotated";
  data: { ciphersuite: number; deleted: number };
}

export type DsPoolEvent = DsClaimedEvent | DsLowWaterEvent | DsLastResortClaimedEvent | DsRotatedEvent;

/**
 * Label of the proof of possession of a new signature key (RFC 9420 §5.1.2 SignWithLabel; the
 * function prefixes it with "MLS 1.0 ").
 */
export const ROTATION_PROOF_LABEL = "mlskp rotate signature key";

/**
 * The content signed by the proof of a signature key rotation (TLS presentation language,
 * RFC 9420 §2.1):
 * `struct { opaque client_id<V>; uint16 ciphersuite; opaque old_signature_key<V>; opaque new_signature_key<V>; }`,
 * client_id in UTF-8. Binding the client, suite and old key keeps a proof from being replayed
 * for another client or after a later rotation.
 */
export function rotationProofContent(
  clientId: string,
  ciphersuite: number,
  oldSignatureKey: Uint8Array,
  newSignatureKey: Uint8Array,
): Uint8Array {
  if (!Number.isInteger(ciphersuite) || ciphersuite < 0 || ciphersuite > 0xffff)
    throw new RangeError(`cipher suite out of range: ${ciphersuite}`);
  const id = new TextEncoder().encode(clientId);
  const w = new Writer(id.length + oldSignatureKey.length + newSignatureKey.length + 16);
  w.vec(id).u16(ciphersuite).vec(oldSignatureKey).vec(newSignatureKey);
  return w.finish();
}
