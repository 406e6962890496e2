/**
 * A damaged file is not a wrong key: `CorruptDatabase` (with a reason) for truncated files,
 * damaged pages, plain SQLite and non-database files; `WrongDatabaseKey` only for an intact
 * SQLCipher file the key does not open. Nothing is written in either case.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import { Database } from "../../src/keystore/database.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { openSqliteKeystore } from "../../src/keystore/sqlite.js";
import { diagnoseSqlcipherFile } from "../../src/keystore/sqliteDiagnosis.js";
import { bundleOps, credentialRow, keypackageBundle } from "./fixtures/rows.js";

const PAGE = 4096;
let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ks-corrupt-"));
  path = join(dir, "keystore.db");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (p: string): string => createHash("sha256").update(readFileSync(p)).digest("hex");

async function failure(p: Promise<unknown>): Promise<MlsKeypackagesError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MlsKeypackagesError);
  return e as MlsKeypackagesError;
}

/** A keystore of several pages, closed (checkpointed: no WAL left). */
async function populated(key: DatabaseKey): Promise<number> {
  const ks = await openSqliteKeystore(path, key);
  const cred = credentialRow();
  await ks.commit([
    { kind: "put", table: "credentials", key: cred.id, row: cred },
    ...Array.from({ length: 40 }, () => keypackageBundle(cred.id)).flatMap(bundleOps),
  ]);
  await ks.close();
  const size = readFileSync(path).length;
  expect(size % PAGE).toBe(0);
  expect(size / PAGE).toBeGreaterThan(4);
  return size;
}

function patch(at: number, bytes: Uint8Array): void {
  const f = readFileSync(path);
  f.set(bytes, at);
  writeFileSync(path, f);
}

describe("SQLite keystore: CorruptDatabase vs WrongDatabaseKey", () => {
  it("an intact file and another key: WrongDatabaseKey", async () => {
    await populated(DatabaseKey.generate());
    const e = await failure(openSqliteKeystore(path, DatabaseKey.generate()));
    expect(e.code).toBe(ErrorCode.WrongDatabaseKey);
  });

  const cases: [string, (key: DatabaseKey, size: number) => void, string][] = [
    ["truncated to less than a page", () => truncateSync(path, 100), "truncated"],
    [
      "truncated to two pages (the right key verifies page 1)",
      () => truncateSync(path, 2 * PAGE),
      "corrupt_pages",
    ],
    ["page 1 damaged (the right key verifies page 2)", () => patch(200, randomBytes(64)), "corrupt_pages"],
    [
      "a plain SQLite database",
      () => {
        writeFileSync(
          path,
          Buffer.concat([Buffer.from("SQLite format 3\0", "latin1"), Buffer.alloc(PAGE - 16)]),
        );
      },
      "not_encrypted",
    ],
    ["a text file", () => writeFileSync(path, "hello, this is not a database\n".repeat(500)), "truncated"],
    ["a page of zeros", () => writeFileSync(path, Buffer.alloc(2 * PAGE)), "not_a_database"],
    [
      "a text file of whole pages",
      () => writeFileSync(path, Buffer.from("0123456789abcdef".repeat(PAGE / 8), "latin1")),
      "not_a_database",
    ],
  ];

  it.each(cases)("%s: CorruptDatabase, file untouched, with either key", async (_name, damage, reason) => {
    const key = DatabaseKey.generate();
    const size = await populated(key);
    damage(key, size);
    const before = sha256(path);
    for (const k of [key, DatabaseKey.generate()]) {
      // A damaged page 1 verifies nowhere under another key: that one reads as a wrong key.
      if (reason === "corrupt_pages" && k !== key) continue;
      const e = await failure(openSqliteKeystore(path, k));
      expect(e.code, e.message).toBe(ErrorCode.CorruptDatabase);
      expect(e.details.reason).toBe(reason);
      expect((await failure(Database.open(path, k))).code).toBe(ErrorCode.CorruptDatabase);
    }
    expect(sha256(path)).toBe(before);
  });

  it("truncated inside a page: SQLite still opens it with the key; another key reads CorruptDatabase", async () => {
    const key = DatabaseKey.generate();
    const size = await populated(key);
    truncateSync(path, size - 1000);
    const e = await failure(openSqliteKeystore(path, DatabaseKey.generate()));
    expect([e.code, e.details.reason]).toEqual([ErrorCode.CorruptDatabase, "truncated"]);
    const ks = await openSqliteKeystore(path, key);
    await ks.close();
  });

  it("a damaged page after open: reads and the integrity check fail with CorruptDatabase", async () => {
    const key = DatabaseKey.generate();
    const size = await populated(key);
    patch(size - PAGE + 100, new Uint8Array(100).fill(7));
    const ks = await openSqliteKeystore(path, key);
    try {
      const errors: string[] = [];
      for (const t of ["credentials", "keypackages", "hpke_private_keys", "encryption_keypairs"] as const) {
        await ks.all(t).catch((err: MlsKeypackagesError) => errors.push(err.code));
      }
      await ks.integrityCheck().catch((err: MlsKeypackagesError) => errors.push(err.code));
      expect(errors.length).toBeGreaterThan(0);
      expect(new Set(errors)).toEqual(new Set([ErrorCode.CorruptDatabase]));
    } finally {
      await ks.close();
    }
  });

  it("documented limits: random whole pages, or a damaged salt, read as a wrong key", async () => {
    const random = join(dir, "random.db");
    writeFileSync(random, randomBytes(3 * PAGE));
    expect(diagnoseSqlcipherFile(random, DatabaseKey.generate().bytes())).toEqual({ verdict: "wrong_key" });
    const key = DatabaseKey.generate();
    await populated(key);
    patch(0, randomBytes(16)); // every page's HMAC key derives from the salt
    expect((await failure(openSqliteKeystore(path, key))).code).toBe(ErrorCode.WrongDatabaseKey);
  });

  it("the right key still opens the file after a failed open with a wrong one", async () => {
    const key = DatabaseKey.generate();
    await populated(key);
    expect((await failure(openSqliteKeystore(path, DatabaseKey.generate()))).code).toBe(
      ErrorCode.WrongDatabaseKey,
    );
    const ks = await openSqliteKeystore(path, key);
    expect((await ks.counts()).credentials).toBe(1);
    await ks.close();
  });
});
