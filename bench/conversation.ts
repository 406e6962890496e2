/**
 * Conversations, ours vs CoreCrypto 10.3.0 (wasm, in-memory database) in the same run:
 *  - create a conversation + add one member (→ 2 members), committed;
 *  - processWelcomeMessage of a 2-member conversation, committed (consumes the key package);
 *  - add one member to a 99-member conversation (→ 100), in a transaction then rolled back;
 *  - process that commit as another member of the 99, in a transaction then rolled back;
 *  - processWelcomeMessage of the 100-member conversation, in a transaction then rolled back;
 *  - encrypt 1 KiB (one member) + decrypt it (the other), 2 members, committed.
 * Each row also gives the primitive floor: the node:crypto calls our engine makes on that path
 * (counted with bench/conversation-profile.ts), replayed with no encoding, awaits or storage.
 * Run: `npx tsx bench/conversation.ts` (BENCH_OPS, BENCH_ROUNDS, BENCH_WARMUP_ROUNDS, BENCH_SUITE to change the defaults).
 * Writes bench/conversation-results.md.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import type { Keypackage } from "../src/index.js";
import { coreCryptoClient, loadCoreCrypto } from "../test/interop/corecrypto.js";
import {
  BIG,
  CASES,
  MESSAGE,
  OPS,
  SUITE,
  fillers,
  freshId,
  kase,
  oursBench,
  timeOnce,
  type CaseName,
  type Case,
  type Cases,
} from "./conversationOurs.js";
import { fmt, machine } from "./util.js";

/**
 * Untimed rounds per case and side before the timed ones. V8 needs a few hundred calls of
 * a path before its optimizing tiers take it over (a 30-op warm-up left ours 15–20% slower
 * than its steady state); CoreCrypto's wasm tiers up too. Both sides get the same warm-up.
 */
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 15);
/**
 * Many short rounds rather than a few long ones: on a shared machine the best round is the one
 * least disturbed by other load, and short rounds give both sides more chances of a quiet one.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
class Rollback extends Error {}

// ── CoreCrypto ──────────────────────────────────────────────────────────────

async function coreCryptoBench(fill: Keypackage[]): Promise<Cases> {
  const cc = await loadCoreCrypto();
  let last: { commit: Uint8Array; welcome?: { serialize(): Uint8Array } } | undefined;
  const a = await coreCryptoClient("aaaaaaaa-bbbb-4ccc-8ddd-00000000c001:c1@bench.example", SUITE, {
    async sendCommitBundle(b: unknown) {
      last = b as typeof last;
    },
  });
  const j = await coreCryptoClient("aaaaaaaa-bbbb-4ccc-8ddd-00000000c002:c2@bench.example", SUITE);
  const b = await coreCryptoClient("aaaaaaaa-bbbb-4ccc-8ddd-00000000c003:c3@bench.example", SUITE);
  const jKp = await j.core.transaction((ctx) => ctx.generateKeyPackage(j.credentialRef));
  const conv = (id: Uint8Array) => new cc.ConversationId(id);

  const createAdd2 = kase(
    async () => Array.from({ length: OPS }, freshId),
    async (ids) => {
      for (const id of ids) {
        await a.core.transaction(async (ctx) => {
          await ctx.createConversation(conv(id), a.credentialRef);
          await ctx.addClientsToConversation(conv(id), [jKp]);
        });
      }
    },
  );

  const big = freshId();
  const bKp = await b.core.transaction((ctx) => ctx.generateKeyPackage(b.credentialRef));
  await a.core.transaction(async (ctx) => {
    await ctx.createConversation(conv(big), a.credentialRef);
    await ctx.addClientsToConversation(conv(big), [
      bKp,
      ...fill.map((k) => new cc.KeyPackage(k.serialize())),
    ]);
  });
  const bigWelcome = new Uint8Array(last?.welcome?.serialize() ?? []);
  await b.core.transaction((ctx) => ctx.processWelcomeMessage(new cc.Welcome(bigWelcome)));
  const rolledBack = async (f: () => Promise<void>): Promise<void> => {
    await f().catch((e: unknown) => {
      if (!(e instanceof Rollback) && !String(e).includes("rollback")) throw e;
    });
  };
  const add100 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        await rolledBack(() =>
          a.core.transaction(async (ctx) => {
            await ctx.addClientsToConversation(conv(big), [jKp]);
            throw new Rollback("rollback");
          }),
        );
      }
    },
  );
  if ((await a.core.transaction((ctx) => ctx.getClientIds(conv(big)))).length !== BIG)
    throw new Error("rollback failed");

  await rolledBack(() =>
    a.core.transaction(async (ctx) => {
      await ctx.addClientsToConversation(conv(big), [jKp]);
      throw new Rollback("rollback");
    }),
  );
  const c100 = new Uint8Array(last?.commit ?? []);
  const w100 = new Uint8Array(last?.welcome?.serialize() ?? []);
  const commit100 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        await rolledBack(() =>
          b.core.transaction(async (ctx) => {
            await ctx.decryptMessage(conv(big), c100);
            throw new Rollback("rollback");
          }),
        );
      }
    },
  );
  const welcome100 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        await rolledBack(() =>
          j.core.transaction(async (ctx) => {
            await ctx.processWelcomeMessage(new cc.Welcome(w100));
            throw new Rollback("rollback");
          }),
        );
      }
    },
  );

  const welcome2 = kase(
    async () => {
      const kps = await j.core.transaction(async (ctx) => {
        const out = [];
        for (let i = 0; i < OPS; i++) out.push(await ctx.generateKeyPackage(j.credentialRef));
        return out;
      });
      const welcomes: Uint8Array[] = [];
      for (const kp of kps) {
        const id = freshId();
        await a.core.transaction(async (ctx) => {
          await ctx.createConversation(conv(id), a.credentialRef);
          await ctx.addClientsToConversation(conv(id), [kp]);
        });
        welcomes.push(new Uint8Array(last?.welcome?.serialize() ?? []));
      }
      return welcomes;
    },
    async (welcomes) => {
      for (const w of welcomes)
        await j.core.transaction((ctx) => ctx.processWelcomeMessage(new cc.Welcome(w)));
    },
  );

  const pair = freshId();
  const bKp2 = await b.core.transaction((ctx) => ctx.generateKeyPackage(b.credentialRef));
  await a.core.transaction(async (ctx) => {
    await ctx.createConversation(conv(pair), a.credentialRef);
    await ctx.addClientsToConversation(conv(pair), [bKp2]);
  });
  const pairWelcome = new Uint8Array(last?.welcome?.serialize() ?? []);
  await b.core.transaction((ctx) => ctx.processWelcomeMessage(new cc.Welcome(pairWelcome)));
  const message1k = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        const m = await a.core.transaction((ctx) => ctx.encryptMessage(conv(pair), MESSAGE));
        await b.core.transaction((ctx) => ctx.decryptMessage(conv(pair), m));
      }
    },
  );
  return { createAdd2, welcome2, add100, commit100, welcome100, message1k };
}

// ── the primitive floor (suite 1) ──────────────────────────────────────────
// The node:crypto calls our engine makes on each path (counted per operation with
// `BENCH_COUNT=1 npx tsx bench/conversation-profile.ts`, which wraps node:crypto), replayed
// straight with no encoding, no awaits and no storage. Each is an RFC 9420 operation of the
// path; keys our provider finds in its key-object caches (the same init key, external key or
// ephemeral key met again in a rolled-back case) are not counted, as they are not imported.

const K32 = randomBytes(32);
const K16 = randomBytes(16);
const N12 = randomBytes(12);
const ED = generateKeyPairSync("ed25519");
const X = generateKeyPairSync("x25519");
const X_PUB_JWK = X.publicKey.export({ format: "jwk" });
const bytes = (n: number): Buffer => randomBytes(n);
const signed = (n: number): { msg: Buffer; sig: Buffer } => {
  const msg = bytes(n);
  return { msg, sig: sign(null, msg, ED.privateKey) };
};

/** One primitive call of a path, with the size of its input. */
type Prim =
  | { op: "x25519Import" } // a raw X25519 private key → KeyObject (JWK) → public key bytes
  | { op: "x25519PubImport" } // a peer's raw X25519 public key → KeyObject (JWK)
  | { op: "dh" }
  | { op: "sign" | "verify" | "hmac" | "hash" | "aesSeal" | "aesOpen"; size: number };

