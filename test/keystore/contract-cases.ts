/**
 * The `Keystore` contract: every backend must pass it unchanged. Written against a tiny
 * test API (`ContractApi`) so the very same cases run under vitest (`runKeystoreContract`
 * in contract.ts) and inside a real browser page (test/browser/idb-entry.ts).
 * `factory` returns a fresh, empty keystore and a cleanup for whatever it created.
 */
import { ErrorCode, MlsKeypackagesError } from "../../src/errors.js";
import {
  TABLES,
  type Keystore,
  type RowOf,
  type StagedOp,
  type TableName,
} from "../../src/keystore/contract.js";
import { toHex } from "../../src/keystore/staging.js";
import {
  bundleDeleteOps,
  bundleOps,
  conversationRow,
  credentialRow,
  keypackageBundle,
  randomBytes,
} from "./fixtures/rows.js";

export interface KeystoreUnderTest {
  keystore: Keystore;
  cleanup(): Promise<void>;
}

/** The matchers the contract uses (a subset of vitest's `expect`). */
export interface Matchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeUndefined(): void;
  toBeInstanceOf(expected: abstract new (...args: never[]) => unknown): void;
  toHaveLength(length: number): void;
}

/** The test-framework surface the contract needs. */
export interface ContractApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>): void;
  beforeEach(body: () => Promise<void>): void;
  afterEach(body: () => Promise<void>): void;
  expect(actual: unknown, message?: string): Matchers;
}

/** One sample row per table with its key, and a second, different value for the same key. */
export function samples(): { [T in TableName]: { key: string; row: RowOf[T]; other: RowOf[T] } } {
  const cred = credentialRow();
  const b = keypackageBundle(cred.id);
  const conv = conversationRow(cred.id);
  return {
    credentials: {
      key: cred.id,
      row: cred,
      other: { ...cred, credential: randomBytes(61), createdAt: cred.createdAt + 1 },
    },
    keypackages: {
      key: b.kp.ref,
      row: b.kp,
      other: { ...b.kp, notAfter: b.kp.notAfter + 1, keypackage: randomBytes(280) },
    },
    hpke_private_keys: {
      key: toHex(b.hpke.publicKey),
      row: b.hpke,
      other: { ...b.hpke, privateKey: randomBytes(32) },
    },
    encryption_keypairs: {
      key: toHex(b.enc.publicKey),
      row: b.enc,
      other: { ...b.enc, privateKey: randomBytes(32) },
    },
    conversations: { key: toHex(conv.id), row: conv, other: { ...conv, state: randomBytes(300) } },
    kv: {
      key: "some/key",
      row: { key: "some/key", value: randomBytes(10) },
      other: { key: "some/key", value: randomBytes(11) },
    },
  };
}

const INSERT_ONLY_TABLES = ["keypackages", "hpke_private_keys", "encryption_keypairs"] as const;
const REPLACEABLE_TABLES = ["credentials", "conversations", "kv"] as const;

function write<T extends TableName>(table: T, key: string, row: RowOf[T]): StagedOp {
  const kind = (INSERT_ONLY_TABLES as readonly string[]).includes(table) ? "insert" : "put";
  return { kind, table, key, row } as StagedOp;
}

function del(table: TableName, key: string): StagedOp {
  return { kind: "delete", table, key } as StagedOp;
}

