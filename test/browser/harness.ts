/**
 * Reusable real-browser test harness: bundle a TypeScript entry with esbuild
 * (platform "browser", ESM), serve it from a throwaway node:http server on
 * 127.0.0.1, and drive Debian's headless Chromium through playwright-core.
 *
 *   const result = await withBrowserPage("test/browser/my-entry.ts", (page) =>
 *     page.evaluate(() => (globalThis as any).myApi.run()));
 *
 * The entry runs as a module in an http://127.0.0.1 page (a secure context,
 * so crypto.subtle and IndexedDB are available). If importing it throws, the
 * harness fails with the page's error and console output. The page is served
 * from loopback only; nothing leaves the machine.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { build } from "esbuild";
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's chromium package; CI installs it (apt-get install chromium). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** A static response served next to the bundle. */
export interface StaticRoute {
  readonly body: string | Uint8Array;
  readonly contentType: string;
}

export interface BrowserPageOptions {
  /** Extra files by URL path (e.g. "/vectors/x.json"). */
  readonly routes?: Readonly<Record<string, StaticRoute>>;
  /** esbuild `define` replacements for the bundle. */
  readonly define?: Readonly<Record<string, string>>;
  /** Per-action timeout for page operations, ms (default 60 s). */
  readonly timeoutMs?: number;
}

/** A running loopback HTTP server. */
export interface StaticServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Bundles `entryFile` (path relative to the project root or absolute) to one ESM script. */
export async function bundleForBrowser(
  entryFile: string,
  define: Readonly<Record<string, string>> = {},
): Promise<string> {
  const result = await build({
    entryPoints: [resolve(entryFile)],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    sourcemap: "inline",
    logLevel: "silent",
    define: { ...define },
  });
  const out = result.outputFiles[0];
  if (out === undefined) throw new Error(`esbuild produced no output for ${entryFile}`);
  if (out.text.includes('from "node:') || out.text.includes("from 'node:")) {
    throw new Error(`browser bundle of ${entryFile} imports a node: builtin`);
  }
  return out.text;
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>browser test</title></head><body>
<script type="module">
try {
  await import("/entry.js");
  globalThis.__harness = { ready: true };
} catch (e) {
  globalThis.__harness = { ready: true, error: String((e && e.stack) || e) };
}
</script></body></html>`;

/**
 * Response headers that make the page cross-origin isolated (COOP + COEP): Chromium then gives
 * `performance.now()` a 5 µs resolution instead of 100 µs (benchmarks).
 */
export const CROSS_ORIGIN_ISOLATED: Readonly<Record<string, string>> = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
};

/** Serves `routes` (URL path -> response) on an ephemeral 127.0.0.1 port, with `headers` on every response. */
export async function serveStatic(
  routes: Readonly<Record<string, StaticRoute>>,
  headers: Readonly<Record<string, string>> = {},
): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const route = routes[path];
    if (req.method !== "GET" || route === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res
      .writeHead(200, { ...headers, "content-type": route.contentType, "cache-control": "no-store" })
      .end(route.body);
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** Launches headless Chromium; throws (never skips) when the binary is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    headless: true,
    timeout: 60_000,
  });
}

/**
 * Bundles `entryFile`, opens it in a fresh headless Chromium page and runs
 * `fn(page)`. Browser, server and page are always torn down. Errors carry the
 * page's console output.
 */
export async function withBrowserPage<T>(
  entryFile: string,
  fn: (page: Page) => Promise<T>,
  opts: BrowserPageOptions = {},
): Promise<T> {
  const js = await bundleForBrowser(entryFile, opts.define);
  const server = await serveStatic({
    "/": { body: PAGE_HTML, contentType: "text/html; charset=utf-8" },
    "/entry.js": { body: js, contentType: "text/javascript; charset=utf-8" },
    ...opts.routes,
  });
  const logs: string[] = [];
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    page.setDefaultTimeout(opts.timeoutMs ?? 60_000);
    page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    await page.goto(`${server.url}/`);
    await page.waitForFunction(
      () => (globalThis as { __harness?: { ready: boolean } }).__harness?.ready === true,
    );
    const loadError = await page.evaluate(
      () => (globalThis as { __harness?: { error?: string } }).__harness?.error,
    );
    if (loadError !== undefined) throw new Error(`entry ${entryFile} failed to load: ${loadError}`);
    return await fn(page);
  } catch (e) {
    if (e instanceof Error && logs.length > 0) e.message += `\n--- browser console ---\n${logs.join("\n")}`;
    throw e;
  } finally {
    await browser?.close();
    await server.close();
  }
}