function replay(list: readonly (readonly [Prim, number])[]): Case {
  // inputs made once, outside the timing
  const steps = list.map(([p, count]): (() => void) => {
    switch (p.op) {
      case "x25519Import":
        return () => {
          for (let i = 0; i < count; i++) {
            const d = Buffer.from(K32).toString("base64url");
            createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "AA" }, format: "jwk" }).export({
              format: "jwk",
            });
          }
        };
      case "x25519PubImport":
        return () => {
          for (let i = 0; i < count; i++) createPublicKey({ key: X_PUB_JWK, format: "jwk" });
        };
      case "dh":
        return () => {
          for (let i = 0; i < count; i++) diffieHellman({ privateKey: X.privateKey, publicKey: X.publicKey });
        };
      case "sign": {
        const m = bytes(p.size);
        return () => {
          for (let i = 0; i < count; i++) sign(null, m, ED.privateKey);
        };
      }
      case "verify": {
        const { msg, sig } = signed(p.size);
        return () => {
          for (let i = 0; i < count; i++) verify(null, msg, ED.publicKey, sig);
        };
      }
      case "hmac": {
        const m = bytes(p.size);
        return () => {
          for (let i = 0; i < count; i++) createHmac("sha256", K32).update(m).digest();
        };
      }
      case "hash": {
        const m = bytes(p.size);
        return () => {
          for (let i = 0; i < count; i++) createHash("sha256").update(m).digest();
        };
      }
      case "aesSeal": {
        const m = bytes(p.size);
        return () => {
          for (let i = 0; i < count; i++) {
            const c = createCipheriv("aes-128-gcm", K16, N12);
            c.update(m);
            c.final();
            c.getAuthTag();
          }
        };
      }
      case "aesOpen": {
        const c = createCipheriv("aes-128-gcm", K16, N12);
        const body = Buffer.concat([c.update(bytes(p.size)), c.final()]);
        const tag = c.getAuthTag();
        return () => {
          for (let i = 0; i < count; i++) {
            const d = createDecipheriv("aes-128-gcm", K16, N12);
            d.setAuthTag(tag);
            d.update(body);
            d.final();
          }
        };
      }
    }
  });
  return kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) for (const step of steps) step();
    },
  );
}

