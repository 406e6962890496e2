/**
 * The RFC 9420 §6 MLSMessage envelope: `ProtocolVersion version = mls10; WireFormat
 * wire_format;` then the message. Decoding is strict (§2.1: no trailing bytes, a size cap); a
 * malformed message is rejected with the caller's error code and the codec's rule.
 */
import type { ErrorCode } from "../../errors.js";
import { decodeExact, encode } from "../codec/index.js";
import { readMlsMessage, writeMlsMessage } from "./codec.js";
import { decodeAs } from "../validation/errors.js";
import type { MlsMessage } from "./types.js";

/** The encoded MLSMessage. */
export function encodeMlsMessage(m: MlsMessage): Uint8Array {
  return encode(m, writeMlsMessage, 1024);
}

/** Decodes exactly one MLSMessage; a malformed one is a `code` error naming the §2.1 rule broken. */
export function decodeMlsMessage(bytes: Uint8Array, code: ErrorCode, what = "the MLSMessage"): MlsMessage {
  return decodeAs(code, what, () => decodeExact(bytes, readMlsMessage));
}
