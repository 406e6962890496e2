/**
 * DS stores in a child process (for tests that need real parallel SQLite connections):
 * `fork(this file, [], { execArgv: ["--import", "tsx"], serialization: "advanced" })`, then
 * `{ id, method, args }` messages answer `{ id, value }` or `{ id, error }`. Method `open`
 * (args: spec) opens a store, `close` closes it, `exit` ends the process; any other method is
 * called on the open store.
 */
import { openStore } from "../../src/ds/open.js";
import type { DeliveryServiceStore } from "../../src/ds/store.js";

let store: DeliveryServiceStore | undefined;

async function run(method: string, args: unknown[]): Promise<unknown> {
  if (method === "open") {
    await store?.close();
    store = await openStore(args[0] as string);
    return undefined;
  }
  if (method === "close") {
    await store?.close();
    store = undefined;
    return undefined;
  }
  if (store === undefined) throw new Error("no store open");
  const fn = (store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method];
  if (typeof fn !== "function") throw new Error(`no method ${method}`);
  return fn.apply(store, args);
}

process.on("message", (m: { id: number; method: string; args: unknown[] }) => {
  if (m.method === "exit") {
    void store?.close();
    process.disconnect();
    return;
  }
  run(m.method, m.args).then(
    (value) => process.send?.({ id: m.id, value }),
    (err: unknown) => process.send?.({ id: m.id, error: String(err) }),
  );
});
process.send?.({ ready: true });
