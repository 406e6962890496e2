/**
 * CORS for real: a page in headless Chromium, served from one loopback origin, calls the DS on
 * another port (another origin) through the browser-safe DeliveryServiceClient. A second DS that
 * does not list the page's origin is unreachable from it.
 */
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { bundleForBrowser, launchChromium, serveStatic } from "../browser/harness.js";
import type { CorsRun } from "./cors-entry.js";
import { Device, SECRET, SUITE1, b64, flipLast, startServer } from "./helpers.js";

const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body>
<script type="module">import("/entry.js").then(() => (globalThis.__ready = true), (e) => (globalThis.__ready = String(e)));</script>
</body></html>`;

it("a page on another origin registers, uploads, counts, claims and hears its events through CORS", async () => {
  const js = await bundleForBrowser(fileURLToPath(new URL("./cors-entry.ts", import.meta.url)));
  const page = await serveStatic({
    "/": { body: PAGE, contentType: "text/html; charset=utf-8" },
    "/entry.js": { body: js, contentType: "text/javascript; charset=utf-8" },
  });
  const stores = [new SqliteDsStore(":memory:"), new SqliteDsStore(":memory:")];
  for (const s of stores) await s.init();
  const allowed = await startServer(stores[0]!, { corsOrigins: [page.url], limits: { uploadsPerWindow: 2 } });
  const denied = await startServer(stores[1]!, { corsOrigins: ["http://elsewhere.test"] });
  const browser = await launchChromium();
  try {
    expect(new URL(page.url).port).not.toBe(new URL(allowed.url).port); // two origins
    const d = await Device.create();
    const packages = (await d.generate(3)).map((k) => b64(k.serialize()));
    const bad = b64(flipLast((await d.generate(1))[0]!.serialize()));
    const claimer = await (await Device.create()).register(allowed.url);
    const tab = await browser.newPage();
    const logs: string[] = [];
    tab.on("console", (m) => logs.push(m.text()));
    await tab.goto(`${page.url}/`);
    await tab.waitForFunction(() => (globalThis as { __ready?: unknown }).__ready !== undefined);
    expect(await tab.evaluate(() => (globalThis as { __ready?: unknown }).__ready)).toBe(true);
    const r = (await tab.evaluate(
      (o) => (globalThis as unknown as { dsCors: { run(x: unknown): Promise<unknown> } }).dsCors.run(o),
      {
        allowed: allowed.url,
        denied: denied.url,
        secret: SECRET,
        clientId: d.id,
        signatureKey: b64(d.keys.get(SUITE1)!),
        packages,
        bad,
        claimer: { clientId: claimer.clientId as string, token: claimer.token as string },
      },
    )) as CorsRun;
    expect(r.origin).toBe(page.url);
    expect(r.token).toMatch(/^mlskp_/);
    expect(r.uploaded).toHaveLength(3);
    expect(r.count).toEqual({ count: 3, lastResort: 0 });
    expect(r.claimed).toEqual([
      {
        clientId: d.id,
        ref: expect.any(String),
        lastResort: false,
        bytes: Buffer.from(packages[0]!, "base64").length,
      },
    ]);
    expect(r.uploaded).toContain(r.claimed[0]?.ref);
    // the event stream works cross-origin, over fetch streaming, parsed by the client
    expect(r.events).toEqual([
      { type: "claimed", data: { ciphersuite: 1, ref: r.claimed[0]?.ref, lastResort: false, remaining: 2 } },
      { type: "low_water", data: { ciphersuite: 1, count: 2, lowWater: 5 } },
    ]);
    // error bodies are readable cross-origin: the rules of a 422, the code of a 429
    expect(r.rejected).toEqual({
      status: 422,
      error: "invalid_key_packages",
      rules: ["keypackage_signature"],
    });
    expect(r.limited).toEqual({ status: 429, error: "rate_limited" });
    // the server that does not list this origin: the browser blocks the answer
    expect(r.denied).toEqual({ status: 0, error: "network" });
    expect(logs.join("\n")).toMatch(/CORS/);
  } finally {
    await browser.close();
    await allowed.close();
    await denied.close();
    await page.close();
  }
});
