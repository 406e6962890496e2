import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import type { HashName } from "./ciphersuite.js";
import { KEYPACKAGE_REF_LABEL, refHashInput } from "./crypto/labels.js";

const HASHES: Record<HashName, (data: Uint8Array) => Uint8Array> = {
  "SHA-256": sha256,
  "SHA-384": sha384,
  "SHA-512": sha512,
};

/** Synchronous hash (pure JS, works in every runtime, no provider needed). */
export function hash(name: HashName, data: Uint8Array): Uint8Array {
  return HASHES[name](data);
}

/** RFC 9420 §5.2 KeyPackageRef of an encoded KeyPackage, synchronously in any runtime. */
export function keyPackageRefSync(name: HashName, encodedKeyPackage: Uint8Array): Uint8Array {
  // §5.2: RefHash(label, value) = Hash(RefHashInput)
  return hash(name, refHashInput(KEYPACKAGE_REF_LABEL, encodedKeyPackage));
}
