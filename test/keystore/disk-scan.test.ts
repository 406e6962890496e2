/**
 * Nothing secret reaches the disk (or IndexedDB) in clear: scan the raw bytes for every
 * secret value, raw and hex-encoded. A plaintext control proves the scan would find them.
 */
import "fake-indexeddb/auto";
import BetterSqlite3 from "better-sqlite3-multiple-ciphers";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Keystore, StagedOp } from "../../src/keystore/contract.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { openIndexedDbKeystore } from "../../src/keystore/indexeddb.js";
import { openSqliteKeystore } from "../../src/keystore/sqlite.js";
import { toHex } from "../../src/keystore/staging.js";
import { Ciphersuite, ClientId, CoreCrypto, Credential, Database } from "../../src/index.js";
import { buildLegacyDatabase, idbRequest } from "./fixtures/idb.js";
import { bundleOps, conversationRow, credentialRow, keypackageBundle } from "./fixtures/rows.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ks-scan-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const enc = new TextEncoder();

/** Recognisable secret values: an ASCII marker followed by random bytes. */
function marked(label: string, n = 48): Uint8Array {
  const m = enc.encode(`SECRET-${label}-`);
  const out = new Uint8Array(Math.max(n, m.length + 16));
  out.set(m, 0);
  globalThis.crypto.getRandomValues(out.subarray(m.length));
  return out;
}

/** Rows with marked secrets, and the list of secrets. */
function secretRows(): { ops: StagedOp[]; secrets: Uint8Array[] } {
  const cred = credentialRow({
    signaturePrivateKey: marked("SIGNATURE-KEY"),
    credential: marked("CREDENTIAL"),
  });
  const b = keypackageBundle(cred.id, { keypackage: marked("KEYPACKAGE", 300) });
  b.hpke.privateKey = marked("HPKE-INIT-KEY");
  b.enc.privateKey = marked("LEAF-ENC-KEY");
  const conv = { ...conversationRow(cred.id), state: marked("CONVERSATION-STATE", 500) };
  const kvValue = marked("KV-VALUE");
  return {
    ops: [
      { kind: "put", table: "credentials", key: cred.id, row: cred },
      ...bundleOps(b),
      { kind: "put", table: "conversations", key: toHex(conv.id), row: conv },
      { kind: "put", table: "kv", key: "app/secret", row: { key: "app/secret", value: kvValue } },
    ],
    secrets: [
      cred.signaturePrivateKey,
      cred.credential,
      b.kp.keypackage,
      b.hpke.privateKey,
      b.enc.privateKey,
      conv.state,
      kvValue,
    ],
  };
}

/** Every secret that was found in `haystack`, raw or as (lower/upper case) hex. */
function found(haystack: Buffer, secrets: Uint8Array[]): string[] {
  const hits: string[] = [];
  for (const s of secrets) {
    // The random tail alone (the marker text could legitimately be short and common).
    const tail = Buffer.from(s.subarray(s.length - 16));
    const hex = toHex(s.subarray(s.length - 16));
    for (const [what, needle] of [
      ["raw", tail],
      ["hex", Buffer.from(hex)],
      ["HEX", Buffer.from(hex.toUpperCase())],
      ["marker", Buffer.from(s.subarray(0, 12))],
    ] as const) {
      if (haystack.includes(needle))
        hits.push(`${what}:${Buffer.from(s.subarray(0, 12)).toString("latin1")}`);
    }
  }
  return hits;
}

function fileBytes(path: string): Buffer {
  const parts = [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]
    .filter(existsSync)
    .map((p) => readFileSync(p));
  return Buffer.concat(parts);
}

async function idbBytes(factory: IDBFactory, name: string): Promise<Buffer> {
  const db = await idbRequest(factory.open(name));
  const parts: Buffer[] = [];
  const add = (v: unknown): void => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v));
    else if (typeof v === "string") parts.push(Buffer.from(v));
    else if (typeof v === "object" && v !== null) for (const x of Object.values(v)) add(x);
    else parts.push(Buffer.from(String(v)));
  };
  for (const store of Array.from(db.objectStoreNames))
    add(await idbRequest(db.transaction(store).objectStore(store).getAll()));
  db.close();
  return Buffer.concat(parts);
}

/** Every secret a real session stored (signature keys, private keys, package and credential bytes). */
async function secretsOf(ks: Keystore): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const c of await ks.all("credentials")) out.push(c.signaturePrivateKey, c.credential);
  for (const k of await ks.all("keypackages")) out.push(k.keypackage);
  for (const h of await ks.all("hpke_private_keys")) out.push(h.privateKey);
  for (const e of await ks.all("encryption_keypairs")) out.push(e.privateKey);
  return out;
}

async function generateReal(cc: CoreCrypto, n: number): Promise<void> {
  await cc.transaction(async (tx) => {
    const clientId = ClientId.parse("11111111-2222-4333-8444-555555555555:1a2b@example.com");
    const ref = await tx.addCredential(
      Credential.basic(Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, clientId),
    );
    for (let i = 0; i < n; i++) await tx.generateKeypackage(ref);
  });
}

