/**
 * In-page side of bench/browser.ts: the same key package operations on our library
 * (`Database.open` in IndexedDB, or in memory) and on CoreCrypto 10.3.0's browser build (its
 * persistent IndexedDB database, or in memory), each timed with `performance.now()`.
 * Bundled by esbuild; CoreCrypto's wasm is served next to it.
 */
import * as cc from "@wireapp/core-crypto/browser";
import { Ciphersuite, ClientId, CoreCrypto, Credential, Database, DatabaseKey } from "../src/index.js";
import type { CommitBundle, CredentialRef, Keypackage, MlsTransportResponse } from "../src/index.js";
import { wrapPkcs8 } from "../src/mls/crypto/bytes.js";
import { bs } from "../src/mls/crypto/web-primitives.js";

const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const USER = "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a";
const DEVICE = "4d2a";
const DOMAIN = "wire.com";

type CcCore = cc.CoreCrypto;
type CcContext = Parameters<Parameters<CcCore["transaction"]>[0]>[0];
type CcCredentialRef = Parameters<CcContext["generateKeyPackage"]>[0];

/** One side of the comparison: a session on one database, with the operations timed. */
interface Side {
  addCredential(): Promise<unknown>;
  generate(cred: unknown, n: number): Promise<void>;
  list(): Promise<number>;
  removeFor(cred: unknown): Promise<void>;
  /** A second session on the same database: open it and list. */
  secondOpenAndList(): Promise<number>;
  /** Ours on IndexedDB: fold the log into the snapshot now; ms and the log bytes folded. */
  compact?(): Promise<{ ms: number; bytes: number }>;
}

/** What the IndexedDB keystore exposes for inspection (not part of the `Keystore` contract). */
interface CompactableKeystore {
  readonly stats: { logBytes: number };
  compact(): Promise<void>;
}

const transport = {
  async sendCommitBundle(): Promise<undefined> {
    return undefined;
  },
  async prepareForTransport(): Promise<never> {
    throw new Error("unused");
  },
} as never;

let keyBytes = crypto.getRandomValues(new Uint8Array(32));

async function ours(name: string | undefined): Promise<Side> {
  const key = new DatabaseKey(keyBytes);
  const db = name === undefined ? await Database.inMemory() : await Database.open(name, key);
  const session = await CoreCrypto.open(db);
  const clientId = ClientId.parse(`${USER}:${DEVICE}@${DOMAIN}`);
  return {
    addCredential: () => session.transaction((tx) => tx.addCredential(Credential.basic(SUITE, clientId))),
    generate: (cred, n) =>
      session.transaction(async (tx) => {
        for (let i = 0; i < n; i++) await tx.generateKeypackage(cred as CredentialRef);
      }),
    list: () => session.transaction(async (tx) => (await tx.getKeypackageRefs()).length),
    removeFor: (cred) => session.transaction((tx) => tx.removeKeypackagesFor(cred as CredentialRef)),
    async secondOpenAndList() {
      const second = await CoreCrypto.open(await Database.open(name as string, key));
      const n = await second.transaction(async (tx) => (await tx.getKeypackageRefs()).length);
      await second.close();
      return n;
    },
    ...(name === undefined
      ? {}
      : {
          async compact() {
            const ks = db.keystore as unknown as CompactableKeystore;
            const bytes = ks.stats.logBytes;
            const t0 = performance.now();
            await ks.compact();
            return { ms: performance.now() - t0, bytes };
          },
        }),
  };
}

async function theirs(name: string | undefined): Promise<Side> {
  const clientId = () => new cc.ClientId(new cc.Uuid(USER), cc.DeviceId.fromHexString(DEVICE), DOMAIN);
  const openDb = () =>
    name === undefined ? cc.Database.inMemory() : cc.Database.open(name, new cc.DatabaseKey(keyBytes));
  const core = cc.CoreCrypto.new(await openDb());
  await core.transaction((ctx) => ctx.mlsInit(clientId(), transport));
  return {
    addCredential: () =>
      core.transaction((ctx) =>
        ctx.addCredential(cc.Credential.basic(cc.cipherSuiteFromU16(SUITE), clientId())),
      ),
    generate: (cred, n) =>
      core.transaction(async (ctx) => {
        for (let i = 0; i < n; i++) await ctx.generateKeyPackage(cred as CcCredentialRef);
      }),
    list: () => core.transaction(async (ctx) => (await ctx.getKeyPackages()).length),
    removeFor: (cred) => core.transaction((ctx) => ctx.removeKeyPackagesFor(cred as CcCredentialRef)),
    async secondOpenAndList() {
      const second = cc.CoreCrypto.new(await openDb());
      return second.transaction(async (ctx) => {
        await ctx.mlsInit(clientId(), transport);
        return (await ctx.getKeyPackages()).length;
      });
    },
  };
}

