/**
 * The example page (examples/web, `npm run web`) in real headless Chromium against a real
 * Delivery Service process on loopback: the serve script runs as a child process (page server +
 * DS with CORS), and the test clicks the page's buttons through the whole key package
 * lifecycle, then reloads the page and checks that both keystores reopen with the same state.
 * Saves docs/web.png (the README's screenshot) at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device, DeviceView } from "../../examples/web/device.js";
import { launchChromium } from "./harness.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCREENSHOT = fileURLToPath(new URL("../../docs/web.png", import.meta.url));

interface WebServer {
  readonly page: string;
  readonly ds: string;
  readonly child: ChildProcess;
  readonly output: string[];
}

/** `tsx examples/web/serve.ts --port 0 --ds-port 0`; resolves with the URLs it prints. */
function startWeb(): Promise<WebServer> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "examples/web/serve.ts", "--port", "0", "--ds-port", "0"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`serve.ts did not start within 120 s:\n${output.join("")}`));
    }, 120_000);
    const onData = (chunk: Buffer): void => {
      output.push(chunk.toString());
      const text = output.join("");
      const page = /page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(text)?.[1];
      const ds = /DS\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1];
      if (page !== undefined && ds !== undefined) {
        clearTimeout(timer);
        resolve({ page, ds, child, output });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (c: Buffer) => output.push(c.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve.ts exited (${code}) before listening:\n${output.join("")}`));
    });
  });
}

/** SIGTERM, then the exit code (the script must stop by itself). */
function stopWeb(server: WebServer): Promise<number | null> {
  if (server.child.exitCode !== null) return Promise.resolve(server.child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.child.kill("SIGKILL"), 30_000);
    server.child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    server.child.kill("SIGTERM");
  });
}

/** What must survive a reload, per device. */
interface Snapshot {
  clientId: string;
  credentialId: string;
  credentials: string[];
  refs: string[];
  members: string[] | undefined;
  epoch: string | undefined;
  ds: DeviceView["ds"];
}

type Demo = { devices(): Record<"alice" | "bob", Device> };

function snapshot(page: Page): Promise<Record<"alice" | "bob", Snapshot>> {
  return page.evaluate(async () => {
    const demo = (globalThis as unknown as { demo: Demo }).demo;
    const out: Record<string, Snapshot> = {};
    for (const [name, device] of Object.entries(demo.devices())) {
      const v = await device.view();
      out[name] = {
        clientId: v.clientId,
        credentialId: v.credentialId,
        credentials: v.credentials,
        refs: v.keypackages.map((k) => k.ref).sort(),
        members: v.conversation?.members.slice().sort(),
        epoch: v.conversation?.epoch.toString(),
        ds: v.ds,
      };
    }
    return out as Record<"alice" | "bob", Snapshot>;
  });
}

let server: WebServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const logs: string[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([startWeb(), launchChromium()]);
  context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(90_000);
  page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
}, 180_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  if (server !== undefined) expect(await stopWeb(server)).toBe(0);
}, 60_000);

const withLogs = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error)
      e.message +=
        `\n--- browser console ---\n${logs.slice(-40).join("\n")}` +
        `\n--- serve.ts ---\n${server.output.join("").slice(-4000)}`;
    throw e;
  }
};

async function loaded(): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.ready !== undefined);
  expect(await page.evaluate(() => document.body.dataset.ready)).toBe("true");
}

/** Page state reached by clicks: generous waits (the suite runs in parallel on 2 cores). */
const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: 60_000, interval: 100 });

const stat = (device: Locator, name: string): Locator => device.locator(`[data-stat="${name}"]`);
const status = (device: Locator): Locator => device.getByRole("status");

async function generate(device: Locator, count: number, lifetime: string): Promise<void> {
  await device.getByLabel("Count").fill(String(count));
  await device.getByLabel("Lifetime").selectOption({ label: lifetime });
  await device.getByRole("button", { name: "Generate and upload" }).click();
  await poll(() => status(device).textContent()).toContain(`uploaded ${count}`);
}

async function processInbox(device: Locator, expected: string): Promise<void> {
  await device.getByRole("button", { name: "Process inbox" }).click();
  await poll(() => status(device).textContent()).toContain(expected);
}

async function send(device: Locator, text: string): Promise<void> {
  await device.getByLabel("Message", { exact: true }).fill(text);
  await device.getByRole("button", { name: "Send", exact: true }).click();
  await poll(() => status(device).textContent()).toContain("sent");
}

describe("the example page (examples/web) in headless Chromium, against a DS process", () => {
  it(
    "runs the whole lifecycle by its buttons: the consumed key package is gone from the keystore and the DS",
    () =>
      withLogs(async () => {
        await page.goto(`${server.page}/`);
        await loaded();
        expect(await page.locator("#ds-url").textContent()).toBe(server.ds);
        const alice = page.getByRole("region", { name: "Alice’s laptop" });
        const bob = page.getByRole("region", { name: "Bob’s phone" });
        await poll(() => stat(alice, "ds").textContent()).toBe("0");

        // Generate and upload: short-lived ones expire while we watch.
        await generate(alice, 2, "20 seconds");
        await generate(alice, 2, "1 day");
        await generate(alice, 4, "84 days");
        await generate(bob, 1, "20 seconds");
        await generate(bob, 3, "84 days");
        await poll(() => stat(alice, "local").textContent()).toBe("8");
        await poll(() => stat(bob, "local").textContent()).toBe("4");
        await expect
          .poll(() => stat(alice, "expired").textContent(), { timeout: 120_000, interval: 500 })
          .toBe("2");
        await poll(() => stat(alice, "expiring").textContent()).toBe("2");
        await poll(() => stat(alice, "valid").textContent()).toBe("4");
        await poll(() => alice.locator('.kp[data-state="expired"]').count()).toBe(2);
        // The DS counts valid packages only: the two expired ones are no longer in Alice's pool.
        await poll(() => stat(alice, "ds").textContent()).toBe("6");

        // Bob claims one of Alice's packages and adds her; the Welcome waits in her inbox.
        await bob.getByRole("button", { name: "Claim and add Alice" }).click();
        await poll(() => status(bob).textContent()).toContain("claimed");
        const claimed = await page.evaluate(
          () => (globalThis as unknown as { demo: Demo }).demo.devices().bob.lastClaimedRef,
        );
        expect(claimed).toMatch(/^[0-9a-f]{64}$/);
        await poll(() => stat(alice, "ds").textContent()).toBe("5");
        await expect(alice.locator(`.kp[data-ref="${claimed}"]`).count()).resolves.toBe(1);
        await poll(() => alice.locator(".inbox-count").textContent()).toBe("Inbox: 1 Welcome");

        // Alice processes the Welcome: she joins and the package is consumed.
        await processInbox(alice, "joined the conversation");
        await poll(() => alice.locator(`.kp[data-ref="${claimed}"]`).count()).toBe(0);
        await poll(() => stat(alice, "local").textContent()).toBe("7");
        const gone = await page.evaluate(async (ref) => {
          const { alice } = (globalThis as unknown as { demo: Demo }).demo.devices();
          const local = await alice.cc.transaction(async (tx) => ({
            refs: (await tx.getKeypackageRefs()).map((r) => r.hex()),
            kp: await tx.getKeypackage(Uint8Array.from(ref.match(/../g)!.map((h) => parseInt(h, 16)))),
          }));
          // DELETE answers how many of the refs the DS still had.
          return {
            inKeystore: local.refs.includes(ref) || local.kp !== undefined,
            onDs: await alice.ds.delete([ref]),
          };
        }, claimed!);
        expect(gone).toEqual({ inKeystore: false, onDs: 0 });
        for (const device of [alice, bob]) {
          await poll(() => device.locator(".members li").count()).toBe(2);
          await poll(() => device.locator(".conversation-state").textContent()).toBe("Epoch 1 · 2 members");
        }
        await poll(() => bob.getByRole("button", { name: "Claim and add Alice" }).isDisabled()).toBe(true);

        // A message each way.
        await send(bob, "Hello Alice, welcome aboard.");
        await poll(() => alice.locator(".inbox-count").textContent()).toBe("Inbox: 1 message");
        await processInbox(alice, "decrypted a message");
        await poll(() => alice.locator(".message-in .message-text").allTextContents()).toEqual([
          "Hello Alice, welcome aboard.",
        ]);
        await send(alice, "Thanks Bob! Got your Welcome.");
        await processInbox(bob, "decrypted a message");
        await poll(() => bob.locator(".message-in .message-text").allTextContents()).toEqual([
          "Thanks Bob! Got your Welcome.",
        ]);

        // Prune: Alice's expired packages leave her keystore.
        await alice.getByRole("button", { name: "Prune expired" }).click();
        await poll(() => status(alice).textContent()).toContain("pruned 2 expired");
        await poll(() => stat(alice, "expired").textContent()).toBe("0");
        await poll(() => stat(alice, "local").textContent()).toBe("5");

        // Rotate Bob's credential: the DS swaps his signature key and packages; uploads under the
        // new key are accepted afterwards.
        const before = (await snapshot(page)).bob;
        await bob.getByRole("button", { name: "Rotate the credential" }).click();
        await expect
          .poll(() => status(bob).textContent(), { timeout: 120_000, interval: 200 })
          .toContain("now signing with");
        const rotated = (await snapshot(page)).bob;
        expect(rotated.credentialId).not.toBe(before.credentialId);
        expect(rotated.credentials).toEqual([before.credentialId, rotated.credentialId]);
        expect(rotated.clientId).toBe(before.clientId);
        await generate(bob, 2, "30 days");

        // A message Alice has not processed yet: it must decrypt after the reload.
        await send(bob, "Still there after a reload?");
        await poll(() => alice.locator(".inbox-count").textContent()).toBe("Inbox: 1 message");
      }),
    300_000,
  );

  it(
    "reload: both keystores reopen with the same packages, credentials and conversation; a message still decrypts",
    () =>
      withLogs(async () => {
        const before = await snapshot(page);
        expect(before.alice.refs).toHaveLength(5);
        expect(before.alice.members).toHaveLength(2);
        await page.reload();
        await loaded();
        const after = await snapshot(page);
        expect(after).toEqual(before);
        const alice = page.getByRole("region", { name: "Alice’s laptop" });
        const bob = page.getByRole("region", { name: "Bob’s phone" });
        await poll(() => alice.locator(".inbox-count").textContent()).toBe("Inbox: 1 message");
        await processInbox(alice, "decrypted a message");
        await poll(() => alice.locator(".message-in .message-text").allTextContents()).toEqual([
          "Hello Alice, welcome aboard.",
          "Still there after a reload?",
        ]);
        await send(alice, "Yes — same keystore, same keys.");
        await processInbox(bob, "decrypted a message");
        // Both devices' history came back from their keystores.
        await poll(() => bob.locator(".message .message-text").allTextContents()).toEqual([
          "Hello Alice, welcome aboard.",
          "Thanks Bob! Got your Welcome.",
          "Still there after a reload?",
          "Yes — same keystore, same keys.",
        ]);
        await page.locator("#page-status").focus();
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
      }),
    180_000,
  );
});
