import { encodeCredential } from "ts-mls/credential.js";
import { fastDecodeCredential } from "./fastDecode.js";
import type { Credential as MlsCredential } from "ts-mls";

export type { MlsCredential };

/** TLS encoding of an MLS Credential (RFC 9420 §5.3). */
export function encodeMlsCredential(c: MlsCredential): Uint8Array {
  return encodeCredential(c);
}

export function decodeMlsCredential(bytes: Uint8Array): MlsCredential | undefined {
  const r = fastDecodeCredential(bytes, 0); // = ts-mls decodeCredential (fastDecode.ts)
  if (r === undefined || r[1] !== bytes.length) return undefined;
  return r[0];
}

export function basicCredential(identity: Uint8Array): MlsCredential {
  return { credentialType: "basic", identity };
}
