/**
 * `npm run web`: bundles the example page, starts a Delivery Service on 127.0.0.1 (open
 * enrollment, like `mlskp serve --dev`; in-memory store unless `--db`) with CORS for the page's
 * origin, serves the page on another port and prints its URL. Ctrl-C (SIGINT) or SIGTERM stops
 * both.
 *
 *   npm run web                                   # page on :8090, DS on :8091
 *   npm run web -- --port 0 --ds-port 0           # any free ports
 *   npm run web -- --db web-ds.sqlite             # keep the DS's data across restarts
 *
 * Loopback only: nothing listens on another interface.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { createDeliveryService, openStore } from "../../src/ds/index.js";
import { bundleWebExample } from "./build.js";

const HOST = "127.0.0.1";
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2b59c3"/>' +
  '<rect x="3" y="5" width="10" height="2" rx="1" fill="#fff"/><rect x="3" y="9" width="6" height="2" rx="1" fill="#fff"/></svg>';

function port(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new Error(`--${name}: not a TCP port: ${value}`);
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "ds-port": { type: "string" },
    db: { type: "string" },
  },
});
const pagePort = port("port", values.port ?? process.env.MLSKP_WEB_PORT, 8090);
const dsPort = port("ds-port", values["ds-port"] ?? process.env.MLSKP_WEB_DS_PORT, 8091);
const db = values.db ?? ":memory:";

const bundle = await bundleWebExample();

// The page server first: its origin is what the DS must allow (CORS).
let dsUrl = "";
const routes = (): Record<string, { type: string; body: string }> => ({
  "/": { type: "text/html; charset=utf-8", body: bundle.html },
  "/index.html": { type: "text/html; charset=utf-8", body: bundle.html },
  "/app.js": { type: "text/javascript; charset=utf-8", body: bundle.js },
  "/style.css": { type: "text/css; charset=utf-8", body: bundle.css },
  "/config.json": { type: "application/json", body: JSON.stringify({ dsUrl }) },
  "/favicon.svg": { type: "image/svg+xml", body: FAVICON },
});
const page: Server = createServer((req, res) => {
  const route = routes()[new URL(req.url ?? "/", `http://${HOST}`).pathname];
  if ((req.method !== "GET" && req.method !== "HEAD") || route === undefined) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
    return;
  }
  res
    .writeHead(200, {
      "content-type": route.type,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      // Script in the origin can use the keystore's key (docs/browser.md): load only our own.
      // 'wasm-unsafe-eval' lets the crypto provider compile its WebAssembly SHA-256 (no JS eval).
      "content-security-policy": `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ${dsUrl}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`,
    })
    .end(req.method === "HEAD" ? undefined : route.body);
});
await new Promise<void>((resolve, reject) => {
  page.once("error", reject);
  page.listen(pagePort, HOST, () => resolve());
}).catch((e: NodeJS.ErrnoException) => {
  if (e.code !== "EADDRINUSE") throw e;
  process.stderr.write(`port ${pagePort} is taken: npm run web -- --port <another, or 0 for any>\n`);
  process.exit(1);
});
const pageOrigin = `http://${HOST}:${(page.address() as AddressInfo).port}`;

const ds = await createDeliveryService({
  store: await openStore(db),
  dev: true,
  corsOrigins: [pageOrigin, pageOrigin.replace(HOST, "localhost")],
  verifyWorkers: 0,
});
dsUrl = await ds.listen({ host: HOST, port: dsPort }).catch(async (e: NodeJS.ErrnoException) => {
  if (e.code !== "EADDRINUSE") throw e;
  process.stderr.write(`port ${dsPort} is taken: npm run web -- --ds-port <another, or 0 for any>\n`);
  page.close();
  await ds.close();
  process.exit(1);
});

process.stdout.write(
  `mls-keypackages example page\n` +
    `  page  ${pageOrigin}/\n` +
    `  DS    ${dsUrl} (${db === ":memory:" ? "in-memory store" : db}, open enrollment: never in production)\n` +
    `Ctrl-C to stop.\n`,
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  page.closeAllConnections();
  await Promise.all([new Promise<void>((resolve) => page.close(() => resolve())), ds.close()]);
  process.exit(0);
}
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