/** Conversation operations: a creator and a joiner, each its own session on its own database. */
interface ConvSides {
  /** `n` key packages of the joiner (untimed), opaque to the caller. */
  joinerPackages(n: number): Promise<unknown[]>;
  /** Create a conversation and add the joiner's package, committed; returns the Welcome. */
  createAdd(kp: unknown): Promise<unknown>;
  processWelcome(welcome: unknown): Promise<void>;
}

let convNo = 0;
const convId = (): Uint8Array => new TextEncoder().encode(`bench-conv-${Date.now()}-${++convNo}`);

async function oursConv(persistent: boolean): Promise<ConvSides> {
  const open = async (): Promise<CoreCrypto> =>
    CoreCrypto.open(
      persistent
        ? await Database.open(`bench-conv-ours-${Date.now()}-${dbNo++}`, new DatabaseKey(keyBytes))
        : await Database.inMemory(),
    );
  let last: CommitBundle | undefined;
  const transport = {
    async sendCommitBundle(b: CommitBundle): Promise<MlsTransportResponse> {
      last = b;
      return "success";
    },
  };
  const a = await open();
  a.provideTransport(transport);
  const j = await open();
  const id = (d: number): ClientId => ClientId.parse(`${USER.slice(0, -1)}${d}:${DEVICE}@${DOMAIN}`);
  const aCred = await a.transaction((tx) => tx.addCredential(Credential.basic(SUITE, id(1))));
  const jCred = await j.transaction((tx) => tx.addCredential(Credential.basic(SUITE, id(2))));
  return {
    joinerPackages: (n) =>
      j.transaction(async (tx) => {
        const out: Keypackage[] = [];
        for (let i = 0; i < n; i++) out.push(await tx.generateKeypackage(jCred));
        return out;
      }),
    async createAdd(kp) {
      const cid = convId();
      await a.transaction(async (tx) => {
        await tx.createConversation(cid, aCred);
        await tx.addClientsToConversation(cid, [kp as Keypackage]);
      });
      return last?.welcome;
    },
    async processWelcome(w) {
      await j.transaction((tx) => tx.processWelcomeMessage(w as Uint8Array));
    },
  };
}

async function theirsConv(persistent: boolean): Promise<ConvSides> {
  const open = async (): Promise<CcCore> =>
    cc.CoreCrypto.new(
      persistent
        ? await cc.Database.open(`bench-conv-cc-${Date.now()}-${dbNo++}`, new cc.DatabaseKey(keyBytes))
        : await cc.Database.inMemory(),
    );
  let last: { welcome?: { serialize(): Uint8Array } } | undefined;
  const recorder = {
    async sendCommitBundle(b: unknown): Promise<undefined> {
      last = b as typeof last;
      return undefined;
    },
    async prepareForTransport(): Promise<never> {
      throw new Error("unused");
    },
  } as never;
  const id = (d: number) =>
    new cc.ClientId(new cc.Uuid(`${USER.slice(0, -1)}${d}`), cc.DeviceId.fromHexString(DEVICE), DOMAIN);
  const a = await open();
  await a.transaction((ctx) => ctx.mlsInit(id(1), recorder));
  const j = await open();
  await j.transaction((ctx) => ctx.mlsInit(id(2), transport));
  const suite = cc.cipherSuiteFromU16(SUITE);
  const aCred = await a.transaction((ctx) => ctx.addCredential(cc.Credential.basic(suite, id(1))));
  const jCred = await j.transaction((ctx) => ctx.addCredential(cc.Credential.basic(suite, id(2))));
  return {
    joinerPackages: (n) =>
      j.transaction(async (ctx) => {
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(await ctx.generateKeyPackage(jCred));
        return out;
      }),
    async createAdd(kp) {
      const cid = new cc.ConversationId(convId());
      await a.transaction(async (ctx) => {
        await ctx.createConversation(cid, aCred);
        await ctx.addClientsToConversation(cid, [
          kp as Parameters<CcContext["addClientsToConversation"]>[1][number],
        ]);
      });
      return new Uint8Array(last?.welcome?.serialize() ?? []);
    },
    async processWelcome(w) {
      await j.transaction((ctx) => ctx.processWelcomeMessage(new cc.Welcome(w as Uint8Array)));
    },
  };
}

