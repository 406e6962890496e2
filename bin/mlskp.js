#!/usr/bin/env node
/* global process, URL */
// Runs the built CLI (dist/) when present, else the TypeScript source through tsx
// (MLSKP_USE_SOURCE=1 forces the source).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const built = new URL("../dist/cli/main.js", import.meta.url);
if (process.env.MLSKP_USE_SOURCE !== "1" && existsSync(fileURLToPath(built))) {
  await import(built.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
