import "fake-indexeddb/auto";
import { wrap, type IDBPDatabase } from "idb";
import { beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { SCHEMA_VERSION, TABLES } from "../../src/keystore/contract.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { RecordDecryptionError } from "../../src/keystore/encryption.js";
import {
  openIndexedDbKeystore,
  upgradeIndexedDbSchema,
  type StoredRecord,
} from "../../src/keystore/indexeddb.js";
import { toHex } from "../../src/keystore/staging.js";
import { bundleOps, conversationRow, credentialRow, keypackageBundle, randomBytes } from "./fixtures/rows.js";

let factory: IDBFactory;
beforeEach(() => {
  factory = new IDBFactory();
});

async function rawOpen(
  name: string,
  version?: number,
  upgrade?: (db: IDBDatabase, tx: IDBTransaction, old: number) => void,
): Promise<IDBPDatabase> {
  const req = factory.open(name, version);
  if (upgrade)
    req.onupgradeneeded = (ev) => upgrade(req.result, req.transaction as IDBTransaction, ev.oldVersion);
  const db = await wrap(req);
  if (db === undefined) throw new Error("no db");
  return db;
}

/** Every stored object, per store. */
async function dump(name: string): Promise<Record<string, StoredRecord[]>> {
  const db = await rawOpen(name);
  const out: Record<string, StoredRecord[]> = {};
  for (const s of db.objectStoreNames) out[s] = (await db.getAll(s)) as StoredRecord[];
  db.close();
  return out;
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return MlsKeypackagesError.is(e) ? e.code : `not ours: ${String(e)}`;
  }
}

async function populated(name: string, key: DatabaseKey) {
  const ks = await openIndexedDbKeystore(name, key, { indexedDB: factory });
  const cred = credentialRow();
  const bundles = [
    keypackageBundle(cred.id, { lastResort: true }),
    keypackageBundle(cred.id),
    keypackageBundle(cred.id),
  ];
  const conv = conversationRow(cred.id);
  await ks.commit([
    { kind: "put", table: "credentials", key: cred.id, row: cred },
    ...bundles.flatMap(bundleOps),
    { kind: "put", table: "conversations", key: toHex(conv.id), row: conv },
    { kind: "put", table: "kv", key: "seq", row: { key: "seq", value: new Uint8Array([7]) } },
  ]);
  return { ks, cred, bundles, conv };
}