async function expectCode(
  expect: ContractApi["expect"],
  p: Promise<unknown>,
  code: ErrorCode,
): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected an error with code ${code}`).toBeInstanceOf(MlsKeypackagesError);
  expect((err as MlsKeypackagesError).code).toBe(code);
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const sorted = (xs: string[]): string[] => [...xs].sort();

export function defineKeystoreContract(
  api: ContractApi,
  name: string,
  factory: () => Promise<KeystoreUnderTest>,
): void {
  const { describe, it, beforeEach, afterEach, expect } = api;
  describe(`Keystore contract: ${name}`, () => {
    let ut: KeystoreUnderTest;
    let ks: Keystore;

    beforeEach(async () => {
      ut = await factory();
      ks = ut.keystore;
    });
    afterEach(async () => {
      await ks.close();
      await ut.cleanup();
    });

    it("starts empty", async () => {
      const counts = await ks.counts();
      for (const t of TABLES) {
        expect(counts[t]).toBe(0);
        expect(await ks.all(t)).toEqual([]);
      }
      expect(await ks.listKeypackageMeta()).toEqual([]);
      expect(await ks.keypackageRefsForCredential("00")).toEqual([]);
      expect(await ks.conversationsForCredential("00")).toEqual([]);
      expect(typeof ks.backend).toBe("string");
    });

    for (const table of TABLES) {
      it(`${table}: put/get/all/delete`, async () => {
        const s = samples()[table];
        expect(await ks.get(table, s.key)).toBeUndefined();
        await ks.commit([write(table, s.key, s.row)]);
        expect(await ks.get(table, s.key)).toEqual(s.row);
        expect(await ks.all(table)).toEqual([s.row]);
        expect((await ks.counts())[table]).toBe(1);
        // Stored rows are copies: mutating what was committed or returned changes nothing.
        const got = (await ks.get(table, s.key)) as unknown as Record<string, unknown>;
        for (const v of Object.values(got))
          if (v instanceof Uint8Array && v.length > 0) v[0] = (v[0] as number) ^ 0xff;
        expect(await ks.get(table, s.key)).toEqual(s.row);
        await ks.commit([del(table, s.key)]);
        expect(await ks.get(table, s.key)).toBeUndefined();
        expect(await ks.all(table)).toEqual([]);
        // Deleting what is absent is a no-op.
        await ks.commit([del(table, s.key)]);
        expect((await ks.counts())[table]).toBe(0);
      });

      it(`${table}: unknown keys read as undefined`, async () => {
        const s = samples()[table];
        await ks.commit([write(table, s.key, s.row)]);
        const other = table === "kv" ? "other/key" : toHex(randomBytes(32));
        expect(await ks.get(table, other)).toBeUndefined();
      });
    }

    for (const table of REPLACEABLE_TABLES) {
      it(`${table}: put replaces`, async () => {
        const s = samples()[table];
        await ks.commit([write(table, s.key, s.row)]);
        await ks.commit([write(table, s.key, s.other)]);
        expect(await ks.get(table, s.key)).toEqual(s.other);
        expect((await ks.counts())[table]).toBe(1);
      });
    }

    for (const table of INSERT_ONLY_TABLES) {
      it(`${table}: inserting the same value again is a no-op`, async () => {
        const s = samples()[table];
        await ks.commit([write(table, s.key, s.row)]);
        await ks.commit([write(table, s.key, structuredClone(s.row))]);
        await ks.commit([write(table, s.key, s.row), write(table, s.key, s.row)]);
        expect(await ks.get(table, s.key)).toEqual(s.row);
        expect((await ks.counts())[table]).toBe(1);
      });

      it(`${table}: a different value under an existing key fails the whole commit (AlreadyExists)`, async () => {
        const all = samples();
        const s = all[table];
        await ks.commit([write(table, s.key, s.row)]);
        const before = await ks.counts();
        const cred = credentialRow();
        const fresh = keypackageBundle(cred.id);
        const ops: StagedOp[] = [
          {
            kind: "put",
            table: "kv",
            key: "written-before-conflict",
            row: { key: "written-before-conflict", value: randomBytes(4) },
          },
          write("credentials", cred.id, cred),
          ...bundleOps(fresh),
          del(table, "00"),
          write(table, s.key, s.other),
          {
            kind: "put",
            table: "kv",
            key: "written-after-conflict",
            row: { key: "written-after-conflict", value: randomBytes(4) },
          },
        ];
        await expectCode(expect, ks.commit(ops), ErrorCode.AlreadyExists);
        expect(await ks.counts()).toEqual(before);
        expect(await ks.get(table, s.key)).toEqual(s.row);
        expect(await ks.get("kv", "written-before-conflict")).toBeUndefined();
        expect(await ks.get("credentials", cred.id)).toBeUndefined();
        expect(await ks.get("keypackages", fresh.kp.ref)).toBeUndefined();
        // The keystore is still usable afterwards.
        await ks.commit(bundleOps(fresh));
        expect((await ks.counts()).keypackages).toBe(before.keypackages + 1);
      });

      it(`${table}: two different values for one key in one commit fail (AlreadyExists)`, async () => {
        const s = samples()[table];
        await expectCode(
          expect,
          ks.commit([write(table, s.key, s.row), write(table, s.key, s.other)]),
          ErrorCode.AlreadyExists,
        );
        expect(await ks.get(table, s.key)).toBeUndefined();
      });

      it(`${table}: delete then insert of a different value in one commit succeeds`, async () => {
        const s = samples()[table];
        await ks.commit([write(table, s.key, s.row)]);
        await ks.commit([del(table, s.key), write(table, s.key, s.other)]);
        expect(await ks.get(table, s.key)).toEqual(s.other);
      });
    }

    it("a put on an insert-only table is checked like an insert", async () => {
      const s = samples().keypackages;
      await ks.commit([write("keypackages", s.key, s.row)]);
      await expectCode(
        expect,
        ks.commit([{ kind: "put", table: "keypackages", key: s.key, row: s.other }]),
        ErrorCode.AlreadyExists,
      );
      expect(await ks.get("keypackages", s.key)).toEqual(s.row);
    });

    it("applies ops in order", async () => {
      const all = samples();
      for (const table of TABLES) {
        const s = all[table];
        await ks.commit([write(table, s.key, s.row), del(table, s.key)]);
        expect(await ks.get(table, s.key), `${table}: insert then delete`).toBeUndefined();
        await ks.commit([del(table, s.key), write(table, s.key, s.row)]);
        expect(await ks.get(table, s.key), `${table}: delete then insert`).toEqual(s.row);
      }
      const kv = all.kv;
      await ks.commit([
        write("kv", kv.key, kv.other),
        write("kv", kv.key, kv.row),
        write("kv", kv.key, kv.other),
      ]);
      expect(await ks.get("kv", kv.key)).toEqual(kv.other);
    });

    it("an empty commit changes nothing", async () => {
      await ks.commit([]);
      expect(Object.values(await ks.counts()).every((n) => n === 0)).toBe(true);
    });

    it("listKeypackageMeta returns exactly the metadata", async () => {
      const c1 = credentialRow();
      const c2 = credentialRow({ ciphersuite: 2, credentialType: 2 });
      const a = keypackageBundle(c1.id, { lastResort: true, notBefore: 1, notAfter: 2 ** 40 });
      const b = keypackageBundle(c2.id, { ciphersuite: 2, credentialType: 2 });
      await ks.commit([...bundleOps(a), ...bundleOps(b)]);
      const meta = await ks.listKeypackageMeta();
      const strip = (r: RowOf["keypackages"]) => ({
        ref: r.ref,
        credentialId: r.credentialId,
        ciphersuite: r.ciphersuite,
        credentialType: r.credentialType,
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        lastResort: r.lastResort,
      });
      const byRef = (x: { ref: string }, y: { ref: string }) => (x.ref < y.ref ? -1 : 1);
      expect(meta.sort(byRef)).toEqual([strip(a.kp), strip(b.kp)].sort(byRef));
      for (const m of meta)
        expect(Object.keys(m).sort()).toEqual([
          "ciphersuite",
          "credentialId",
          "credentialType",
          "lastResort",
          "notAfter",
          "notBefore",
          "ref",
        ]);
    });

    it("keypackageRefsForCredential returns only that credential's packages", async () => {
      const c1 = credentialRow();
      const c2 = credentialRow();
      const mine = Array.from({ length: 5 }, () => keypackageBundle(c1.id));
      const theirs = Array.from({ length: 3 }, () => keypackageBundle(c2.id));
      await ks.commit([...mine, ...theirs].flatMap(bundleOps));
      expect(sorted(await ks.keypackageRefsForCredential(c1.id))).toEqual(sorted(mine.map((b) => b.kp.ref)));
      expect(sorted(await ks.keypackageRefsForCredential(c2.id))).toEqual(
        sorted(theirs.map((b) => b.kp.ref)),
      );
      expect(await ks.keypackageRefsForCredential(toHex(randomBytes(32)))).toEqual([]);
      // Removing by credential leaves the other credential's packages and their private rows alone.
      const first = mine[0];
      if (first === undefined) throw new Error("unreachable");
      await ks.commit(mine.flatMap((b) => bundleDeleteOps(b.kp)));
      expect(await ks.keypackageRefsForCredential(c1.id)).toEqual([]);
      expect(await ks.get("hpke_private_keys", first.kp.initKey)).toBeUndefined();
      expect(sorted(await ks.keypackageRefsForCredential(c2.id))).toHaveLength(3);
      const counts = await ks.counts();
      expect([counts.keypackages, counts.hpke_private_keys, counts.encryption_keypairs]).toEqual([3, 3, 3]);
    });

    it("conversationsForCredential returns only that credential's conversations", async () => {
      const c1 = credentialRow();
      const c2 = credentialRow();
      const mine = [conversationRow(c1.id), conversationRow(c1.id)];
      const theirs = [conversationRow(c2.id)];
      await ks.commit([...mine, ...theirs].map((c) => write("conversations", toHex(c.id), c)));
      expect(sorted(await ks.conversationsForCredential(c1.id))).toEqual(
        sorted(mine.map((c) => toHex(c.id))),
      );
      expect(await ks.conversationsForCredential(c2.id)).toEqual(theirs.map((c) => toHex(c.id)));
      // Moving a conversation to another credential is reflected.
      const moved = { ...(mine[0] as RowOf["conversations"]), credentialId: c2.id };
      await ks.commit([write("conversations", toHex(moved.id), moved)]);
      expect(await ks.conversationsForCredential(c1.id)).toHaveLength(1);
      expect(await ks.conversationsForCredential(c2.id)).toHaveLength(2);
    });

    it("counts() counts every table", async () => {
      const all = samples();
      const cred = credentialRow();
      const more = Array.from({ length: 4 }, () => keypackageBundle(cred.id));
      await ks.commit([
        ...TABLES.map((t) => write(t, all[t].key, all[t].row as never)),
        ...more.flatMap(bundleOps),
      ]);
      expect(await ks.counts()).toEqual({
        credentials: 1,
        keypackages: 5,
        hpke_private_keys: 5,
        encryption_keypairs: 5,
        conversations: 1,
        kv: 1,
      });
    });

    it("byte arrays round-trip exactly (empty, 1 MiB, views)", async () => {
      const big = randomBytes(1 << 20);
      const backing = randomBytes(64);
      const view = backing.subarray(7, 40);
      const cred = credentialRow({ credential: new Uint8Array(0), clientId: view });
      const b = keypackageBundle(cred.id, { keypackage: big });
      const conv = { ...conversationRow(cred.id), state: big };
      await ks.commit([
        { kind: "put", table: "kv", key: "empty", row: { key: "empty", value: new Uint8Array(0) } },
        { kind: "put", table: "kv", key: "big", row: { key: "big", value: big } },
        { kind: "put", table: "kv", key: "view", row: { key: "view", value: view } },
        write("credentials", cred.id, cred),
        write("conversations", toHex(conv.id), conv),
        ...bundleOps(b),
      ]);
      const empty = await ks.get("kv", "empty");
      expect(empty?.value).toBeInstanceOf(Uint8Array);
      expect(empty?.value.length).toBe(0);
      const gotBig = await ks.get("kv", "big");
      expect(gotBig?.value.length).toBe(1 << 20);
      expect(gotBig?.value).toBeInstanceOf(Uint8Array);
      expect(sameBytes(gotBig?.value, big)).toBe(true);
      expect(Array.from((await ks.get("kv", "view"))?.value ?? [])).toEqual(Array.from(view));
      const gotCred = await ks.get("credentials", cred.id);
      expect(gotCred?.credential.length).toBe(0);
      expect(Array.from(gotCred?.clientId ?? [])).toEqual(Array.from(view));
      expect(sameBytes((await ks.get("keypackages", b.kp.ref))?.keypackage, big)).toBe(true);
      expect(sameBytes((await ks.get("conversations", toHex(conv.id)))?.state, big)).toBe(true);
      // Inserting the same 1 MiB value again is recognised as equal.
      await ks.commit(bundleOps(b));
    });

    it("numbers and flags round-trip", async () => {
      const cred = credentialRow({ createdAt: Date.UTC(2030, 0, 1, 12, 0, 0, 123), ciphersuite: 0xf031 });
      const b = keypackageBundle(cred.id, {
        notBefore: 0,
        notAfter: 2 ** 53 - 1,
        lastResort: true,
        ciphersuite: 0xf031,
      });
      await ks.commit([write("credentials", cred.id, cred), ...bundleOps(b)]);
      expect(await ks.get("credentials", cred.id)).toEqual(cred);
      const kp = await ks.get("keypackages", b.kp.ref);
      expect(kp).toEqual(b.kp);
      expect(kp?.lastResort).toBe(true);
    });

    it("close() then any use fails with KeystoreClosed", async () => {
      const s = samples().kv;
      await ks.commit([write("kv", s.key, s.row)]);
      await ks.close();
      await ks.close(); // idempotent
      await expectCode(expect, ks.get("kv", s.key), ErrorCode.KeystoreClosed);
      await expectCode(expect, ks.all("kv"), ErrorCode.KeystoreClosed);
      await expectCode(expect, ks.commit([del("kv", s.key)]), ErrorCode.KeystoreClosed);
      await expectCode(expect, ks.listKeypackageMeta(), ErrorCode.KeystoreClosed);
      await expectCode(expect, ks.keypackageRefsForCredential("00"), ErrorCode.KeystoreClosed);
      await expectCode(expect, ks.conversationsForCredential("00"), ErrorCode.KeystoreClosed);
      await expectCode(expect, ks.counts(), ErrorCode.KeystoreClosed);
    });
  });
}