const convs = new Map<string, ConvSides>();

const sides = new Map<string, { side: Side; base: unknown }>();
let dbNo = 0;

/**
 * A pause before a timed operation: all databases of an origin share one IndexedDB backend, so
 * the other side's writes still being flushed would otherwise land in this side's timing.
 */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));

/**
 * Every IndexedDB write transaction this page opens (both sides alike): how many are still
 * running, and when the last one completed. CoreCrypto's `transaction()` resolves before its
 * last write transaction has even started (it flushes its SQLite pages afterwards); ours
 * resolves once its log record is committed. So each timed operation has two figures: when its
 * promise resolved, and when the writes it started were stored.
 */
const writes = { running: 0, lastDone: 0 };
{
  const proto = IDBDatabase.prototype;
  const open = proto.transaction;
  proto.transaction = function (this: IDBDatabase, ...args: Parameters<typeof open>): IDBTransaction {
    const tx = open.apply(this, args);
    if (tx.mode !== "readonly") {
      writes.running++;
      const done = (): void => {
        writes.running--;
        writes.lastDone = performance.now();
      };
      tx.addEventListener("complete", done);
      tx.addEventListener("abort", done);
    }
    return tx;
  } as typeof open;
}

/** No write running, and none started within this many ms after the last one completed. */
const WRITES_QUIET_MS = 30;

/** When the writes started so far were stored (waits until none runs for `WRITES_QUIET_MS`). */
async function writesStoredAt(): Promise<number> {
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  for (;;) {
    while (writes.running > 0) await sleep(1);
    const seen = writes.lastDone;
    await sleep(WRITES_QUIET_MS);
    if (writes.running === 0 && writes.lastDone === seen) return seen;
  }
}

interface Timed<T> {
  /** Until the operation's promise resolved. */
  ms: number;
  /** Until the IndexedDB writes it started were stored (≥ `ms`). */
  storedMs: number;
  value: T;
}

async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await fn();
  const t1 = performance.now();
  const stored = await writesStoredAt();
  return { ms: t1 - t0, storedMs: Math.max(t1, stored) - t0, value };
}

