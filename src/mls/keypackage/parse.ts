/**
 * Parsing a §10 KeyPackage from its bytes (syntax only; §10.1 validation is validate.ts).
 *
 * Strict (RFC 9420 §2.1): shortest varints only, no trailing bytes. The strictness matters
 * beyond hygiene: the KeyPackageRef (§5.2) hashes the bytes, so a package with a non-minimal
 * varint would have one ref at the Delivery Service and another at any peer that re-encodes it.
 */
import { DecodeError, Reader } from "../codec/index.js";
import { InvalidKeypackageError, type KeypackageRule } from "../../errors.js";
import { readKeyPackage } from "./codec.js";
import type { KeyPackage } from "./types.js";

/** Largest encoded key package we parse: far above any real one (a few hundred bytes to a few KiB with X.509). */
export const MAX_KEYPACKAGE_SIZE = 256 * 1024;

/** The key package rule a codec failure breaks. */
function ruleOf(err: DecodeError): KeypackageRule {
  switch (err.rule) {
    case "§2.1.2 minimal varint":
      return "non_minimal_encoding";
    case "§2.1 trailing bytes":
      return "trailing_bytes";
    default:
      return "decode";
  }
}

/**
 * Parse the bytes of exactly one KeyPackage. Throws `InvalidKeypackageError` with rule
 * `decode`, `trailing_bytes` or `non_minimal_encoding`. Byte fields are views into `bytes`:
 * pass a copy if the caller may change them.
 */
export function parseKeyPackage(bytes: Uint8Array): KeyPackage {
  if (!(bytes instanceof Uint8Array)) throw new InvalidKeypackageError("decode", "expected a Uint8Array");
  // §2.1 size cap: refuse before reading.
  if (bytes.length > MAX_KEYPACKAGE_SIZE)
    throw new InvalidKeypackageError("decode", `${bytes.length} bytes exceed ${MAX_KEYPACKAGE_SIZE}`);
  const r = new Reader(bytes);
  try {
    const kp = readKeyPackage(r);
    // §2.1: the value ends where the input ends.
    r.finish();
    return kp;
  } catch (err) {
    if (err instanceof DecodeError)
      throw new InvalidKeypackageError(ruleOf(err), err.message, { cause: err });
    throw err;
  }
}
