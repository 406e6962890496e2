/**
 * hash-wasm's SHA-256, behind a module of its own so that `web-hash.ts` loads it on first use (a
 * Node.js process on node:crypto never parses hash-wasm) while bundlers still see a named import
 * and keep only SHA-256.
 * @module
 */
export { createSHA256 } from "hash-wasm";