describe("IndexedDB keystore", () => {
  it("persists across reopen", async () => {
    const key = DatabaseKey.generate();
    const { ks, cred, bundles, conv } = await populated("persist", key);
    await ks.close();
    const again = await openIndexedDbKeystore("persist", key, { indexedDB: factory });
    expect(again.backend).toBe("indexeddb");
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles) expect(await again.get("keypackages", b.kp.ref)).toEqual(b.kp);
    expect(await again.get("conversations", toHex(conv.id))).toEqual(conv);
    await again.close();
  });

  it("stores metadata in clear, everything else as one ciphertext", async () => {
    const { ks, bundles, cred } = await populated("shape", DatabaseKey.generate());
    await ks.close();
    const raw = await dump("shape");
    expect(Object.keys(raw).sort()).toEqual([...TABLES, "meta"].sort());
    const kp = raw.keypackages?.find((r) => r.ref === bundles[0]?.kp.ref);
    expect(Object.keys(kp ?? {}).sort()).toEqual(
      [
        "ref",
        "credentialId",
        "ciphersuite",
        "credentialType",
        "notBefore",
        "notAfter",
        "lastResort",
        "v",
        "h",
      ].sort(),
    );
    expect(kp?.lastResort).toBe(true);
    expect(kp?.credentialId).toBe(cred.id);
    expect(Object.keys(raw.credentials?.[0] ?? {}).sort()).toEqual(["id", "v"]);
    expect(Object.keys(raw.hpke_private_keys?.[0] ?? {}).sort()).toEqual(["h", "publicKey", "v"]);
    expect(Object.keys(raw.conversations?.[0] ?? {}).sort()).toEqual(["credentialId", "id", "v"]);
    expect(Object.keys(raw.kv?.[0] ?? {}).sort()).toEqual(["key", "v"]);
    // 12-byte nonce + 16-byte tag around the plaintext; nonces differ.
    const nonces = new Set(
      Object.values(raw)
        .flat()
        .map((r) => toHex(r.v.subarray(0, 12))),
    );
    expect(nonces.size).toBe(Object.values(raw).flat().length);
  });

  it("listing key packages decrypts nothing", async () => {
    const name = "nodecrypt";
    const { ks, bundles, cred } = await populated(name, DatabaseKey.generate());
    // Garble every key package ciphertext behind the keystore's back.
    const db = await rawOpen(name);
    for (const rec of (await db.getAll("keypackages")) as StoredRecord[])
      await db.put("keypackages", { ...rec, v: randomBytes(rec.v.length) });
    db.close();
    expect((await ks.listKeypackageMeta()).map((m) => m.ref).sort()).toEqual(
      bundles.map((b) => b.kp.ref).sort(),
    );
    expect((await ks.keypackageRefsForCredential(cred.id)).sort()).toEqual(
      bundles.map((b) => b.kp.ref).sort(),
    );
    // Loading a whole row does decrypt, and now fails.
    await expect(ks.get("keypackages", bundles[0]?.kp.ref ?? "")).rejects.toBeInstanceOf(
      RecordDecryptionError,
    );
    await ks.close();
  });

  it("a record moved under another key or into another table fails to decrypt (AAD)", async () => {
    const name = "aad";
    const { ks, bundles } = await populated(name, DatabaseKey.generate());
    const [a, b] = bundles;
    if (a === undefined || b === undefined) throw new Error("unreachable");
    const db = await rawOpen(name);
    // Swap the ciphertexts of two HPKE private keys.
    const ra = (await db.get("hpke_private_keys", a.kp.initKey)) as StoredRecord;
    const rb = (await db.get("hpke_private_keys", b.kp.initKey)) as StoredRecord;
    await db.put("hpke_private_keys", { ...ra, v: rb.v });
    // Copy an HPKE record into encryption_keypairs under the same key.
    await db.put("encryption_keypairs", { ...ra, publicKey: a.kp.initKey });
    // Flip one bit of a credential.
    const cred = ((await db.getAll("credentials")) as StoredRecord[])[0] as StoredRecord;
    const flipped = Uint8Array.from(cred.v);
    flipped[20] = (flipped[20] as number) ^ 1;
    await db.put("credentials", { ...cred, v: flipped });
    db.close();

    const err = await ks.get("hpke_private_keys", a.kp.initKey).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordDecryptionError);
    expect((err as RecordDecryptionError).code).toBe(ErrorCode.KeystoreError);
    expect((err as RecordDecryptionError).details.table).toBe("hpke_private_keys");
    await expect(ks.get("encryption_keypairs", a.kp.initKey)).rejects.toBeInstanceOf(RecordDecryptionError);
    await expect(ks.get("credentials", cred.id as string)).rejects.toBeInstanceOf(RecordDecryptionError);
    await expect(ks.all("hpke_private_keys")).rejects.toBeInstanceOf(RecordDecryptionError);
    // Untouched records still decrypt.
    expect(await ks.get("hpke_private_keys", bundles[2]?.kp.initKey ?? "")).toEqual(bundles[2]?.hpke);
    await ks.close();
  });

  it("wrong key: WrongDatabaseKey, nothing written", async () => {
    const key = DatabaseKey.generate();
    const { ks, cred } = await populated("wrongkey", key);
    await ks.close();
    const before = await dump("wrongkey");
    expect(
      await code(openIndexedDbKeystore("wrongkey", DatabaseKey.generate(), { indexedDB: factory })),
    ).toBe(ErrorCode.WrongDatabaseKey);
    expect(await dump("wrongkey")).toEqual(before);
    const again = await openIndexedDbKeystore("wrongkey", key, { indexedDB: factory });
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    await again.close();
  });

  it("updateKey re-encrypts every record: new key opens, old key fails", async () => {
    const oldKey = DatabaseKey.generate();
    const newKey = DatabaseKey.generate();
    const { ks, cred, bundles, conv } = await populated("rekey", oldKey);
    const before = await dump("rekey");
    await ks.updateKey(newKey);
    // Same instance keeps working, including insert-only checks.
    await ks.commit(bundleOps(bundles[0] ?? keypackageBundle(cred.id)));
    await expect(
      ks.commit([
        {
          kind: "insert",
          table: "hpke_private_keys",
          key: bundles[1]?.kp.initKey ?? "",
          row: { publicKey: bundles[1]?.hpke.publicKey ?? randomBytes(1), privateKey: randomBytes(32) },
        },
      ]),
    ).rejects.toMatchObject({ code: ErrorCode.AlreadyExists });
    await ks.close();

    const after = await dump("rekey");
    for (const t of TABLES) {
      expect(after[t]?.length).toBe(before[t]?.length);
      const old = new Set((before[t] ?? []).map((r) => toHex(r.v)));
      for (const r of after[t] ?? []) expect(old.has(toHex(r.v))).toBe(false);
    }
    expect(await code(openIndexedDbKeystore("rekey", oldKey, { indexedDB: factory }))).toBe(
      ErrorCode.WrongDatabaseKey,
    );
    const again = await openIndexedDbKeystore("rekey", newKey, { indexedDB: factory });
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles) {
      expect(await again.get("keypackages", b.kp.ref)).toEqual(b.kp);
      expect(await again.get("encryption_keypairs", b.kp.encryptionKey)).toEqual(b.enc);
    }
    expect(await again.get("conversations", toHex(conv.id))).toEqual(conv);
    await again.close();
  });

  it("a schema newer than the code: SchemaTooNew", async () => {
    const db = await rawOpen("toonew", SCHEMA_VERSION + 1, () => {});
    db.close();
    expect(await code(openIndexedDbKeystore("toonew", DatabaseKey.generate(), { indexedDB: factory }))).toBe(
      ErrorCode.SchemaTooNew,
    );
  });

  it("upgrades a v1 database (no lastResort, no conversation index) with its data intact", async () => {
    const key = DatabaseKey.generate();
    // Records as v1 wrote them: same encryption, no `lastResort` field.
    const { ks, cred, bundles, conv } = await populated("v1-source", key);
    await ks.close();
    const source = await dump("v1-source");
    const v1 = await rawOpen("v1", 1, (db, tx, old) => upgradeIndexedDbSchema(db, tx, old, 1));
    expect(v1.version).toBe(1);
    expect(v1.transaction("conversations").store.indexNames.contains("credentialId")).toBe(false);
    for (const [store, recs] of Object.entries(source)) {
      for (const rec of recs) {
        const copy: Record<string, unknown> = { ...rec };
        if (store === "keypackages") delete copy.lastResort;
        await v1.put(store, copy);
      }
    }
    v1.close();

    const up = await openIndexedDbKeystore("v1", key, { indexedDB: factory });
    expect(await up.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles)
      expect(await up.get("keypackages", b.kp.ref)).toEqual({ ...b.kp, lastResort: false });
    expect((await up.listKeypackageMeta()).every((m) => m.lastResort === false)).toBe(true);
    expect(await up.conversationsForCredential(cred.id)).toEqual([toHex(conv.id)]);
    await up.close();
    const raw = await rawOpen("v1");
    expect(raw.version).toBe(SCHEMA_VERSION);
    raw.close();
  });

  it("an insert-only conflict aborts the IDB transaction: nothing of the commit lands", async () => {
    const name = "abort";
    const { ks, bundles, cred } = await populated(name, DatabaseKey.generate());
    const before = await dump(name);
    const fresh = Array.from({ length: 20 }, () => keypackageBundle(cred.id));
    const a = bundles[0];
    if (a === undefined) throw new Error("unreachable");
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
    expect(await dump(name)).toEqual(before);
    await ks.close();
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
