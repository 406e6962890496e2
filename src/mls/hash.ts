import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import type { HashName } from "./ciphersuite.js";
import { concatBytes, encodeVarBytes } from "./tls.js";

const HASHES: Record<HashName, (data: Uint8Array) => Uint8Array> = {
  "SHA-256": sha256,
  "SHA-384": sha384,
  "SHA-512": sha512,
};

/** Synchronous hash (pure JS, works in every runtime). */
export function hash(name: HashName, data: Uint8Array): Uint8Array {
  return HASHES[name](data);
}

const encoder = new TextEncoder();

/**
 * RFC 9420 §5.2: RefHash(label, value) = Hash(RefHashInput) with
 * struct { opaque label<V>; opaque value<V>; } RefHashInput.
 */
export function refHash(name: HashName, label: string, value: Uint8Array): Uint8Array {
  return hash(name, refHashInputOf(label, value));
}

/** The RefHashInput struct bytes (RFC 9420 §5.2). */
export function refHashInputOf(label: string, value: Uint8Array): Uint8Array {
  return concatBytes([encodeVarBytes(encoder.encode(label)), encodeVarBytes(value)]);
}
