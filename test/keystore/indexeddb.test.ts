/**
 * The IndexedDB commit-log keystore on fake-indexeddb: format, atomicity, compaction, rekeying,
 * migration of the per-row format, and several connections ("tabs") on one database.
 * (The Keystore contract runs in contract.test.ts; the same checks in Chromium in test/browser.)
 */
import "fake-indexeddb/auto";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { TABLES, type RowOf, type StagedOp, type TableName } from "../../src/keystore/contract.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { RecordDecryptionError } from "../../src/keystore/encryption.js";
import {
  INDEXEDDB_SCHEMA_VERSION,
  openIndexedDbKeystore,
  type IndexedDbKeystore,
  type IndexedDbOptions,
} from "../../src/keystore/indexeddb.js";
import { MemoryKeystore } from "../../src/keystore/memory.js";
import { keyFn, toHex } from "../../src/keystore/staging.js";
import { Ciphersuite, ClientId, CoreCrypto, Credential, Database } from "../../src/index.js";
import type { SharedLock } from "../../src/keystore/sharedLock.js";
import { TestLockManager, buildLegacyDatabase, dumpIdb, idbRequest, withRawIdb } from "./fixtures/idb.js";
import {
  bundleDeleteOps,
  bundleOps,
  conversationRow,
  credentialRow,
  keypackageBundle,
  randomBytes,
} from "./fixtures/rows.js";

let factory: IDBFactory;
beforeEach(() => {
  factory = new IDBFactory();
});

const open = (name: string, key: DatabaseKey, options: IndexedDbOptions = {}): Promise<IndexedDbKeystore> =>
  openIndexedDbKeystore(name, key, { indexedDB: factory, ...options });

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return MlsKeypackagesError.is(e) ? e.code : `not ours: ${String(e)}`;
  }
}

/** Rows of one of everything: a credential, bundles (one last resort), a conversation, a kv row. */
function population(bundles = 3) {
  const cred = credentialRow();
  const kps = Array.from({ length: bundles }, (_, i) => keypackageBundle(cred.id, { lastResort: i === 0 }));
  const conv = conversationRow(cred.id);
  const ops: StagedOp[] = [
    { kind: "put", table: "credentials", key: cred.id, row: cred },
    ...kps.flatMap(bundleOps),
    { kind: "put", table: "conversations", key: toHex(conv.id), row: conv },
    { kind: "put", table: "kv", key: "seq", row: { key: "seq", value: new Uint8Array([7]) } },
  ];
  return { cred, kps, conv, ops };
}

/** A row with byte fields as hex (fast to compare). */
function digest(row: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row as object)) out[k] = v instanceof Uint8Array ? toHex(v) : v;
  return out;
}

/** Byte fields as hex, for cheap comparisons of raw dumps. */
function hexDump(d: { stores: Record<string, Record<string, unknown>[]> }): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const [s, recs] of Object.entries(d.stores)) out[s] = recs.map(digest);
  return out;
}

/** Every table of a keystore, sorted, for comparisons. */
async function contents(ks: { all<T extends TableName>(t: T): Promise<RowOf[T][]> }) {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLES) {
    const keyOf = keyFn(t);
    const rows = (await ks.all(t)).map((r) => [keyOf(r as never), r] as const);
    out[t] = rows.sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, r]) => [k, digest(r)]);
  }
  return out;
}

