/** RFC 9420 §10 key packages (and the §7.2 leaf node they carry): types, codec, build, parse, verify. */
export * from "./types.js";
export * from "./codec.js";
export * from "./build.js";
export * from "./parse.js";
export * from "./validate.js";
