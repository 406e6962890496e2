/**
 * Record encryption for keystores that cannot encrypt whole files (IndexedDB):
 * AES-256-GCM with a random 96-bit nonce per record, bound to its place by the
 * additional data `table || 0x00 || primary key`. WebCrypto only: browser-safe.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import type { DatabaseKey } from "./databaseKey.js";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const encoder = new TextEncoder();

/** A stored record that does not decrypt under this key at this place (tampered, moved or wrong key). */
export class RecordDecryptionError extends MlsKeypackagesError {
  constructor(table: string) {
    super(
      ErrorCode.KeystoreError,
      `a record of ${table} failed to decrypt (wrong key, tampered or moved record)`,
      {
        table,
        reason: "record-authentication",
      },
    );
    this.name = "RecordDecryptionError";
  }
}

/** Keys derived from a `DatabaseKey`; neither is extractable. */
export interface RecordKeys {
  /** AES-256-GCM record encryption. */
  readonly aes: CryptoKey;
  /** HMAC-SHA-256 over plaintext rows: lets insert-only checks compare values without decrypting. */
  readonly mac: CryptoKey;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined)
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "WebCrypto (crypto.subtle) is not available");
  return s;
}

/** A copy backed by a plain ArrayBuffer (what WebCrypto's typings want). */
function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}

/** HKDF-SHA-256 from the database key; the info string separates the two uses. */
export async function deriveRecordKeys(key: DatabaseKey): Promise<RecordKeys> {
  const raw = key.bytes();
  try {
    const base = await subtle().importKey("raw", buf(raw), "HKDF", false, ["deriveKey"]);
    const params = (info: string): HkdfParams => ({
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: encoder.encode(info),
    });
    const aes = await subtle().deriveKey(
      params("mls-keypackages/record-aes-256-gcm/v1"),
      base,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    const mac = await subtle().deriveKey(
      params("mls-keypackages/record-hmac-sha-256/v1"),
      base,
      { name: "HMAC", hash: "SHA-256", length: 256 },
      false,
      ["sign"],
    );
    return { aes, mac };
  } finally {
    raw.fill(0);
  }
}

/** `table || 0x00 || key` (UTF-8). */
export function recordAad(table: string, key: string): Uint8Array<ArrayBuffer> {
  const t = encoder.encode(table);
  const k = encoder.encode(key);
  const out = new Uint8Array(t.length + 1 + k.length);
  out.set(t, 0);
  out.set(k, t.length + 1);
  return out;
}

/** `nonce (12) || ciphertext || tag (16)`. */
export async function sealRecord(
  aes: CryptoKey,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ct = new Uint8Array(
    await subtle().encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: buf(aad), tagLength: 128 },
      aes,
      buf(plaintext),
    ),
  );
  const out = new Uint8Array(NONCE_BYTES + ct.length);
  out.set(nonce, 0);
  out.set(ct, NONCE_BYTES);
  return out;
}

/** Inverse of `sealRecord`; throws `RecordDecryptionError` (naming `table`) when authentication fails. */
export async function openRecord(
  aes: CryptoKey,
  aad: Uint8Array,
  sealed: Uint8Array,
  table: string,
): Promise<Uint8Array> {
  if (!(sealed instanceof Uint8Array) || sealed.length < NONCE_BYTES + TAG_BYTES)
    throw new RecordDecryptionError(table);
  try {
    const pt = await subtle().decrypt(
      { name: "AES-GCM", iv: buf(sealed.subarray(0, NONCE_BYTES)), additionalData: buf(aad), tagLength: 128 },
      aes,
      buf(sealed.subarray(NONCE_BYTES)),
    );
    return new Uint8Array(pt);
  } catch {
    throw new RecordDecryptionError(table);
  }
}

/** HMAC-SHA-256 of `aad || data`. */
export async function macRecord(mac: CryptoKey, aad: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const input = new Uint8Array(aad.length + data.length);
  input.set(aad, 0);
  input.set(data, aad.length);
  return new Uint8Array(await subtle().sign("HMAC", mac, input));
}
