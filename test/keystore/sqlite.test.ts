import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { SCHEMA_VERSION } from "../../src/keystore/contract.js";
import { Database } from "../../src/keystore/database.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { SQLITE_MIGRATIONS } from "../../src/keystore/migrations.js";
import { openEncryptedSqlite, openSqliteKeystore, SqliteKeystore } from "../../src/keystore/sqlite.js";
import { toHex } from "../../src/keystore/staging.js";
import { bundleOps, conversationRow, credentialRow, keypackageBundle, randomBytes } from "./fixtures/rows.js";

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ks-sqlite-"));
  path = join(dir, "keystore.db");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (p: string): string => createHash("sha256").update(readFileSync(p)).digest("hex");

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return MlsKeypackagesError.is(e) ? e.code : `not ours: ${String(e)}`;
  }
}

describe("SQLite keystore", () => {
  it("persists across reopen and is found through Database.open", async () => {
    const key = DatabaseKey.generate();
    const cred = credentialRow();
    const b = keypackageBundle(cred.id, { lastResort: true });
    const ks = await openSqliteKeystore(path, key);
    await ks.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }, ...bundleOps(b)]);
    await ks.close();

    const db = await Database.open(path, key);
    expect(db.keystore.backend).toBe("sqlite");
    expect(await db.keystore.get("credentials", cred.id)).toEqual(cred);
    expect(await db.keystore.get("keypackages", b.kp.ref)).toEqual(b.kp);
    expect(await db.keystore.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
    await db.close();
  });

  it("uses WAL, a busy timeout, full sync and the current schema version", async () => {
    const key = DatabaseKey.generate();
    await (await openSqliteKeystore(path, key)).close();
    const raw = openEncryptedSqlite(path, key);
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(raw.pragma("busy_timeout", { simple: true })).toBeGreaterThanOrEqual(5000);
      expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
      expect(raw.pragma("cipher", { simple: true })).toBe("sqlcipher");
    } finally {
      raw.close();
    }
    const ks = await openSqliteKeystore(path, key);
    expect(await ks.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(await ks.integrityCheck()).toEqual(["ok"]);
    await ks.close();
  });

  it("has real columns and indexes; package bytes are the last key package column", async () => {
    const key = DatabaseKey.generate();
    await (await openSqliteKeystore(path, key)).close();
    const raw = openEncryptedSqlite(path, key);
    try {
      const cols = (t: string): string[] =>
        (raw.pragma(`table_info(${t})`) as { name: string }[]).map((c) => c.name);
      expect(cols("keypackages")).toEqual([
        "ref",
        "credential_id",
        "ciphersuite",
        "credential_type",
        "not_before",
        "not_after",
        "last_resort",
        "init_key",
        "encryption_key",
        "keypackage",
      ]);
      expect(cols("credentials")).toContain("signature_private_key");
      expect(cols("hpke_private_keys")).toEqual(["public_key", "private_key"]);
      expect(cols("encryption_keypairs")).toEqual(["public_key", "private_key"]);
      expect(cols("conversations")).toEqual(["id", "credential_id", "state"]);
      expect(cols("kv")).toEqual(["key", "value"]);
      const plan = (sql: string): string =>
        (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("x") as { detail: string }[])
          .map((r) => r.detail)
          .join("; ");
      expect(plan("SELECT ref FROM keypackages WHERE credential_id = ?")).toMatch(
        /COVERING INDEX keypackages_credential_id/,
      );
      // Listing metadata never reads a package: the scan runs on the covering index.
      expect(
        plan(
          "SELECT ref, credential_id, ciphersuite, credential_type, not_before, not_after, last_resort FROM keypackages WHERE ? IS NOT NULL",
        ),
      ).toMatch(/COVERING INDEX keypackages_credential_id/);
      expect(plan("SELECT id FROM conversations WHERE credential_id = ?")).toMatch(
        /INDEX conversations_credential_id/,
      );
    } finally {
      raw.close();
    }
  });

  it("wrong key: WrongDatabaseKey and the file stays byte-identical", async () => {
    const key = DatabaseKey.generate();
    const ks = await openSqliteKeystore(path, key);
    const cred = credentialRow();
    await ks.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }]);
    await ks.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const before = sha256(path);
    expect(await code(openSqliteKeystore(path, DatabaseKey.generate()))).toBe(ErrorCode.WrongDatabaseKey);
    expect(await code(Database.open(path, DatabaseKey.generate()))).toBe(ErrorCode.WrongDatabaseKey);
    expect(sha256(path)).toBe(before);
    expect(existsSync(`${path}-wal`)).toBe(false);
    // The right key still works.
    const again = await openSqliteKeystore(path, key);
    expect(await again.get("credentials", cred.id)).toEqual(cred);
    await again.close();
  });

  it("a plain (unencrypted) SQLite file is refused as CorruptDatabase, not as a wrong key", async () => {
    const { default: BetterSqlite3 } = await import("better-sqlite3-multiple-ciphers");
    const plain = new BetterSqlite3(path);
    plain.exec("CREATE TABLE t (x)");
    plain.close();
    expect(await code(openSqliteKeystore(path, DatabaseKey.generate()))).toBe(ErrorCode.CorruptDatabase);
  });

  it("a schema newer than the code: SchemaTooNew, data untouched", async () => {
    const key = DatabaseKey.generate();
    await (await openSqliteKeystore(path, key)).close();
    const raw = openEncryptedSqlite(path, key);
    raw.pragma(`user_version=${SCHEMA_VERSION + 1}`);
    raw.close();
    const before = sha256(path);
    expect(await code(openSqliteKeystore(path, key))).toBe(ErrorCode.SchemaTooNew);
    expect(sha256(path)).toBe(before);
  });

  it("migrates a v1 database to the current schema with its data intact", async () => {
    const key = DatabaseKey.generate();
    // Build a v1 file exactly as v1 of the library did.
    const v1 = openEncryptedSqlite(path, key);
    v1.pragma("journal_mode=WAL");
    v1.exec(SQLITE_MIGRATIONS[0] as string);
    v1.pragma("user_version=1");
    const cred = credentialRow();
    const bundles = Array.from({ length: 25 }, () => keypackageBundle(cred.id));
    const conv = conversationRow(cred.id);
    v1.prepare("INSERT INTO credentials VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(
      cred.id,
      cred.clientId,
      cred.ciphersuite,
      cred.credentialType,
      cred.publicKey,
      cred.credential,
      cred.signaturePrivateKey,
      cred.createdAt,
    );
    const insKp = v1.prepare(
      "INSERT INTO keypackages (ref, credential_id, ciphersuite, credential_type, not_before, not_after, init_key, encryption_key, keypackage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    for (const b of bundles) {
      insKp.run(
        b.kp.ref,
        b.kp.credentialId,
        b.kp.ciphersuite,
        b.kp.credentialType,
        b.kp.notBefore,
        b.kp.notAfter,
        b.kp.initKey,
        b.kp.encryptionKey,
        b.kp.keypackage,
      );
      v1.prepare("INSERT INTO hpke_private_keys VALUES (?, ?)").run(b.hpke.publicKey, b.hpke.privateKey);
      v1.prepare("INSERT INTO encryption_keypairs VALUES (?, ?)").run(b.enc.publicKey, b.enc.privateKey);
    }
    v1.prepare("INSERT INTO conversations VALUES (?, ?, ?)").run(conv.id, conv.credentialId, conv.state);
    v1.prepare("INSERT INTO kv VALUES (?, ?)").run("k", new Uint8Array([1, 2, 3]));
    expect((v1.pragma("table_info(keypackages)") as { name: string }[]).map((c) => c.name)).not.toContain(
      "last_resort",
    );
    v1.close();

    const ks = await openSqliteKeystore(path, key);
    expect(await ks.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(await ks.integrityCheck()).toEqual(["ok"]);
    expect(await ks.get("credentials", cred.id)).toEqual(cred);
    for (const b of bundles) {
      expect(await ks.get("keypackages", b.kp.ref)).toEqual({ ...b.kp, lastResort: false });
      expect(await ks.get("hpke_private_keys", b.kp.initKey)).toEqual(b.hpke);
      expect(await ks.get("encryption_keypairs", b.kp.encryptionKey)).toEqual(b.enc);
    }
    expect((await ks.keypackageRefsForCredential(cred.id)).sort()).toEqual(
      bundles.map((b) => b.kp.ref).sort(),
    );
    expect(await ks.conversationsForCredential(cred.id)).toEqual([toHex(conv.id)]);
    expect(await ks.get("kv", "k")).toEqual({ key: "k", value: new Uint8Array([1, 2, 3]) });
    // New writes use the new column.
    const fresh = keypackageBundle(cred.id, { lastResort: true });
    await ks.commit(bundleOps(fresh));
    expect((await ks.get("keypackages", fresh.kp.ref))?.lastResort).toBe(true);
    await ks.close();

    // A migrated file has the same schema as a freshly created one.
    const schema = (p: string): unknown[] => {
      const raw = openEncryptedSqlite(p, key, { readonly: true });
      try {
        return raw.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").all();
      } finally {
        raw.close();
      }
    };
    const freshPath = join(dir, "fresh.db");
    await (await openSqliteKeystore(freshPath, key)).close();
    const norm = (rows: unknown[]): unknown[] =>
      rows.map((r) => ({
        ...(r as object),
        sql: String((r as { sql: unknown }).sql)
          .replace(/keypackages_v2/, "keypackages")
          .replace(/"keypackages"/, "keypackages"),
      }));
    expect(norm(schema(path))).toEqual(norm(schema(freshPath)));
  });

  it("two connections opening a new file at once both end on the current schema", async () => {
    const key = DatabaseKey.generate();
    const [a, b] = await Promise.all([openSqliteKeystore(path, key), openSqliteKeystore(path, key)]);
    const cred = credentialRow();
    await a.commit([{ kind: "put", table: "credentials", key: cred.id, row: cred }]);
    expect(await b.get("credentials", cred.id)).toEqual(cred);
    await a.close();
    await b.close();
  });

  it("the metadata cache follows commits of other connections (also in other processes)", async () => {
    const key = DatabaseKey.generate();
    const a = await openSqliteKeystore(path, key);
    const b = await openSqliteKeystore(path, key);
    const cred = credentialRow();
    const first = keypackageBundle(cred.id);
    await a.commit(bundleOps(first));
    expect((await a.listKeypackageMeta()).map((m) => m.ref)).toEqual([first.kp.ref]);
    const second = keypackageBundle(cred.id, { lastResort: true });
    await b.commit(bundleOps(second));
    expect((await a.listKeypackageMeta()).map((m) => m.ref).sort()).toEqual(
      [first.kp.ref, second.kp.ref].sort(),
    );
    await b.commit([{ kind: "delete", table: "keypackages", key: first.kp.ref }]);
    const metas = await a.listKeypackageMeta();
    expect(metas).toHaveLength(1);
    expect(metas[0]?.lastResort).toBe(true);
    // Mutating what was returned does not corrupt the cache.
    (metas[0] as { lastResort: boolean }).lastResort = false;
    expect((await a.listKeypackageMeta())[0]?.lastResort).toBe(true);
    await a.close();
    await b.close();
  });

  it("updateKey: the new key opens, the old one fails with WrongDatabaseKey", async () => {
    const oldKey = DatabaseKey.generate();
    const newKey = DatabaseKey.generate();
    const cred = credentialRow();
    const bundles = Array.from({ length: 50 }, () => keypackageBundle(cred.id));
    const db = await Database.open(path, oldKey);
    await db.keystore.commit([
      { kind: "put", table: "credentials", key: cred.id, row: cred },
      ...bundles.flatMap(bundleOps),
    ]);
    await db.updateKey(newKey);
    // Still usable (and still WAL) after rekeying.
    const more = keypackageBundle(cred.id);
    await db.keystore.commit(bundleOps(more));
    expect((await db.counts()).keypackages).toBe(51);
    await db.close();

    expect(await code(openSqliteKeystore(path, oldKey))).toBe(ErrorCode.WrongDatabaseKey);
    const ks = await openSqliteKeystore(path, newKey);
    expect(await ks.integrityCheck()).toEqual(["ok"]);
    expect(await ks.get("credentials", cred.id)).toEqual(cred);
    expect(await ks.get("keypackages", more.kp.ref)).toEqual(more.kp);
    expect((await ks.counts()).hpke_private_keys).toBe(51);
    await ks.close();
    const raw = openEncryptedSqlite(path, newKey);
    expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
    raw.close();
  });

  it("updateKey refuses while another connection has the file open", async () => {
    const key = DatabaseKey.generate();
    const a = await openSqliteKeystore(path, key);
    const b = await openSqliteKeystore(path, key);
    await b.counts();
    expect(await code(a.updateKey(DatabaseKey.generate()))).toBe(ErrorCode.KeystoreError);
    await b.close();
    // Nothing changed: the old key still opens, and `a` still works.
    await a.commit([{ kind: "put", table: "kv", key: "x", row: { key: "x", value: randomBytes(3) } }]);
    await a.close();
    const again = await openSqliteKeystore(path, key);
    expect((await again.counts()).kv).toBe(1);
    await again.close();
  });

  it("a failed commit rolls back everything, also when the conflict comes late", async () => {
    const ks = await openSqliteKeystore(path, DatabaseKey.generate());
    const cred = credentialRow();
    const first = keypackageBundle(cred.id);
    await ks.commit(bundleOps(first));
    const many = Array.from({ length: 500 }, () => keypackageBundle(cred.id));
    const conflicting = { ...first.hpke, privateKey: randomBytes(32) };
    const err = await ks
      .commit([
        ...many.flatMap(bundleOps),
        { kind: "insert", table: "hpke_private_keys", key: first.kp.initKey, row: conflicting },
      ])
      .catch((e: unknown) => e);
    expect(MlsKeypackagesError.is(err, ErrorCode.AlreadyExists)).toBe(true);
    expect((await ks.counts()).keypackages).toBe(1);
    expect(await ks.get("hpke_private_keys", first.kp.initKey)).toEqual(first.hpke);
    expect(ks).toBeInstanceOf(SqliteKeystore);
    await ks.close();
  });
});
