/** RFC 9420 §5.3 credentials: types, codec, and the §5.3.1 authentication service. */
export * from "./types.js";
export * from "./codec.js";
export * from "./authentication.js";