const api = {
  userAgent: () => navigator.userAgent,

  async init(wasmUrl: string): Promise<string> {
    await cc.initWasmModule(wasmUrl);
    keyBytes = crypto.getRandomValues(new Uint8Array(32));
    return cc.version();
  },

  /** Generate `n` key packages in one transaction on a fresh database; ms. */
  async generateFresh(
    impl: "ours" | "cc",
    persistent: boolean,
    n: number,
  ): Promise<{ ms: number; storedMs: number }> {
    const name = persistent ? `bench-gen-${impl}-${Date.now()}-${dbNo++}` : undefined;
    const side = impl === "ours" ? await ours(name) : await theirs(name);
    const cred = await side.addCredential();
    await side.generate(cred, 2); // warm the session's credential path
    await settle();
    const r = await timed(() => side.generate(cred, n));
    return { ms: r.ms, storedMs: r.storedMs };
  },

  /** Time a first session's open + list on database `name` in this page (a new tab's view). */
  async openFresh(impl: "ours" | "cc", name: string, keyHex: string): Promise<{ ms: number; n: number }> {
    keyBytes = Uint8Array.from(keyHex.match(/../g) as string[], (h) => parseInt(h, 16));
    const r = await timed(async () => {
      const side = impl === "ours" ? await ours(name) : await theirs(name);
      return side.list();
    });
    return { ms: r.ms, n: r.value };
  },

  /**
   * The WebCrypto calls ours makes for `n` key packages and nothing else: per package two X25519
   * key pairs (32 random bytes imported as PKCS#8, then exportKey "jwk" for the public key) and
   * two Ed25519 signatures (a cached key); ms.
   */
  async generateFloor(n: number): Promise<number> {
    const s = crypto.subtle;
    const kp = (await s.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
    const msg = crypto.getRandomValues(new Uint8Array(200));
    const x = async (): Promise<JsonWebKey> => {
      const der = bs(wrapPkcs8("X25519", crypto.getRandomValues(new Uint8Array(32))));
      const k = await s.importKey("pkcs8", der, { name: "X25519" }, true, ["deriveBits"]);
      return s.exportKey("jwk", k);
    };
    await settle();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await x();
      await x();
      await s.sign({ name: "Ed25519" }, kp.privateKey, msg);
      await s.sign({ name: "Ed25519" }, kp.privateKey, msg);
    }
    return performance.now() - t0;
  },

  /** Median of bare IndexedDB read-write transactions putting one 1 KiB record (the floor of any commit). */
  async idbFloor(rounds: number): Promise<number> {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open(`bench-floor-${Date.now()}`, 1);
      r.onupgradeneeded = () => r.result.createObjectStore("s");
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const value = crypto.getRandomValues(new Uint8Array(1024));
    const ms: number[] = [];
    for (let i = 0; i <= rounds; i++) {
      const t0 = performance.now();
      const tx = db.transaction("s", "readwrite");
      tx.objectStore("s").put({ v: value }, i);
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onabort = reject;
      });
      if (i > 0) ms.push(performance.now() - t0);
    }
    db.close();
    ms.sort((a, b) => a - b);
    return ms[ms.length >> 1] as number;
  },

  /**
   * `n` × (create a conversation + add one member, committed), then the joiner processes the
   * `n` Welcomes (each committed); ms per operation. Sessions are made on the first call per `id`.
   */
  async conversation(
    id: string,
    impl: "ours" | "cc",
    persistent: boolean,
    n: number,
  ): Promise<{
    createAdd: number;
    createAddStored: number;
    createAddLateMs: number;
    welcome: number;
    welcomeStored: number;
    welcomeLateMs: number;
  }> {
    let c = convs.get(id);
    if (c === undefined) {
      c = impl === "ours" ? await oursConv(persistent) : await theirsConv(persistent);
      convs.set(id, c);
    }
    const kps = await c.joinerPackages(n);
    await settle();
    const welcomes: unknown[] = [];
    const add = await timed(async () => {
      for (const kp of kps) welcomes.push(await c.createAdd(kp));
    });
    await settle();
    const welcome = await timed(async () => {
      for (const w of welcomes) await c.processWelcome(w);
    });
    return {
      createAddLateMs: add.storedMs - add.ms,
      welcomeLateMs: welcome.storedMs - welcome.ms,
      createAdd: add.ms / n,
      createAddStored: add.storedMs / n,
      welcome: welcome.ms / n,
      welcomeStored: welcome.storedMs / n,
    };
  },

  keyHex: () => Array.from(keyBytes, (b) => b.toString(16).padStart(2, "0")).join(""),

  /** A database with `stored` packages of a base credential (untimed); returns its name. */
  async setup(
    id: string,
    impl: "ours" | "cc",
    persistent: boolean,
    stored: number,
  ): Promise<string | undefined> {
    const name = persistent ? `bench-${impl}-${Date.now()}-${dbNo++}` : undefined;
    const side = impl === "ours" ? await ours(name) : await theirs(name);
    const base = await side.addCredential();
    for (let left = stored; left > 0; left -= 300) await side.generate(base, Math.min(300, left));
    sides.set(id, { side, base });
    return name;
  },

  /**
   * One round on a set-up database of `stored` packages: add `extra` under a new credential
   * (untimed), then time list, remove-by-credential of those, and a second session's open + list.
   */
  async round(
    id: string,
    extra: number,
    second: boolean,
  ): Promise<{
    list: number;
    remove: number;
    removeStored: number;
    open?: number;
    compact?: { ms: number; bytes: number };
    counts: number[];
  }> {
    const { side } = sides.get(id) as { side: Side };
    const cred = await side.addCredential();
    await side.generate(cred, extra);
    await settle();
    const list = await timed(() => side.list());
    await settle();
    const remove = await timed(() => side.removeFor(cred));
    const after = await side.list();
    const open = second ? await timed(() => side.secondOpenAndList()) : undefined;
    const compact = side.compact === undefined ? undefined : await side.compact();
    return {
      list: list.ms,
      remove: remove.ms,
      removeStored: remove.storedMs,
      open: open?.ms,
      compact,
      counts: [list.value, after, ...(open ? [open.value] : [])],
    };
  },
};

export type BrowserBenchApi = typeof api;
(globalThis as unknown as { browserBench: BrowserBenchApi }).browserBench = api;
