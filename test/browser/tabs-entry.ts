/**
 * In-page API for tabs.browser.test.ts (bundled for the browser by the harness): sessions on the
 * IndexedDB keystore through the public API, a writer that commits large transactions in a loop
 * (to be closed mid-commit), the committed-prefix check, and the wrapped database key.
 */
import { Ciphersuite, ClientId, CoreCrypto, Credential, Database, DatabaseKey } from "../../src/index.js";
import type { KeypackageRow, StagedOp } from "../../src/keystore/contract.js";
import { openIndexedDbKeystore } from "../../src/keystore/indexeddb.js";
import { fromHex, toHex } from "../../src/keystore/staging.js";
import { loadOrCreateWrappedDatabaseKey } from "../../src/keystore/wrappedKey.js";
import { bundleDeleteOps, bundleOps, keypackageBundle } from "../keystore/fixtures/rows.js";

const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
let session: CoreCrypto | undefined;

const now = (): number => performance.timeOrigin + performance.now();

function clientIdFor(tag: string): ClientId {
  const hex = Array.from(new TextEncoder().encode(tag.padEnd(4, "0").slice(0, 4)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  return ClientId.parse(`11111111-2222-4333-8444-555555555555:${hex}@example.com`);
}

export interface Snapshot {
  keypackages: string[];
  credentials: string[];
  counts: Record<string, number>;
}

async function snapshotOf(cc: CoreCrypto): Promise<Snapshot> {
  return cc.transaction(async (tx) => {
    const refs = await tx.getKeypackageRefs();
    const creds = await tx.findCredentials({});
    // Every listed package loads and parses.
    for (const r of refs)
      if ((await tx.getKeypackage(r)) === undefined) throw new Error("listed package missing");
    return {
      keypackages: refs.map((r) => r.hex()).sort(),
      credentials: creds.map((c) => c.id).sort(),
      counts: { ...(await cc.database.counts()) },
    };
  });
}

const api = {
  userAgent: () => navigator.userAgent,
  hasWebLocks: () => typeof navigator.locks?.request === "function",

  /** Open the database `name` with a raw key (hex) as a CoreCrypto session. */
  async open(name: string, keyHex: string): Promise<void> {
    session = await CoreCrypto.open(await Database.open(name, new DatabaseKey(fromHex(keyHex))));
  },

  /** Open with the key kept wrapped in IndexedDB (created on first use). */
  async openWrapped(name: string): Promise<void> {
    const key = await loadOrCreateWrappedDatabaseKey(name);
    session = await CoreCrypto.open(await Database.open(name, key));
  },

  /**
   * Add a credential for `tag`, then `transactions` transactions of `perTx` key packages each.
   * Returns each transaction's [start, end] (epoch ms) and the package count it saw at its start.
   */
  async generate(
    tag: string,
    transactions: number,
    perTx: number,
  ): Promise<{ intervals: [number, number][]; seen: number[] }> {
    const cc = session as CoreCrypto;
    const ref = await cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE, clientIdFor(tag))));
    const intervals: [number, number][] = [];
    const seen: number[] = [];
    for (let i = 0; i < transactions; i++) {
      await cc.transaction(async (tx) => {
        const t0 = now();
        seen.push((await tx.getKeypackageRefs()).length);
        for (let j = 0; j < perTx; j++) await tx.generateKeypackage(ref);
        intervals.push([t0, now()]);
      });
    }
    return { intervals, seen };
  },

  snapshot: (): Promise<Snapshot> => snapshotOf(session as CoreCrypto),

  /** Counts read outside any transaction (after another tab's commit: via BroadcastChannel). */
  counts: async (): Promise<Record<string, number>> => ({
    ...(await (session as CoreCrypto).database.counts()),
  }),

  async close(): Promise<void> {
    await session?.close();
    session = undefined;
  },

  /**
   * Commit forever, straight to the keystore: transaction i stores 150 bundles tagged `i`
   * (credential id), deletes the bundles of transaction i - 2 and sets kv `counter` = i.
   * `__began(i)` is called just before commit i, `__done(i)` after it returned.
   */
  async startWriter(name: string, keyHex: string): Promise<void> {
    const ks = await openIndexedDbKeystore(name, new DatabaseKey(fromHex(keyHex)), {
      compaction: { maxLogRecords: 3 },
    });
    const state = await ks.get("kv", "counter");
    let i = state === undefined ? 0 : new DataView(state.value.buffer, state.value.byteOffset).getUint32(0);
    const byTx = new Map<number, KeypackageRow[]>();
    for (const m of await ks.listKeypackageMeta()) {
      const row = await ks.get("keypackages", m.ref);
      if (row === undefined) continue;
      const n = Number(m.credentialId);
      byTx.set(n, [...(byTx.get(n) ?? []), row]);
    }
    const w = globalThis as unknown as {
      __began(i: number): Promise<void>;
      __done(i: number): Promise<void>;
    };
    for (;;) {
      i++;
      const fresh = Array.from({ length: 150 }, () => keypackageBundle(String(i), {}, 2000));
      byTx.set(
        i,
        fresh.map((b) => b.kp),
      );
      const value = new Uint8Array(4);
      new DataView(value.buffer).setUint32(0, i);
      const ops: StagedOp[] = [
        ...fresh.flatMap(bundleOps),
        ...(byTx.get(i - 2) ?? []).flatMap((kp) => bundleDeleteOps(kp)),
        { kind: "put", table: "kv", key: "counter", row: { key: "counter", value } },
      ];
      byTx.delete(i - 2);
      await w.__began(i); // the test knows which commit is in flight before it starts
      await ks.commit(ops);
      void w.__done(i);
    }
  },

  /**
   * What a reopened database holds must be a committed prefix: counter c, exactly the bundles of
   * transactions c - 1 and c, each with its two private rows. Returns c.
   */
  async checkPrefix(
    name: string,
    keyHex: string,
  ): Promise<{ counter: number; problems: string[]; log: unknown }> {
    const ks = await openIndexedDbKeystore(name, new DatabaseKey(fromHex(keyHex)));
    const problems: string[] = [];
    const state = await ks.get("kv", "counter");
    const c = state === undefined ? 0 : new DataView(state.value.buffer, state.value.byteOffset).getUint32(0);
    const metas = await ks.listKeypackageMeta();
    const perTx = new Map<number, number>();
    for (const m of metas) {
      const n = Number(m.credentialId);
      perTx.set(n, (perTx.get(n) ?? 0) + 1);
      const row = await ks.get("keypackages", m.ref);
      if (row === undefined) problems.push(`listed ${m.ref} missing`);
      else {
        if ((await ks.get("hpke_private_keys", row.initKey)) === undefined)
          problems.push(`hpke of ${m.ref} missing`);
        if ((await ks.get("encryption_keypairs", row.encryptionKey)) === undefined)
          problems.push(`enc of ${m.ref} missing`);
      }
    }
    const expected = new Map<number, number>();
    for (const n of [c - 1, c]) if (n >= 1) expected.set(n, 150);
    const got = [...perTx.entries()].sort((a, b) => a[0] - b[0]);
    const want = [...expected.entries()].sort((a, b) => a[0] - b[0]);
    if (JSON.stringify(got) !== JSON.stringify(want))
      problems.push(
        `counter ${c}: packages per transaction ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`,
      );
    const counts = await ks.counts();
    if (counts.hpke_private_keys !== counts.keypackages || counts.encryption_keypairs !== counts.keypackages)
      problems.push(`row counts differ: ${JSON.stringify(counts)}`);
    const log = ks.stats;
    await ks.close();
    return { counter: c, problems, log };
  },

  /** The wrapped key's record: its CryptoKey is not extractable and the raw key is not stored. */
  async wrappedKeyRecord(
    name: string,
  ): Promise<{ extractable: boolean; exportFails: boolean; rawStored: boolean; type: string }> {
    const key = await loadOrCreateWrappedDatabaseKey(name);
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open("mls-keypackages-keys");
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const rec = await new Promise<{ wrappingKey: CryptoKey; wrapped: Uint8Array }>((resolve, reject) => {
      const r = db.transaction("keys").objectStore("keys").get(name);
      r.onsuccess = () => resolve(r.result as { wrappingKey: CryptoKey; wrapped: Uint8Array });
      r.onerror = () => reject(r.error);
    });
    db.close();
    const exportFails = await crypto.subtle.exportKey("raw", rec.wrappingKey).then(
      () => false,
      () => true,
    );
    return {
      extractable: rec.wrappingKey.extractable,
      exportFails,
      rawStored: toHex(rec.wrapped).includes(toHex(key.bytes())),
      type: Object.prototype.toString.call(rec.wrappingKey),
    };
  },
};

export type TabsTestApi = typeof api;
(globalThis as unknown as { tabsTest: TabsTestApi }).tabsTest = api;
