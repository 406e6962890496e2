/**
 * In-page runner (bundled for the browser by harness.ts): the Keystore contract cases
 * (test/keystore/contract-cases.ts, unchanged) plus IndexedDB-specific checks, against the
 * real IndexedDB and WebCrypto of the browser. Publishes `window.__results`.
 */
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { RecordDecryptionError } from "../../src/keystore/encryption.js";
import { INDEXEDDB_SCHEMA_VERSION, openIndexedDbKeystore } from "../../src/keystore/indexeddb.js";
import type { StoredRecord } from "../../src/keystore/indexeddbLegacy.js";
import { buildLegacyDatabase, dumpIdb } from "../keystore/fixtures/idb.js";
import { toHex } from "../../src/keystore/staging.js";
import { defineKeystoreContract, type ContractApi, type Matchers } from "../keystore/contract-cases.js";
import { bundleDeleteOps, bundleOps, credentialRow, keypackageBundle } from "../keystore/fixtures/rows.js";

// ── a minimal describe/it/expect ─────────────────────────────────────────────
interface Test {
  name: string;
  body: () => Promise<void>;
  before: (() => Promise<void>)[];
  after: (() => Promise<void>)[];
}
const tests: Test[] = [];
const prefix: string[] = [];
let before: (() => Promise<void>)[] = [];
let after: (() => Promise<void>)[] = [];

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  // Like vitest's toEqual: properties that are undefined count as absent.
  const keys = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const ka = keys(a);
  const kb = keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  try {
    return (
      JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `Uint8Array(${x.length})` : x))?.slice(
        0,
        300,
      ) ?? String(v)
    );
  } catch {
    return String(v);
  }
}

function expect(actual: unknown, message?: string): Matchers {
  const fail = (what: string): never => {
    throw new Error(`${message ? `${message}: ` : ""}${what}`);
  };
  return {
    toBe: (e) => void (Object.is(actual, e) || fail(`expected ${show(actual)} to be ${show(e)}`)),
    toEqual: (e) => void (deepEqual(actual, e) || fail(`expected ${show(actual)} to equal ${show(e)}`)),
    toBeUndefined: () => void (actual === undefined || fail(`expected ${show(actual)} to be undefined`)),
    toBeInstanceOf: (c) =>
      void (actual instanceof c || fail(`expected ${show(actual)} to be an instance of ${c.name}`)),
    toHaveLength: (n) =>
      void (
        (actual as { length?: unknown })?.length === n ||
        fail(`expected length ${n}, got ${show((actual as { length?: unknown })?.length)}`)
      ),
  };
}

const api: ContractApi = {
  describe(name, body) {
    const saved = [before, after];
    before = [...before];
    after = [...after];
    prefix.push(name);
    body();
    prefix.pop();
    [before, after] = saved as [typeof before, typeof after];
  },
  it(name, body) {
    tests.push({ name: [...prefix, name].join(" > "), body, before: [...before], after: [...after] });
  },
  beforeEach(body) {
    before.push(body);
  },
  afterEach(body) {
    after.push(body);
  },
  expect,
};

// ── helpers ───────────────────────────────────────────────────────────────────
let dbNo = 0;
const uniqueName = (): string => `idb-browser-${Date.now()}-${dbNo++}`;

function deleteDb(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve();
  });
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function rawDb(name: string, version?: number): Promise<IDBDatabase> {
  const req = indexedDB.open(name, version);
  return request(req);
}

async function rawGet(name: string, store: string, key: string | number): Promise<StoredRecord> {
  const db = await rawDb(name);
  try {
    return (await request(db.transaction(store).objectStore(store).get(key))) as StoredRecord;
  } finally {
    db.close();
  }
}

