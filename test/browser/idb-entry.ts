/**
 * In-page runner (bundled for the browser by harness.ts): the Keystore contract cases
 * (test/keystore/contract-cases.ts, unchanged) plus IndexedDB-specific checks, against the
 * real IndexedDB and WebCrypto of the browser. Publishes `window.__results`.
 */
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { SCHEMA_VERSION, TABLES } from "../../src/keystore/contract.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { RecordDecryptionError } from "../../src/keystore/encryption.js";
import { openIndexedDbKeystore, type StoredRecord } from "../../src/keystore/indexeddb.js";
import { toHex } from "../../src/keystore/staging.js";
import { defineKeystoreContract, type ContractApi, type Matchers } from "../keystore/contract-cases.js";
import { bundleOps, credentialRow, keypackageBundle, randomBytes } from "../keystore/fixtures/rows.js";

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

async function rawGet(name: string, store: string, key: string): Promise<StoredRecord> {
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
api.describe("IndexedDB backend (Chromium)", () => {
  api.it("persists across reopen; a wrong key fails with WrongDatabaseKey", async () => {
    const name = uniqueName();
    const key = DatabaseKey.generate();
    const cred = credentialRow();
    const b = keypackageBundle(cred.id, { lastResort: true });
    const ks = await openIndexedDbKeystore(name, key);
    await ks.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }, ...bundleOps(b)]);
    await ks.close();
    const err = await errorOf(openIndexedDbKeystore(name, DatabaseKey.generate()));
    expect(MlsKeypackagesError.is(err, ErrorCode.WrongDatabaseKey), String(err)).toBe(true);
    const again = await openIndexedDbKeystore(name, key);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    expect(await again.get("keypackages", b.kp.ref)).toEqual(b.kp);
    expect(await again.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
    await again.close();
    await deleteDb(name);
  });

  api.it("a record moved under another key or into another table fails to decrypt (AAD)", async () => {
    const name = uniqueName();
    const cred = credentialRow();
    const [a, b] = [keypackageBundle(cred.id), keypackageBundle(cred.id)];
    const ks = await openIndexedDbKeystore(name, DatabaseKey.generate());
    await ks.commit([...bundleOps(a), ...bundleOps(b)]);
    const ra = await rawGet(name, "hpke_private_keys", a.kp.initKey);
    const rb = await rawGet(name, "hpke_private_keys", b.kp.initKey);
    await rawPut(name, "hpke_private_keys", { ...ra, v: rb.v });
    await rawPut(name, "encryption_keypairs", { ...rb, publicKey: b.kp.initKey });
    const moved = await errorOf(ks.get("hpke_private_keys", a.kp.initKey));
    expect(moved).toBeInstanceOf(RecordDecryptionError);
    expect((moved as MlsKeypackagesError).code).toBe(ErrorCode.KeystoreError);
    expect(await errorOf(ks.get("encryption_keypairs", b.kp.initKey))).toBeInstanceOf(RecordDecryptionError);
    // The untouched record still decrypts.
    expect(await ks.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
    await ks.close();
    await deleteDb(name);
  });

  api.it("records keep metadata in clear, secrets only as ciphertext; listing decrypts nothing", async () => {
    const name = uniqueName();
    const cred = credentialRow();
    const b = keypackageBundle(cred.id);
    const ks = await openIndexedDbKeystore(name, DatabaseKey.generate());
    await ks.commit(bundleOps(b));
    const rec = await rawGet(name, "keypackages", b.kp.ref);
    expect(Object.keys(rec).sort()).toEqual([
      "ciphersuite",
      "credentialId",
      "credentialType",
      "h",
      "lastResort",
      "notAfter",
      "notBefore",
      "ref",
      "v",
    ]);
    const priv = await rawGet(name, "hpke_private_keys", b.kp.initKey);
    expect(Object.keys(priv).sort()).toEqual(["h", "publicKey", "v"]);
    expect(toHex(priv.v).includes(toHex(b.hpke.privateKey))).toBe(false);
    await rawPut(name, "keypackages", { ...rec, v: randomBytes(rec.v.length) });
    expect((await ks.listKeypackageMeta()).map((m) => m.ref)).toEqual([b.kp.ref]);
    expect(await ks.keypackageRefsForCredential(cred.id)).toEqual([b.kp.ref]);
    expect(await errorOf(ks.get("keypackages", b.kp.ref))).toBeInstanceOf(RecordDecryptionError);
    await ks.close();
    await deleteDb(name);
  });

  api.it("updateKey re-encrypts everything: new key opens, old key fails", async () => {
    const name = uniqueName();
    const [oldKey, newKey] = [DatabaseKey.generate(), DatabaseKey.generate()];
    const cred = credentialRow();
    const bundles = Array.from({ length: 10 }, () => keypackageBundle(cred.id));
    const ks = await openIndexedDbKeystore(name, oldKey);
    await ks.commit([
      { kind: "put", table: "credentials", key: cred.id, row: cred },
      ...bundles.flatMap(bundleOps),
    ]);
    const before = await rawGet(name, "credentials", cred.id);
    await ks.updateKey(newKey);
    await ks.close();
    const after = await rawGet(name, "credentials", cred.id);
    expect(toHex(after.v) === toHex(before.v)).toBe(false);
    const err = await errorOf(openIndexedDbKeystore(name, oldKey));
    expect(MlsKeypackagesError.is(err, ErrorCode.WrongDatabaseKey)).toBe(true);
    const again = await openIndexedDbKeystore(name, newKey);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles)
      expect(await again.get("encryption_keypairs", b.kp.encryptionKey)).toEqual(b.enc);
    expect((await again.counts()).keypackages).toBe(10);
    await again.close();
    await deleteDb(name);
  });

  api.it("a database from a newer schema is refused with SchemaTooNew", async () => {
    const name = uniqueName();
    (await rawDb(name, SCHEMA_VERSION + 1)).close();
    const err = await errorOf(openIndexedDbKeystore(name, DatabaseKey.generate()));
    expect(MlsKeypackagesError.is(err, ErrorCode.SchemaTooNew), String(err)).toBe(true);
    await deleteDb(name);
  });

  api.it("one store per table, at the current schema version", async () => {
    const name = uniqueName();
    await (await openIndexedDbKeystore(name, DatabaseKey.generate())).close();
    const db = await rawDb(name);
    expect(db.version).toBe(SCHEMA_VERSION);
    expect(Array.from(db.objectStoreNames).sort()).toEqual([...TABLES, "meta"].sort());
    db.close();
    await deleteDb(name);
  });
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