describe("nothing secret on disk", () => {
  it("control: the scan finds secrets in a plaintext SQLite file", () => {
    const { secrets } = secretRows();
    const path = join(dir, "plain.db");
    const db = new BetterSqlite3(path);
    db.exec("CREATE TABLE t (v BLOB)");
    for (const s of secrets) db.prepare("INSERT INTO t VALUES (?)").run(s);
    db.prepare("INSERT INTO t VALUES (?)").run(toHex(secrets[0] as Uint8Array));
    db.close();
    const hits = found(fileBytes(path), secrets);
    expect(hits.filter((h) => h.startsWith("raw:"))).toHaveLength(secrets.length);
    expect(hits.some((h) => h.startsWith("hex:"))).toBe(true);
  });

  it("SQLite: database and WAL hold only ciphertext", async () => {
    const path = join(dir, "keystore.db");
    const { ops, secrets } = secretRows();
    const ks = await openSqliteKeystore(path, DatabaseKey.generate());
    await ks.commit(ops);
    // While open the rows sit in the WAL.
    expect(existsSync(`${path}-wal`)).toBe(true);
    expect(readFileSync(`${path}-wal`).length).toBeGreaterThan(4096);
    expect(found(fileBytes(path), secrets)).toEqual([]);
    await ks.close();
    // After close they were checkpointed into the main file.
    expect(found(fileBytes(path), secrets)).toEqual([]);
  });

  it("SQLite: real key packages generated through the public API", async () => {
    const path = join(dir, "real.db");
    const key = DatabaseKey.generate();
    const cc = await CoreCrypto.open(await Database.open(path, key));
    await generateReal(cc, 20);
    const secrets = await secretsOf(cc.database.keystore);
    expect(secrets.length).toBe(2 + 3 * 20);
    expect(found(fileBytes(path), secrets)).toEqual([]);
    await cc.close();
    expect(found(fileBytes(path), secrets)).toEqual([]);
  });

  it("control: the scan finds secrets in clear IndexedDB records", async () => {
    const factory = new IDBFactory();
    const { secrets } = secretRows();
    const req = factory.open("plain2", 1);
    req.onupgradeneeded = () => req.result.createObjectStore("s", { autoIncrement: true });
    const plain = await idbRequest(req);
    for (const s of secrets)
      await idbRequest(plain.transaction("s", "readwrite").objectStore("s").add({ v: s }));
    plain.close();
    expect(
      found(await idbBytes(factory, "plain2"), secrets).filter((h) => h.startsWith("raw:")),
    ).toHaveLength(secrets.length);
  });

  it("IndexedDB: stored records hold only ciphertext (and public metadata)", async () => {
    const factory = new IDBFactory();
    const { ops, secrets } = secretRows();
    const ks = await openIndexedDbKeystore("scan", DatabaseKey.generate(), { indexedDB: factory });
    await ks.commit(ops);
    await ks.close();
    const raw = await idbBytes(factory, "scan");
    expect(raw.length).toBeGreaterThan(1000);
    expect(found(raw, secrets)).toEqual([]);
  });

  it("IndexedDB: log records, compacted snapshot chunks and a migrated database hold only ciphertext", async () => {
    const factory = new IDBFactory();
    const { ops, secrets } = secretRows();
    const key = DatabaseKey.generate();
    // Migrated from the per-row format.
    await buildLegacyDatabase(factory, "scan-legacy", key, 2, ops);
    const migrated = await openIndexedDbKeystore("scan-legacy", key, { indexedDB: factory });
    expect((await migrated.counts()).keypackages).toBe(1);
    await migrated.close();
    expect(found(await idbBytes(factory, "scan-legacy"), secrets)).toEqual([]);
    // Written as log records, then folded into snapshot chunks.
    const ks = await openIndexedDbKeystore("scan-compact", key, { indexedDB: factory, compaction: false });
    for (const op of ops) await ks.commit([op]);
    expect(found(await idbBytes(factory, "scan-compact"), secrets)).toEqual([]);
    await ks.compact();
    await ks.close();
    const raw = await idbBytes(factory, "scan-compact");
    expect(raw.length).toBeGreaterThan(1000);
    expect(found(raw, secrets)).toEqual([]);
  });

  it("IndexedDB: real key packages generated through the public API", async () => {
    const factory = new IDBFactory();
    const ks = await openIndexedDbKeystore("scan-real", DatabaseKey.generate(), { indexedDB: factory });
    const cc = await CoreCrypto.open(Database.fromKeystore(ks));
    await generateReal(cc, 20);
    const secrets = await secretsOf(ks);
    expect(secrets.length).toBe(2 + 3 * 20);
    await cc.close();
    expect(found(await idbBytes(factory, "scan-real"), secrets)).toEqual([]);
  });
});