describe("IndexedDB keystore: format", () => {
  it("persists across reopen, including the last resort flag, empty and large values", async () => {
    const key = DatabaseKey.generate();
    const { cred, kps, conv, ops } = population();
    const big = randomBytes(300_000);
    const ks = await open("persist", key);
    expect(ks.backend).toBe("indexeddb");
    await ks.commit(ops);
    await ks.commit([
      { kind: "put", table: "kv", key: "big", row: { key: "big", value: big } },
      { kind: "put", table: "kv", key: "empty", row: { key: "empty", value: new Uint8Array(0) } },
    ]);
    const before = await contents(ks);
    await ks.close();
    const again = await open("persist", key);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    for (const b of kps) expect(await again.get("keypackages", b.kp.ref)).toEqual(b.kp);
    expect((await again.get("keypackages", kps[0]!.kp.ref))?.lastResort).toBe(true);
    expect(await again.get("conversations", toHex(conv.id))).toEqual(conv);
    expect(toHex((await again.get("kv", "big"))?.value ?? new Uint8Array(0))).toBe(toHex(big));
    expect((await again.get("kv", "empty"))?.value).toEqual(new Uint8Array(0));
    expect(await contents(again)).toEqual(before);
    expect(await again.conversationsForCredential(cred.id)).toEqual([toHex(conv.id)]);
    await again.close();
  });

  it("stores only sealed records: no row, key, ref or credential id in clear", async () => {
    const { cred, kps, ops } = population();
    const ks = await open("shape", DatabaseKey.generate(), { compaction: { maxLogRecords: 2 } });
    await ks.commit(ops);
    await ks.commit([{ kind: "put", table: "kv", key: "a", row: { key: "a", value: randomBytes(8) } }]);
    await ks.compact();
    await ks.commit([{ kind: "put", table: "kv", key: "b", row: { key: "b", value: randomBytes(8) } }]);
    await ks.close();
    const { version, stores } = await dumpIdb(factory, "shape");
    expect(version).toBe(INDEXEDDB_SCHEMA_VERSION);
    expect(Object.keys(stores).sort()).toEqual(["chunks", "log", "meta"]);
    const allowed = new Set(["name", "seq", "id", "keyEpoch", "compactions", "v"]);
    const text: string[] = [];
    for (const recs of Object.values(stores)) {
      for (const r of recs) {
        for (const [k, v] of Object.entries(r)) {
          expect(allowed.has(k), `field ${k}`).toBe(true);
          if (k === "v") expect(v).toBeInstanceOf(Uint8Array);
          else if (k === "name") expect(["keycheck", "head"]).toContain(v);
          else expect(typeof v).toBe("number");
          text.push(v instanceof Uint8Array ? toHex(v) + Buffer.from(v).toString("latin1") : String(v));
        }
      }
    }
    const all = text.join("|");
    for (const needle of [
      cred.id,
      kps[0]!.kp.ref,
      kps[1]!.kp.initKey,
      Buffer.from(kps[1]!.kp.ref, "hex").toString("latin1"),
    ])
      expect(all.includes(needle)).toBe(false);
    expect(stores.chunks!.length).toBeGreaterThan(0);
    expect(stores.log!.map((r) => r.seq)).toEqual([3]);
  });

  it("a commit writes one log record whatever the number of rows stored", async () => {
    const cred = credentialRow();
    const ks = await open("one-record", DatabaseKey.generate(), { compaction: false });
    const many = Array.from({ length: 1000 }, () => keypackageBundle(cred.id));
    await ks.commit([
      { kind: "put", table: "credentials", key: cred.id, row: cred },
      ...many.flatMap(bundleOps),
    ]);
    await ks.compact();
    const before = await dumpIdb(factory, "one-record");
    expect(before.stores.log).toHaveLength(0);
    const fresh = keypackageBundle(cred.id);
    await ks.commit(bundleOps(fresh));
    await ks.commit(bundleDeleteOps(many[0]!.kp));
    const after = await dumpIdb(factory, "one-record");
    expect(after.stores.log!.map((r) => r.seq)).toEqual([2, 3]);
    expect(hexDump(after).chunks).toEqual(hexDump(before).chunks);
    expect(hexDump(after).meta).toEqual(hexDump(before).meta);
    // Re-inserting identical rows or deleting absent ones writes nothing.
    await ks.commit(bundleOps(fresh));
    await ks.commit(bundleDeleteOps(many[0]!.kp));
    expect((await dumpIdb(factory, "one-record")).stores.log).toHaveLength(2);
    expect((await ks.counts()).keypackages).toBe(1000);
    await ks.close();
  });

  it("wrong key: WrongDatabaseKey, nothing written", async () => {
    const key = DatabaseKey.generate();
    const ks = await open("wrongkey", key);
    const { cred, ops } = population();
    await ks.commit(ops);
    await ks.close();
    const before = await dumpIdb(factory, "wrongkey");
    expect(await code(open("wrongkey", DatabaseKey.generate()))).toBe(ErrorCode.WrongDatabaseKey);
    expect(await dumpIdb(factory, "wrongkey")).toEqual(before);
    const again = await open("wrongkey", key);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    await again.close();
  });

  it("log records are bound to their sequence number; a gap is CorruptDatabase; a lost tail is a prefix", async () => {
    const key = DatabaseKey.generate();
    const ks = await open("bound", key, { compaction: false });
    const kv = (k: string): StagedOp => ({
      kind: "put",
      table: "kv",
      key: k,
      row: { key: k, value: randomBytes(4) },
    });
    await ks.commit([kv("a")]);
    await ks.commit([kv("b")]);
    await ks.commit([kv("c")]);
    await ks.close();
    const { stores } = await dumpIdb(factory, "bound");
    const [r1, r2, r3] = stores.log as { seq: number; v: Uint8Array }[];
    const put = (store: string, value: unknown) =>
      withRawIdb(factory, "bound", (db) =>
        idbRequest(db.transaction(store, "readwrite").objectStore(store).put(value)),
      );
    const del = (store: string, k: number) =>
      withRawIdb(factory, "bound", (db) =>
        idbRequest(db.transaction(store, "readwrite").objectStore(store).delete(k)),
      );

    // Swapped ciphertexts: they no longer decrypt.
    await put("log", { seq: 1, v: r2!.v });
    await put("log", { seq: 2, v: r1!.v });
    const swapped = await open("bound", key).catch((e: unknown) => e);
    expect(swapped).toBeInstanceOf(RecordDecryptionError);
    expect((swapped as MlsKeypackagesError).code).toBe(ErrorCode.KeystoreError);
    await put("log", r1);
    await put("log", r2);

    // A record missing in the middle: refused, never half-applied.
    await del("log", 2);
    const gap = await open("bound", key).catch((e: unknown) => e);
    expect(MlsKeypackagesError.is(gap, ErrorCode.CorruptDatabase)).toBe(true);
    expect((gap as MlsKeypackagesError).details.reason).toBe("log_gap");
    await put("log", r2);

    // The last record lost (rolled back by whoever can write the origin's storage): a prefix.
    await del("log", 3);
    const prefix = await open("bound", key);
    expect((await prefix.all("kv")).map((r) => r.key).sort()).toEqual(["a", "b"]);
    await prefix.close();
    void r3;
  });

  it("an insert-only conflict writes nothing", async () => {
    const ks = await open("abort", DatabaseKey.generate());
    const { kps, cred, ops } = population();
    await ks.commit(ops);
    const before = await dumpIdb(factory, "abort");
    const fresh = Array.from({ length: 20 }, () => keypackageBundle(cred.id));
    const a = kps[0]!;
    const err = await ks
      .commit([
        ...fresh.flatMap(bundleOps),
        {
          kind: "insert",
          table: "keypackages",
          key: a.kp.ref,
          row: { ...a.kp, notAfter: a.kp.notAfter + 1 },
        },
      ])
      .catch((e: unknown) => e);
    expect(MlsKeypackagesError.is(err, ErrorCode.AlreadyExists)).toBe(true);
    expect(await dumpIdb(factory, "abort")).toEqual(before);
    await ks.close();
  });

  it("a schema newer than the code: SchemaTooNew", async () => {
    const r = factory.open("toonew", INDEXEDDB_SCHEMA_VERSION + 1);
    (await idbRequest(r)).close();
    expect(await code(open("toonew", DatabaseKey.generate()))).toBe(ErrorCode.SchemaTooNew);
  });

  it("without IndexedDB: a KeystoreError, not a crash", async () => {
    const saved = globalThis.indexedDB;
    try {
      (globalThis as { indexedDB?: IDBFactory }).indexedDB = undefined;
      expect(await code(openIndexedDbKeystore("none", DatabaseKey.generate()))).toBe(ErrorCode.KeystoreError);
    } finally {
      globalThis.indexedDB = saved;
    }
  });
});

