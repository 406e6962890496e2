/** TLS presentation language (RFC 9420 §2.1): the one codec of the engine. */
export { DecodeError, type CodecRule } from "./errors.js";
export { DEFAULT_MAX_SIZE, Reader, decodeExact } from "./reader.js";
export { Writer, encode } from "./writer.js";
