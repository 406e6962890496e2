/** The wrapped DatabaseKey helper on fake-indexeddb (the same checks run in Chromium). */
import "fake-indexeddb/auto";
import { beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import {
  deleteWrappedDatabaseKey,
  loadOrCreateWrappedDatabaseKey,
  loadWrappedDatabaseKey,
  storeWrappedDatabaseKey,
} from "../../src/keystore/wrappedKey.js";
import { toHex } from "../../src/keystore/staging.js";
import { dumpIdb, idbRequest, withRawIdb } from "./fixtures/idb.js";

let factory: IDBFactory;
beforeEach(() => {
  factory = new IDBFactory();
});

describe("wrapped DatabaseKey", () => {
  it("creates a key once, loads the same key afterwards; the raw bytes are not stored", async () => {
    const key = await loadOrCreateWrappedDatabaseKey("main", { indexedDB: factory });
    const again = await loadOrCreateWrappedDatabaseKey("main", { indexedDB: factory });
    expect(again.equals(key)).toBe(true);
    expect((await loadWrappedDatabaseKey("main", { indexedDB: factory }))?.equals(key)).toBe(true);
    const { stores } = await dumpIdb(factory, "mls-keypackages-keys");
    const rec = stores.keys?.[0] as { wrappingKey: CryptoKey; wrapped: Uint8Array; name: string };
    expect(Object.keys(rec).sort()).toEqual(["name", "version", "wrapped", "wrappingKey"]);
    expect(rec.wrappingKey.extractable).toBe(false);
    expect(rec.wrapped.length).toBe(12 + 32 + 16);
    expect(toHex(rec.wrapped).includes(toHex(key.bytes()))).toBe(false);
    await expect(globalThis.crypto.subtle.exportKey("raw", rec.wrappingKey)).rejects.toThrow();
  });

  it("tabs racing to create it all get the same key", async () => {
    const keys = await Promise.all(
      Array.from({ length: 5 }, () => loadOrCreateWrappedDatabaseKey("race", { indexedDB: factory })),
    );
    for (const k of keys) expect(k.equals(keys[0]!)).toBe(true);
  });

  it("store replaces, delete forgets, names and databases are separate", async () => {
    const a = DatabaseKey.generate();
    const b = DatabaseKey.generate();
    await storeWrappedDatabaseKey("a", a, { indexedDB: factory });
    await storeWrappedDatabaseKey("b", b, { indexedDB: factory, databaseName: "other" });
    expect((await loadWrappedDatabaseKey("a", { indexedDB: factory }))?.equals(a)).toBe(true);
    expect(await loadWrappedDatabaseKey("b", { indexedDB: factory })).toBeUndefined();
    expect(
      (await loadWrappedDatabaseKey("b", { indexedDB: factory, databaseName: "other" }))?.equals(b),
    ).toBe(true);
    await storeWrappedDatabaseKey("a", b, { indexedDB: factory });
    expect((await loadWrappedDatabaseKey("a", { indexedDB: factory }))?.equals(b)).toBe(true);
    await deleteWrappedDatabaseKey("a", { indexedDB: factory });
    expect(await loadWrappedDatabaseKey("a", { indexedDB: factory })).toBeUndefined();
  });

  it("a wrapped key moved under another name does not unwrap", async () => {
    await storeWrappedDatabaseKey("a", DatabaseKey.generate(), { indexedDB: factory });
    await withRawIdb(factory, "mls-keypackages-keys", async (db) => {
      const store = db.transaction("keys", "readwrite").objectStore("keys");
      const rec = (await idbRequest(store.get("a"))) as Record<string, unknown>;
      await idbRequest(store.put({ ...rec, name: "b" }));
    });
    const err = await loadWrappedDatabaseKey("b", { indexedDB: factory }).catch((e: unknown) => e);
    expect(MlsKeypackagesError.is(err, ErrorCode.KeystoreError)).toBe(true);
  });
});