describe("IndexedDB keystore: compaction", () => {
  it("folds the log into snapshot chunks; reopening gives the same rows as an in-memory mirror", async () => {
    const key = DatabaseKey.generate();
    const ks = await open("compact", key, { compaction: { maxLogRecords: 4, chunkBytes: 4096 } });
    const mirror = new MemoryKeystore();
    const cred = credentialRow();
    const live: ReturnType<typeof keypackageBundle>[] = [];
    const apply = async (ops: StagedOp[]) => {
      await ks.commit(ops);
      await mirror.commit(ops);
    };
    await apply([{ kind: "put", table: "credentials", key: cred.id, row: cred }]);
    for (let i = 0; i < 30; i++) {
      const add = Array.from({ length: 5 }, () => keypackageBundle(cred.id));
      const drop = live.splice(0, 2);
      live.push(...add);
      await apply([
        ...add.flatMap(bundleOps),
        ...drop.flatMap((b) => bundleDeleteOps(b.kp)),
        { kind: "put", table: "kv", key: `k${i % 3}`, row: { key: `k${i % 3}`, value: randomBytes(i) } },
      ]);
    }
    // The automatic compaction runs shortly after a commit that crossed maxLogRecords (on a timer):
    // wait for it rather than race it, then fold the rest explicitly.
    await vi.waitFor(() => expect(ks.stats.compactions).toBeGreaterThan(0), { timeout: 10_000 });
    await apply([{ kind: "put", table: "kv", key: "last", row: { key: "last", value: randomBytes(8) } }]);
    await ks.compact();
    expect(ks.stats.logRecords).toBe(0);
    expect(ks.stats.buckets).toBeGreaterThan(1);
    expect(ks.stats.compactions).toBeGreaterThan(1);
    expect(await contents(ks)).toEqual(await contents(mirror));
    await ks.close();
    const { stores } = await dumpIdb(factory, "compact");
    expect(stores.log).toHaveLength(0);
    const again = await open("compact", key);
    expect(await contents(again)).toEqual(await contents(mirror));
    await again.close();
  });

  it("log records a snapshot covers are ignored if a crash left them behind", async () => {
    const key = DatabaseKey.generate();
    const ks = await open("leftover", key, { compaction: false });
    const kv = (k: string): StagedOp => ({
      kind: "put",
      table: "kv",
      key: k,
      row: { key: k, value: randomBytes(4) },
    });
    await ks.commit([kv("a")]);
    await ks.commit([kv("b"), { kind: "delete", table: "kv", key: "a" }]);
    const { stores } = await dumpIdb(factory, "leftover");
    await ks.compact();
    await ks.commit([kv("c")]);
    await ks.close();
    // Put the covered records back, as if the process died between compaction and log cleanup.
    await withRawIdb(factory, "leftover", async (db) => {
      const tx = db.transaction("log", "readwrite");
      for (const r of stores.log ?? []) tx.objectStore("log").put(r);
      await new Promise((resolve) => (tx.oncomplete = resolve));
    });
    expect((await dumpIdb(factory, "leftover")).stores.log).toHaveLength(3);
    const again = await open("leftover", key, { compaction: false });
    expect((await again.all("kv")).map((r) => r.key).sort()).toEqual(["b", "c"]);
    await again.compact();
    expect((await dumpIdb(factory, "leftover")).stores.log).toHaveLength(0);
    await again.close();
  });

  it("waits for a quiet moment: no compaction while commits keep coming, one soon after they stop", async () => {
    const ks = await open("quiet", DatabaseKey.generate(), {
      compaction: { maxLogRecords: 4, quietMs: 150 },
    });
    const cred = credentialRow();
    await ks.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }]);
    // 10 commits 40 ms apart: past maxLogRecords, below 4× it, never 150 ms without a commit.
    for (let i = 0; i < 10; i++) {
      await ks.commit([
        { kind: "put", table: "kv", key: `q${i}`, row: { key: `q${i}`, value: randomBytes(4) } },
      ]);
      await new Promise((r) => setTimeout(r, 40));
      expect(ks.stats.compactions).toBe(0);
    }
    expect(ks.stats.logRecords).toBe(11);
    await vi.waitFor(() => expect(ks.stats.compactions).toBe(1), { timeout: 5_000 });
    await vi.waitFor(() => expect(ks.stats.logRecords).toBe(0), { timeout: 5_000 });
    await ks.close();
  });

  it("a log past 4× its limits is compacted even while commits keep coming", async () => {
    const ks = await open("overdue", DatabaseKey.generate(), {
      compaction: { maxLogRecords: 4, quietMs: 60_000 },
    });
    for (let i = 0; i < 40 && ks.stats.compactions === 0; i++) {
      await ks.commit([
        { kind: "put", table: "kv", key: `o${i}`, row: { key: `o${i}`, value: randomBytes(4) } },
      ]);
      await new Promise((r) => setTimeout(r, 10));
    }
    await vi.waitFor(() => expect(ks.stats.compactions).toBeGreaterThan(0), { timeout: 5_000 });
    await ks.close();
  });

  it("compaction rewrites only the buckets whose rows changed", async () => {
    const cred = credentialRow();
    const ks = await open("incremental", DatabaseKey.generate(), { compaction: { chunkBytes: 8192 } });
    await ks.commit(Array.from({ length: 200 }, () => keypackageBundle(cred.id)).flatMap(bundleOps));
    await ks.compact();
    const before = (await dumpIdb(factory, "incremental")).stores.chunks as { id: number }[];
    expect(before.length).toBeGreaterThan(8);
    await ks.commit([{ kind: "put", table: "kv", key: "x", row: { key: "x", value: randomBytes(3) } }]);
    await ks.compact();
    const after = (await dumpIdb(factory, "incremental")).stores.chunks as { id: number }[];
    const kept = after.filter((c) => before.some((b) => b.id === c.id));
    expect(after.length - kept.length).toBe(1);
    expect(before.length - kept.length).toBeLessThanOrEqual(1);
    await ks.close();
  });

  it("a compaction that does not complete leaves the previous state readable", async () => {
    const key = DatabaseKey.generate();
    const ks = await open("crash-compact", key, { compaction: false });
    const cred = credentialRow();
    const bundles = Array.from({ length: 50 }, () => keypackageBundle(cred.id));
    for (let i = 0; i < 10; i++) await ks.commit(bundles.slice(i * 5, i * 5 + 5).flatMap(bundleOps));
    const before = await dumpIdb(factory, "crash-compact");
    // Abort the compaction's IndexedDB transaction after all its writes were issued (the head
    // is written last).
    const proto = Object.getPrototypeOf(
      (await withRawIdb(factory, "crash-compact", async (db) =>
        db.transaction("meta").objectStore("meta"),
      )) as object,
    ) as { put: (this: IDBObjectStore, v: unknown) => IDBRequest };
    const realPut = proto.put;
    proto.put = function (this: IDBObjectStore, v: unknown) {
      const r = realPut.call(this, v);
      if (this.name === "meta" && (v as { name?: unknown }).name === "head") this.transaction.abort();
      return r;
    };
    try {
      expect(await code(ks.compact())).toBe(ErrorCode.KeystoreError);
    } finally {
      proto.put = realPut;
    }
    expect(await dumpIdb(factory, "crash-compact")).toEqual(before);
    // The same connection and a new one still read everything, and compaction works afterwards.
    expect((await ks.counts()).keypackages).toBe(50);
    await ks.compact();
    await ks.close();
    const again = await open("crash-compact", key);
    expect((await again.keypackageRefsForCredential(cred.id)).sort()).toEqual(
      bundles.map((b) => b.kp.ref).sort(),
    );
    await again.close();
  });
});