async function rawPut(name: string, store: string, value: unknown): Promise<void> {
  const db = await rawDb(name);
  try {
    await request(db.transaction(store, "readwrite").objectStore(store).put(value));
  } finally {
    db.close();
  }
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

// ── the contract, on the browser's IndexedDB ─────────────────────────────────
defineKeystoreContract(api, "indexeddb (Chromium)", async () => {
  const name = uniqueName();
  const keystore = await openIndexedDbKeystore(name, DatabaseKey.generate());
  return { keystore, cleanup: () => deleteDb(name) };
});

// ── IndexedDB specifics ─────────────────────────────────────────────────────
async function rawDump(
  name: string,
): Promise<{ version: number; stores: Record<string, Record<string, unknown>[]> }> {
  return dumpIdb(indexedDB, name);
}

api.describe("IndexedDB backend (Chromium)", () => {
  api.it("persists across reopen; a wrong key fails with WrongDatabaseKey, nothing written", async () => {
    const name = uniqueName();
    const key = DatabaseKey.generate();
    const cred = credentialRow();
    const b = keypackageBundle(cred.id, { lastResort: true });
    const ks = await openIndexedDbKeystore(name, key);
    await ks.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }, ...bundleOps(b)]);
    await ks.close();
    const before = JSON.stringify(await rawDump(name), (_k, v: unknown) =>
      v instanceof Uint8Array ? toHex(v) : v,
    );
    const err = await errorOf(openIndexedDbKeystore(name, DatabaseKey.generate()));
    expect(MlsKeypackagesError.is(err, ErrorCode.WrongDatabaseKey), String(err)).toBe(true);
    const after = JSON.stringify(await rawDump(name), (_k, v: unknown) =>
      v instanceof Uint8Array ? toHex(v) : v,
    );
    expect(after).toBe(before);
    const again = await openIndexedDbKeystore(name, key);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    expect(await again.get("keypackages", b.kp.ref)).toEqual(b.kp);
    expect(await again.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
    await again.close();
    await deleteDb(name);
  });

  api.it("log records are bound to their sequence number (swapped records fail to decrypt)", async () => {
    const name = uniqueName();
    const key = DatabaseKey.generate();
    const cred = credentialRow();
    const ks = await openIndexedDbKeystore(name, key, { compaction: false });
    await ks.commit(bundleOps(keypackageBundle(cred.id)));
    await ks.commit(bundleOps(keypackageBundle(cred.id)));
    await ks.close();
    const r1 = (await rawGet(name, "log", 1)) as unknown as { seq: number; v: Uint8Array };
    const r2 = (await rawGet(name, "log", 2)) as unknown as { seq: number; v: Uint8Array };
    await rawPut(name, "log", { seq: 1, v: r2.v });
    await rawPut(name, "log", { seq: 2, v: r1.v });
    const err = await errorOf(openIndexedDbKeystore(name, key));
    expect(err).toBeInstanceOf(RecordDecryptionError);
    expect((err as MlsKeypackagesError).code).toBe(ErrorCode.KeystoreError);
    await rawPut(name, "log", r1);
    await rawPut(name, "log", r2);
    const again = await openIndexedDbKeystore(name, key);
    expect((await again.counts()).keypackages).toBe(2);
    await again.close();
    await deleteDb(name);
  });

  api.it("stores only sealed records: meta, log and chunks; nothing in clear", async () => {
    const name = uniqueName();
    const cred = credentialRow();
    const b = keypackageBundle(cred.id);
    const ks = await openIndexedDbKeystore(name, DatabaseKey.generate());
    await ks.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }, ...bundleOps(b)]);
    await ks.compact();
    await ks.commit(bundleOps(keypackageBundle(cred.id)));
    await ks.close();
    const { version, stores } = await rawDump(name);
    expect(version).toBe(INDEXEDDB_SCHEMA_VERSION);
    expect(Object.keys(stores).sort()).toEqual(["chunks", "log", "meta"]);
    const allowed = ["compactions", "id", "keyEpoch", "name", "seq", "v"];
    let text = "";
    for (const recs of Object.values(stores))
      for (const r of recs) {
        for (const k of Object.keys(r)) expect(allowed.includes(k), k).toBe(true);
        text += JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v));
      }
    for (const secret of [b.hpke.privateKey, b.enc.privateKey, cred.signaturePrivateKey])
      expect(text.includes(toHex(secret))).toBe(false);
    for (const id of [cred.id, b.kp.ref, b.kp.initKey]) expect(text.includes(id)).toBe(false);
    await deleteDb(name);
  });

  api.it("updateKey reseals everything: new key opens, old key fails", async () => {
    const name = uniqueName();
    const [oldKey, newKey] = [DatabaseKey.generate(), DatabaseKey.generate()];
    const cred = credentialRow();
    const bundles = Array.from({ length: 10 }, () => keypackageBundle(cred.id));
    const ks = await openIndexedDbKeystore(name, oldKey);
    await ks.commit([
      { kind: "put", table: "credentials", key: cred.id, row: cred },
      ...bundles.flatMap(bundleOps),
    ]);
    await ks.updateKey(newKey);
    await ks.commit(bundleOps(keypackageBundle(cred.id)));
    await ks.close();
    const err = await errorOf(openIndexedDbKeystore(name, oldKey));
    expect(MlsKeypackagesError.is(err, ErrorCode.WrongDatabaseKey)).toBe(true);
    const again = await openIndexedDbKeystore(name, newKey);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles)
      expect(await again.get("encryption_keypairs", b.kp.encryptionKey)).toEqual(b.enc);
    expect((await again.counts()).keypackages).toBe(11);
    await again.close();
    await deleteDb(name);
  });

  api.it("a database from a newer schema is refused with SchemaTooNew", async () => {
    const name = uniqueName();
    (await rawDb(name, INDEXEDDB_SCHEMA_VERSION + 1)).close();
    const err = await errorOf(openIndexedDbKeystore(name, DatabaseKey.generate()));
    expect(MlsKeypackagesError.is(err, ErrorCode.SchemaTooNew), String(err)).toBe(true);
    await deleteDb(name);
  });

  api.it("migrates a database of the per-row format (schema 2) with its data", async () => {
    const name = uniqueName();
    const key = DatabaseKey.generate();
    const cred = credentialRow();
    const bundles = Array.from({ length: 20 }, (_, i) => keypackageBundle(cred.id, { lastResort: i === 0 }));
    await buildLegacyDatabase(indexedDB, name, key, 2, [
      { kind: "put", table: "credentials", key: cred.id, row: cred },
      ...bundles.flatMap(bundleOps),
    ]);
    const err = await errorOf(openIndexedDbKeystore(name, DatabaseKey.generate()));
    expect(MlsKeypackagesError.is(err, ErrorCode.WrongDatabaseKey)).toBe(true);
    expect((await rawDump(name)).version).toBe(2);
    const ks = await openIndexedDbKeystore(name, key);
    expect(await ks.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles) {
      expect(await ks.get("keypackages", b.kp.ref)).toEqual(b.kp);
      expect(await ks.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
    }
    await ks.close();
    const raw = await rawDump(name);
    expect(raw.version).toBe(INDEXEDDB_SCHEMA_VERSION);
    expect(Object.keys(raw.stores).sort()).toEqual(["chunks", "log", "meta"]);
    await deleteDb(name);
  });

  api.it("compaction folds the log into chunks; reopening reads the same rows", async () => {
    const name = uniqueName();
    const key = DatabaseKey.generate();
    const cred = credentialRow();
    const ks = await openIndexedDbKeystore(name, key, { compaction: { maxLogRecords: 3, chunkBytes: 4096 } });
    const live: string[] = [];
    for (let i = 0; i < 12; i++) {
      const add = Array.from({ length: 10 }, () => keypackageBundle(cred.id));
      const gone = live.splice(0, 3);
      live.push(...add.map((b) => b.kp.ref));
      const drop = await Promise.all(gone.map((ref) => ks.get("keypackages", ref)));
      await ks.commit([...add.flatMap(bundleOps), ...drop.flatMap((kp) => (kp ? bundleDeleteOps(kp) : []))]);
    }
    await ks.compact();
    expect(ks.stats.logRecords).toBe(0);
    const want = live.sort();
    expect((await ks.keypackageRefsForCredential(cred.id)).sort()).toEqual(want);
    await ks.close();
    const again = await openIndexedDbKeystore(name, key);
    expect((await again.keypackageRefsForCredential(cred.id)).sort()).toEqual(want);
    expect((await again.counts()).hpke_private_keys).toBe(want.length);
    await again.close();
    await deleteDb(name);
  });

  api.it(
    "two connections in one page (Web Locks, BroadcastChannel): concurrent commits all land",
    async () => {
      const name = uniqueName();
      const key = DatabaseKey.generate();
      const a = await openIndexedDbKeystore(name, key, { shared: false });
      const b = await openIndexedDbKeystore(name, key, { shared: false });
      const cred = credentialRow();
      const run = (ks: typeof a) =>
        Promise.all(Array.from({ length: 10 }, () => ks.commit(bundleOps(keypackageBundle(cred.id)))));
      await Promise.all([run(a), run(b)]);
      await new Promise((r) => setTimeout(r, 50));
      expect((await a.counts()).keypackages).toBe(20);
      expect((await b.counts()).keypackages).toBe(20);
      await a.close();
      await b.close();
      await deleteDb(name);
    },
  );
});

// ── run ───────────────────────────────────────────────────────────────────────
export interface PageResults {
  done: boolean;
  userAgent: string;
  passed: string[];
  failed: { name: string; error: string }[];
}

async function main(): Promise<void> {
  const results: PageResults = { done: false, userAgent: navigator.userAgent, passed: [], failed: [] };
  for (const t of tests) {
    try {
      for (const h of t.before) await h();
      try {
        await t.body();
      } finally {
        for (const h of t.after) await h();
      }
      results.passed.push(t.name);
    } catch (e) {
      results.failed.push({
        name: t.name,
        error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      });
    }
  }
  results.done = true;
  (globalThis as { __results?: PageResults }).__results = results;
}

void main();
