/**
 * JSON shapes of the Delivery Service HTTP API, shared by the server and the
 * browser-safe client. Binary fields are standard base64; refs are lowercase hex.
 */

import type { KeypackageRule } from "../errors.js";

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