describe("IndexedDB keystore: rekeying", () => {
  it("updateKey reseals everything: new key opens, old key fails, other connections are told", async () => {
    const oldKey = DatabaseKey.generate();
    const newKey = DatabaseKey.generate();
    const { cred, kps, conv, ops } = population(10);
    const ks = await open("rekey", oldKey, { compaction: false });
    const other = await open("rekey", oldKey, { compaction: false, shared: false });
    await ks.commit(ops);
    await ks.commit([{ kind: "delete", table: "kv", key: "seq" }]);
    const before = await dumpIdb(factory, "rekey");
    const expected = await contents(ks);
    await ks.updateKey(newKey);
    // Same instance keeps working, including insert-only checks.
    await ks.commit(bundleOps(kps[0]!));
    expect(
      await code(
        ks.commit([
          {
            kind: "insert",
            table: "hpke_private_keys",
            key: kps[1]!.kp.initKey,
            row: { publicKey: kps[1]!.hpke.publicKey, privateKey: randomBytes(32) },
          },
        ]),
      ),
    ).toBe(ErrorCode.AlreadyExists);
    expect(await contents(ks)).toEqual(expected);
    await ks.close();

    const after = await dumpIdb(factory, "rekey");
    expect(after.stores.log).toHaveLength(0);
    const oldV = new Set(
      Object.values(before.stores)
        .flat()
        .map((r) => toHex(r.v as Uint8Array)),
    );
    for (const r of Object.values(after.stores).flat())
      expect(oldV.has(toHex(r.v as Uint8Array))).toBe(false);

    // The other connection (old key) fails once it learns of the new key, never reads garbage.
    await new Promise((r) => setTimeout(r, 20));
    expect(await code(other.counts())).toBe(ErrorCode.WrongDatabaseKey);
    await other.close();

    expect(await code(open("rekey", oldKey))).toBe(ErrorCode.WrongDatabaseKey);
    const again = await open("rekey", newKey);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    expect(await again.get("conversations", toHex(conv.id))).toEqual(conv);
    expect(await contents(again)).toEqual(expected);
    await again.close();
  });

  it("Database.updateKey works on it", async () => {
    const key = DatabaseKey.generate();
    const next = DatabaseKey.generate();
    const db = Database.fromKeystore(await open("db-rekey", key));
    const { ops } = population();
    await db.keystore.commit(ops);
    await db.updateKey(next);
    await db.close();
    expect(await code(open("db-rekey", key))).toBe(ErrorCode.WrongDatabaseKey);
    await (await open("db-rekey", next)).close();
  });
});

