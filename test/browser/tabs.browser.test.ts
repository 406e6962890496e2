/**
 * The IndexedDB keystore across tabs in real headless Chromium (one browser context = one
 * origin's storage, several pages): two tabs generating key packages concurrently into one
 * keystore, a tab closed in the middle of a commit, a reload with the key kept wrapped.
 * The in-page side is tabs-entry.ts.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleForBrowser, launchChromium, serveStatic, type StaticServer } from "./harness.js";
import type { TabsTestApi } from "./tabs-entry.js";

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>tabs test</title></head><body>
<script type="module">
try {
  await import("/entry.js");
  globalThis.__harness = { ready: true };
} catch (e) {
  globalThis.__harness = { ready: true, error: String((e && e.stack) || e) };
}
</script></body></html>`;

let server: StaticServer;
let browser: Browser;
const logs: string[] = [];

beforeAll(async () => {
  const js = await bundleForBrowser(fileURLToPath(new URL("./tabs-entry.ts", import.meta.url)));
  server = await serveStatic({
    "/": { body: PAGE_HTML, contentType: "text/html; charset=utf-8" },
    "/entry.js": { body: js, contentType: "text/javascript; charset=utf-8" },
  });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function newTab(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(90_000);
  page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  await page.goto(`${server.url}/`);
  await page.waitForFunction(
    () => (globalThis as { __harness?: { ready: boolean } }).__harness?.ready === true,
  );
  const err = await page.evaluate(() => (globalThis as { __harness?: { error?: string } }).__harness?.error);
  if (err !== undefined) throw new Error(`tabs-entry failed to load: ${err}`);
  return page;
}

/** page.evaluate of tabsTest[fn](...args). */
function call<K extends keyof TabsTestApi>(
  page: Page,
  fn: K,
  ...args: Parameters<TabsTestApi[K]>
): Promise<Awaited<ReturnType<TabsTestApi[K]>>> {
  return page.evaluate(
    ([f, a]) => {
      const api = (globalThis as unknown as { tabsTest: Record<string, (...x: unknown[]) => unknown> })
        .tabsTest;
      return api[f as string]!(...(a as unknown[]));
    },
    [fn, args] as const,
  ) as Promise<Awaited<ReturnType<TabsTestApi[K]>>>;
}

const withLogs = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error && logs.length > 0)
      e.message += `\n--- browser console ---\n${logs.slice(-40).join("\n")}`;
    throw e;
  }
};

describe("IndexedDB keystore across tabs (headless Chromium)", () => {
  it(
    "two tabs generating key packages concurrently into one keystore: the count is the sum, transactions never overlap",
    () =>
      withLogs(async () => {
        const context = await browser.newContext();
        try {
          const [a, b] = [await newTab(context), await newTab(context)];
          expect(await call(a, "userAgent")).toMatch(/Chrome\//);
          expect(await call(a, "hasWebLocks")).toBe(true);
          const key = randomBytes(32).toString("hex");
          await call(a, "open", "two-tabs", key);
          await call(b, "open", "two-tabs", key);
          const [ra, rb] = await Promise.all([
            call(a, "generate", "aaaa", 6, 5),
            call(b, "generate", "bbbb", 6, 5),
          ]);
          // Serialized across tabs: no two transactions' intervals overlap.
          const all = [...ra.intervals.map((i) => [...i, 0]), ...rb.intervals.map((i) => [...i, 1])].sort(
            (x, y) => x[0]! - y[0]!,
          );
          for (let i = 1; i < all.length; i++) expect(all[i]![0]).toBeGreaterThanOrEqual(all[i - 1]![1]!);
          // Each transaction started from everything committed before it, by either tab.
          const starts = [
            ...ra.intervals.map((iv, k) => [iv[0], ra.seen[k]]),
            ...rb.intervals.map((iv, k) => [iv[0], rb.seen[k]]),
          ]
            .sort((x, y) => x[0]! - y[0]!)
            .map((x) => x[1]);
          expect(starts).toEqual(Array.from({ length: 12 }, (_, i) => i * 5));
          const sa = await call(a, "snapshot");
          const sb = await call(b, "snapshot");
          expect(sa.keypackages).toHaveLength(60);
          expect(sa.credentials).toHaveLength(2);
          expect(sb).toEqual(sa);
          expect(sa.counts).toMatchObject({
            keypackages: 60,
            hpke_private_keys: 60,
            encryption_keypairs: 60,
          });
          // A third tab opening afterwards sees the same; tab B sees A's next commit without a transaction.
          const c = await newTab(context);
          await call(c, "open", "two-tabs", key);
          expect(await call(c, "snapshot")).toEqual(sa);
          await call(a, "generate", "cccc", 1, 2);
          await expect.poll(async () => (await call(b, "counts")).keypackages, { timeout: 5000 }).toBe(62);
          for (const p of [a, b, c]) await call(p, "close");
        } finally {
          await context.close();
        }
      }),
    180_000,
  );

  it(
    "a tab closed in the middle of a commit: reopening shows a committed prefix, nothing half-applied",
    () =>
      withLogs(async () => {
        const context = await browser.newContext();
        try {
          const key = randomBytes(32).toString("hex");
          let last = 0;
          let inFlight = 0;
          for (let round = 0; round < 4; round++) {
            const page = await newTab(context);
            let began = 0;
            let done = 0;
            const firstBegan = new Promise<void>((resolve) => {
              void page.exposeFunction("__began", (i: number) => {
                began = i;
                if (i >= last + 2 + round) resolve();
              });
            });
            await page.exposeFunction("__done", (i: number) => {
              done = i;
            });
            void call(page, "startWriter", "crash", key).catch(() => undefined);
            await firstBegan;
            // Close while commit `began` is being sealed or written.
            await page.close({ runBeforeUnload: false });
            if (began > done) inFlight++;
            const checker = await newTab(context);
            const r = await call(checker, "checkPrefix", "crash", key);
            expect(r.problems).toEqual([]);
            // Everything that returned is there; the one in flight may or may not be; none after it
            // (the page waits until the test has heard of a commit before starting it).
            expect(r.counter).toBeGreaterThanOrEqual(Math.max(done, began - 1));
            expect(r.counter).toBeLessThanOrEqual(began);
            last = r.counter;
            await checker.close();
          }
          expect(last).toBeGreaterThan(4);
          // At least one close hit a commit that had not returned yet.
          expect(inFlight).toBeGreaterThan(0);
        } finally {
          await context.close();
        }
      }),
    240_000,
  );

  it(
    "reload: the keystore reopens with the same packages and credentials, the key kept wrapped",
    () =>
      withLogs(async () => {
        const context = await browser.newContext();
        try {
          const page = await newTab(context);
          await call(page, "openWrapped", "reload");
          await call(page, "generate", "dddd", 2, 5);
          const before = await call(page, "snapshot");
          expect(before.keypackages).toHaveLength(10);
          const rec = await call(page, "wrappedKeyRecord", "reload");
          expect(rec).toEqual({
            extractable: false,
            exportFails: true,
            rawStored: false,
            type: "[object CryptoKey]",
          });
          await page.reload();
          await page.waitForFunction(
            () => (globalThis as { __harness?: { ready: boolean } }).__harness?.ready === true,
          );
          await call(page, "openWrapped", "reload");
          expect(await call(page, "snapshot")).toEqual(before);
          await call(page, "close");
        } finally {
          await context.close();
        }
      }),
    120_000,
  );
});