const SMALL = 300; // a LeafNode, a FramedContentTBS, a KDFLabel: a few hundred bytes at most
/** The GroupInfo of the 100-member group (its ratchet_tree extension): ~23 KiB. */
const GROUP_INFO_100 = 23 * 1024;

/** Our engine's node:crypto calls per operation (bench/conversation-profile.ts, BENCH_COUNT=1). */
const FLOORS: Partial<Record<CaseName, readonly (readonly [Prim, number])[]>> = {
  // create: leaf key pair, leaf signature, epoch 0 key schedule (from a random epoch_secret,
  // RFC 9420 §11); add: the package's two
  // signatures, commit signature, key schedule, external_pub, GroupInfo signature, Welcome
  // (HPKE seal to the init key with an ephemeral key, welcome_key), transcript and tree hashes
  createAdd2: [
    [{ op: "x25519Import" }, 3],
    [{ op: "sign", size: SMALL }, 3],
    [{ op: "verify", size: SMALL }, 2],
    [{ op: "dh" }, 1],
    [{ op: "hmac", size: 64 }, 36],
    [{ op: "hash", size: SMALL }, 6],
    [{ op: "aesSeal", size: 1024 }, 2],
  ],
  // HPKE open of the group secrets, GroupInfo, its signature and the other leaf's (verified);
  // our own leaf and our own key package's signature (checked by signing again: Ed25519 is
  // deterministic, `verifyOwnSync` in src/mls/crypto/node.ts), key schedule, tree and
  // transcript hashes
  welcome2: [
    [{ op: "x25519Import" }, 1],
    [{ op: "x25519PubImport" }, 1],
    [{ op: "dh" }, 1],
    [{ op: "hmac", size: 64 }, 21],
    [{ op: "aesOpen", size: 1024 }, 2],
    [{ op: "verify", size: SMALL }, 2],
    [{ op: "sign", size: SMALL }, 2],
    [{ op: "hash", size: SMALL }, 4],
  ],
  // as createAdd2's add, with a 23 KiB GroupInfo (signed, sealed, and hashed into the HPKE
  // info of the group secrets); the tree hash touches O(log n) nodes
  add100: [
    [{ op: "x25519Import" }, 1],
    [{ op: "sign", size: SMALL }, 1],
    [{ op: "sign", size: GROUP_INFO_100 }, 1],
    [{ op: "verify", size: SMALL }, 2],
    [{ op: "dh" }, 1],
    [{ op: "hmac", size: 64 }, 25],
    [{ op: "hmac", size: GROUP_INFO_100 }, 1],
    [{ op: "hash", size: SMALL }, 3],
    [{ op: "aesSeal", size: GROUP_INFO_100 }, 1],
    [{ op: "aesSeal", size: 64 }, 1],
  ],
  // membership tag, commit signature, the added package's two signatures, key schedule,
  // confirmation tag, O(log n) tree hashes, transcript hashes
  commit100: [
    [{ op: "verify", size: SMALL }, 3],
    [{ op: "hmac", size: 64 }, 15],
    [{ op: "hash", size: SMALL }, 10],
  ],
  // as welcome2 with 100 leaves: 99 leaf signatures verified (ours re-signed, with our key
  // package's), a 23 KiB GroupInfo, the whole tree hashed
  welcome100: [
    [{ op: "dh" }, 1],
    [{ op: "hmac", size: 64 }, 20],
    [{ op: "hmac", size: GROUP_INFO_100 }, 1],
    [{ op: "aesOpen", size: GROUP_INFO_100 }, 1],
    [{ op: "aesOpen", size: 64 }, 1],
    [{ op: "verify", size: GROUP_INFO_100 }, 1],
    [{ op: "verify", size: SMALL }, 99],
    [{ op: "sign", size: SMALL }, 2],
    [{ op: "hash", size: SMALL }, 203],
  ],
  // sender: secret tree ratchet, sender data key, content and sender data sealed, signed;
  // receiver: the same, opened and verified
  message1k: [
    [{ op: "sign", size: 1024 }, 1],
    [{ op: "verify", size: 1024 }, 1],
    [{ op: "hmac", size: 64 }, 10],
    [{ op: "aesSeal", size: 1024 }, 1],
    [{ op: "aesSeal", size: 32 }, 1],
    [{ op: "aesOpen", size: 1024 }, 1],
    [{ op: "aesOpen", size: 32 }, 1],
  ],
};