describe("IndexedDB keystore: migration from the per-row format (schema 1–2)", () => {
  for (const version of [1, 2] as const) {
    it(`migrates a schema ${version} database with its data intact, in one version change`, async () => {
      const key = DatabaseKey.generate();
      const { cred, kps, conv, ops } = population(5);
      await buildLegacyDatabase(factory, `legacy${version}`, key, version, ops);
      expect((await dumpIdb(factory, `legacy${version}`)).version).toBe(version);

      // Wrong key: refused, the legacy database untouched.
      const untouched = await dumpIdb(factory, `legacy${version}`);
      expect(await code(open(`legacy${version}`, DatabaseKey.generate()))).toBe(ErrorCode.WrongDatabaseKey);
      expect(await dumpIdb(factory, `legacy${version}`)).toEqual(untouched);

      const ks = await open(`legacy${version}`, key);
      expect(await ks.get("credentials", cred.id)).toEqual(cred);
      for (const [i, b] of kps.entries()) {
        expect(await ks.get("keypackages", b.kp.ref)).toEqual(
          version === 1 ? { ...b.kp, lastResort: false } : b.kp,
        );
        expect((await ks.get("keypackages", b.kp.ref))?.lastResort).toBe(version === 2 && i === 0);
        expect(await ks.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
        expect(await ks.get("encryption_keypairs", b.kp.encryptionKey)).toEqual(b.enc);
      }
      expect(await ks.get("conversations", toHex(conv.id))).toEqual(conv);
      expect(await ks.conversationsForCredential(cred.id)).toEqual([toHex(conv.id)]);
      expect(await ks.get("kv", "seq")).toEqual({ key: "seq", value: new Uint8Array([7]) });
      await ks.commit(bundleOps(keypackageBundle(cred.id)));
      await ks.close();

      const raw = await dumpIdb(factory, `legacy${version}`);
      expect(raw.version).toBe(INDEXEDDB_SCHEMA_VERSION);
      expect(Object.keys(raw.stores).sort()).toEqual(["chunks", "log", "meta"]);
      const again = await open(`legacy${version}`, key);
      expect((await again.counts()).keypackages).toBe(6);
      await again.close();
    });
  }

  it("an empty schema 2 database migrates to an empty keystore", async () => {
    const key = DatabaseKey.generate();
    await buildLegacyDatabase(factory, "legacy-empty", key, 2, []);
    const ks = await open("legacy-empty", key);
    expect(Object.values(await ks.counts()).every((n) => n === 0)).toBe(true);
    await ks.close();
  });
});

describe("IndexedDB keystore: several connections (tabs) on one database", () => {
  const kvOp = (k: string): StagedOp => ({
    kind: "put",
    table: "kv",
    key: k,
    row: { key: k, value: randomBytes(4) },
  });

  for (const mode of ["with Web Locks", "without Web Locks"] as const) {
    it(`${mode}: concurrent commits from two connections all land; each sees the other's`, async () => {
      const key = DatabaseKey.generate();
      const locks = mode === "with Web Locks" ? new TestLockManager() : null;
      const a = await open("tabs", key, { locks, compaction: { maxLogRecords: 8 }, shared: false });
      const b = await open("tabs", key, { locks, compaction: { maxLogRecords: 8 }, shared: false });
      const cred = credentialRow();
      await a.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }]);
      const run = (ks: IndexedDbKeystore, tag: string) =>
        Promise.all(
          Array.from({ length: 15 }, (_, i) =>
            ks.commit([...bundleOps(keypackageBundle(cred.id)), kvOp(`${tag}${i}`)]),
          ),
        );
      await Promise.all([run(a, "a"), run(b, "b")]);
      await new Promise((r) => setTimeout(r, 20)); // BroadcastChannel delivery
      for (const ks of [a, b]) {
        expect((await ks.counts()).keypackages).toBe(30);
        expect((await ks.all("kv")).length).toBe(30);
      }
      await a.close();
      await b.close();
      const c = await open("tabs", key);
      expect((await c.counts()).keypackages).toBe(30);
      await c.close();
    });
  }

  it("with Web Locks: transactions of two sessions serialize, the lock changes hands on request", async () => {
    const key = DatabaseKey.generate();
    const locks = new TestLockManager();
    const clientId = ClientId.parse("11111111-2222-4333-8444-555555555555:1a2b@example.com");
    const suite = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    const sessions = await Promise.all(
      [0, 1].map(async () =>
        CoreCrypto.open(Database.fromKeystore(await open("serial", key, { locks, shared: false }))),
      ),
    );
    const intervals: [number, number, number][] = [];
    await Promise.all(
      sessions.map(async (cc, who) => {
        const ref = await cc.transaction((tx) =>
          tx.addCredential(Credential.basic(suite, clientId)).catch(() => undefined),
        );
        void ref;
        for (let i = 0; i < 6; i++) {
          await cc.transaction(async (tx) => {
            const t0 = performance.now();
            const before = (await tx.getKeypackageRefs()).length;
            const [c] = await tx.findCredentials({});
            await tx.generateKeypackage(c!);
            // Everything another session committed is visible at the start of ours.
            expect((await tx.getKeypackageRefs()).length).toBe(before + 1);
            intervals.push([who, t0, performance.now()]);
          });
        }
      }),
    );
    intervals.sort((x, y) => x[1] - y[1]);
    for (let i = 1; i < intervals.length; i++)
      expect(intervals[i]![1]).toBeGreaterThanOrEqual(intervals[i - 1]![2]);
    expect(new Set(intervals.map((x) => x[0])).size).toBe(2);
    expect(locks.grants.get("mls-keypackages/keystore/serial")).toBeGreaterThan(2);
    for (const cc of sessions) {
      expect((await cc.database.counts()).keypackages).toBe(12);
      await cc.close();
    }
  });

  it("with Web Locks: an idle connection keeps the lock until another asks or its lockIdleMs pass", async () => {
    const key = DatabaseKey.generate();
    const locks = new TestLockManager();
    const grants = (): number => locks.grants.get("mls-keypackages/keystore/sticky") ?? 0;
    const holds = (ks: IndexedDbKeystore): boolean => (ks.transactionLock as SharedLock).exclusive;
    const transaction = async (ks: IndexedDbKeystore): Promise<void> =>
      (await ks.transactionLock.acquire())();
    const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    // The default (30 s): transactions 2.5 s apart keep the lock (one grant, no log-tail read).
    const a = await open("sticky", key, { locks, shared: false });
    await transaction(a);
    await pause(2_500);
    await transaction(a);
    expect(grants()).toBe(1);
    expect(holds(a)).toBe(true);
    // Another connection asks (BroadcastChannel): the idle holder lets go at once.
    const b = await open("sticky", key, { locks, shared: false, lockIdleMs: 100 });
    const t0 = performance.now();
    await transaction(b);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(grants()).toBe(2);
    expect(holds(a)).toBe(false);
    // Idle for longer than its lockIdleMs: the holder lets go by itself.
    expect(holds(b)).toBe(true);
    await pause(400);
    expect(holds(b)).toBe(false);
    await a.close();
    await b.close();
  });

  it("opens in one realm share one connection: same rows at once, the key checked, closed one by one", async () => {
    const key = DatabaseKey.generate();
    const a = await open("shared", key);
    await a.commit([kvOp("x")]);
    const b = await open("shared", key);
    expect((await b.all("kv")).map((r) => r.key)).toEqual(["x"]);
    expect(b.transactionLock).toBe(a.transactionLock);
    expect(await code(open("shared", DatabaseKey.generate()))).toBe(ErrorCode.WrongDatabaseKey);
    await b.commit([kvOp("y")]);
    expect((await a.all("kv")).length).toBe(2);
    await a.close();
    expect(await code(a.counts())).toBe(ErrorCode.KeystoreClosed);
    expect((await b.counts()).kv).toBe(2);
    await b.close();
    const c = await open("shared", key);
    expect((await c.counts()).kv).toBe(2);
    await c.close();
  });

  it("a connection reads another's commit without a transaction (BroadcastChannel)", async () => {
    const key = DatabaseKey.generate();
    const a = await open("notify", key, { shared: false });
    const b = await open("notify", key, { shared: false });
    await a.commit([kvOp("x")]);
    await new Promise((r) => setTimeout(r, 20));
    expect((await b.all("kv")).map((r) => r.key)).toEqual(["x"]);
    // Compaction by one connection past the other's position: the other reloads.
    for (let i = 0; i < 5; i++) await a.commit([kvOp(`y${i}`)]);
    await a.compact();
    await a.commit([kvOp("z")]);
    await new Promise((r) => setTimeout(r, 20));
    expect((await b.all("kv")).length).toBe(7);
    await b.commit([kvOp("from-b")]);
    await new Promise((r) => setTimeout(r, 20));
    expect((await a.all("kv")).length).toBe(8);
    await a.close();
    await b.close();
  });
});