function floorCases(): Partial<Cases> {
  const out: Partial<Cases> = {};
  for (const [k, list] of Object.entries(FLOORS)) out[k as CaseName] = replay(list);
  return out;
}

// ── report ──────────────────────────────────────────────────────────────────

const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join("/");
const loadBefore = loadAverage();
const fill = await fillers();
const ours = await oursBench(fill);
const theirs = await coreCryptoBench(fill);
/** BENCH_CASES=createAdd2,welcome2 runs only those rows (for experiments; the report wants all). */
const only = process.env.BENCH_CASES?.split(",");
const labels: readonly (readonly [CaseName, string])[] = CASES.filter(([k]) => only?.includes(k) ?? true);
// Rounds alternate between the two sides, so that load from elsewhere hits both alike.
const best = { ours: {} as Record<string, number>, theirs: {} as Record<string, number> };
for (const [k] of labels) {
  best.ours[k] = Number.POSITIVE_INFINITY;
  best.theirs[k] = Number.POSITIVE_INFINITY;
  for (let round = 1 - WARMUP_ROUNDS; round <= ROUNDS; round++) {
    const a = await timeOnce(ours[k]);
    const b = await timeOnce(theirs[k]);
    if (round <= 0) continue; // warm-up
    best.ours[k] = Math.min(best.ours[k] as number, a);
    best.theirs[k] = Math.min(best.theirs[k] as number, b);
  }
}
const floorMs: Record<string, number> = {};
if (SUITE === 1) {
  const floor = floorCases();
  for (const [k, c] of Object.entries(floor)) {
    if (!labels.some(([l]) => l === k)) continue;
    let m = Number.POSITIVE_INFINITY;
    for (let round = 1 - WARMUP_ROUNDS; round <= ROUNDS; round++) {
      const t = await timeOnce(c);
      if (round > 0) m = Math.min(m, t);
    }
    floorMs[k] = m;
  }
}
const msOurs = (k: string): number => best.ours[k] as number;
const msTheirs = (k: string): number => best.theirs[k] as number;
const floorCell = (k: string): string => {
  const f = floorMs[k];
  return f === undefined ? "—" : `${fmt(f)} (≤ ${(msTheirs(k) / f).toFixed(2)}×)`;
};
const lines = [
  "| operation | ours ms/op | CoreCrypto 10.3.0 ms/op | speed-up (CoreCrypto / ours) | primitive floor ms/op (best possible speed-up) |",
  "| --- | ---: | ---: | ---: | ---: |",
  ...labels.map(
    ([k, label]) =>
      `| ${label} | ${fmt(msOurs(k))} | ${fmt(msTheirs(k))} | ${(msTheirs(k) / msOurs(k)).toFixed(2)}× | ${floorCell(k)} |`,
  ),
];
const report = [
  "# Conversation benchmark",
  "",
  `- date: ${new Date().toISOString()}`,
  `- machine: ${machine()}; load average (1/5/15 min) ${loadBefore} at the start, ${loadAverage()} at the end (the machine is shared)`,
  `- cipher suite ${SUITE}, ${OPS} ops per round, best of ${ROUNDS} rounds after ${WARMUP_ROUNDS} untimed warm-up rounds (${WARMUP_ROUNDS * OPS} ops) per side and case, rounds alternating between the two sides in one process; in-memory databases on both sides`,
  "- CoreCrypto: the real 10.3.0 wasm build in Node (test/interop/corecrypto.ts); its transport accepts every commit",
  '- "rolled back": the operation runs inside a transaction that is then aborted, so the same group/Welcome is reused',
  "- ours: our RFC 9420 engine (src/mls/) on the library's default crypto provider for this runtime (node:crypto, `src/mls/crypto`)",
  "",
  ...lines,
  "",
  "Primitive floor (suite 1 only): the node:crypto calls our engine makes on the path, counted per",
  "operation (`BENCH_COUNT=1 npx tsx bench/conversation-profile.ts` wraps node:crypto) and replayed",
  "with nothing else: no encoding, no awaits, no storage (`FLOORS` in bench/conversation.ts lists",
  "them with the RFC 9420 step each serves). CoreCrypto's time ÷ the floor is the best speed-up an",
  "implementation making these calls could reach. Keys our provider already holds as key objects",
  "(an init key, external key or ephemeral key met again in a rolled-back case) are not imported",
  "again, so they are not in the floor either; the floor is measured last, in the same process.",
  "",
  "Where our time goes (CPU profiles of our side alone, `node --cpu-prof` on",
  "bench/conversation-profile.ts): create + add spends about 45-55% in node:crypto (3 Ed25519",
  "signatures, 2 verifications, 3 X25519 key imports, 1 DH, 36 HMACs, 6 hashes, 2 AES-GCM), 5-10%",
  "in GC and the rest in JavaScript spread over ~100 functions none above 2% (encodings, key",
  "schedule plumbing, the conversation layer and its storage). The 2-member join is ~70% crypto (2",
  "verifications: the GroupInfo and the other member's leaf; our own leaf and our own key package's",
  "signature are checked by signing again with our key, Ed25519 being deterministic, at about half",
  "the cost of a verification, with the same result). The 100-member join is ~70% the 100 leaf",
  "signatures and 200 tree hashes the RFC requires, ~10% GC.",
  "What the engine avoids: a node is encoded once (tree hash, ratchet_tree extension, stored state",
  "reuse its bytes; decoded trees keep the bytes they came in), a GroupInfo once (signed, then",
  "sealed and sent as those bytes), an added key package's leaf signature is verified once (with",
  "the package), our own leaf once (in the tree), tree hashes of unchanged subtrees are reused,",
  "the secret tree is derived lazily, HMAC-based derivations run synchronously on node:crypto,",
  "welcome_secret and epoch_secret share one KDF.Extract, a new group's epoch 0 starts from a",
  "random epoch_secret (§11), and encoders reuse zeroed scratch buffers.",
  "",
].join("\n");
console.log(report);
writeFileSync(new URL("./conversation-results.md", import.meta.url), report);
