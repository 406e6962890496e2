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
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
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
// The RFC 9420 operations each path cannot avoid, straight on node:crypto with no encoding,
// no awaits and no storage: what any implementation on these primitives must spend at least.

const hmacs = (n: number, key: Uint8Array, data: Uint8Array): void => {
  for (let i = 0; i < n; i++) createHmac("sha256", key).update(data).digest();
};
const hashes = (n: number, data: Uint8Array): void => {
  for (let i = 0; i < n; i++) createHash("sha256").update(data).digest();
};
const aesGcm = (key: Uint8Array, nonce: Uint8Array, data: Uint8Array): Buffer => {
  const c = createCipheriv("aes-128-gcm", key, nonce);
  return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
};
const aesGcmOpen = (key: Uint8Array, nonce: Uint8Array, sealed: Buffer): void => {
  const d = createDecipheriv("aes-128-gcm", key, nonce);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  d.update(sealed.subarray(0, sealed.length - 16));
  d.final();
};
/**
 * A DeriveKeyPair-style import: raw X25519 scalar → private KeyObject → public key bytes. JWK is
 * node's cheapest import (~75 us); a PKCS#8 import goes through OpenSSL 3's decoders (~0.6 ms).
 */
const x25519FromScalar = (d: Uint8Array): void => {
  const b64 = Buffer.from(d).toString("base64url");
  const jwk = { kty: "OKP", crv: "X25519", d: b64, x: b64 }; // x is recomputed by OpenSSL
  createPrivateKey({ key: jwk, format: "jwk" }).export({ format: "jwk" });
};

function floorCases(): Partial<Cases> {
  const ed = generateKeyPairSync("ed25519");
  const joinerInit = generateKeyPairSync("x25519");
  const tbs = randomBytes(200);
  const sig = sign(null, tbs, ed.privateKey);
  const k32 = randomBytes(32);
  const k16 = randomBytes(16);
  const n12 = randomBytes(12);
  const groupSecrets = randomBytes(40);
  const groupInfo = randomBytes(600);
  const sealedSecrets = aesGcm(k16, n12, groupSecrets);
  const sealedInfo = aesGcm(k16, n12, groupInfo);
  const createAdd2 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        generateKeyPairSync("x25519"); // creator's leaf encryption key (§7.2)
        sign(null, tbs, ed.privateKey); // creator's LeafNode signature
        verify(null, tbs, ed.publicKey, sig); // added KeyPackage: leaf node signature (§10.1)
        verify(null, tbs, ed.publicKey, sig); // …and KeyPackage signature
        sign(null, tbs, ed.privateKey); // commit signature (§6.1)
        x25519FromScalar(k32); // external_pub = DeriveKeyPair(external_secret) (§12.4.3.2)
        sign(null, tbs, ed.privateKey); // GroupInfo signature (§12.4.3)
        const eph = generateKeyPairSync("x25519"); // HPKE seal of GroupSecrets (§12.4.3.1)
        diffieHellman({ privateKey: eph.privateKey, publicKey: joinerInit.publicKey });
        aesGcm(k16, n12, groupSecrets);
        aesGcm(k16, n12, groupInfo); // encrypted GroupInfo
        hmacs(36, k32, tbs.subarray(0, 64)); // two key schedules, HPKE, welcome key, tags (§8)
        hashes(8, tbs); // tree hashes, transcript hashes, KeyPackage ref
      }
    },
  );
  const welcome2 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        x25519FromScalar(k32); // HPKE open: import our init private key…
        diffieHellman({ privateKey: joinerInit.privateKey, publicKey: joinerInit.publicKey }); // …and DH
        aesGcmOpen(k16, n12, sealedSecrets);
        aesGcmOpen(k16, n12, sealedInfo); // GroupInfo (§12.4.3.1)
        verify(null, tbs, ed.publicKey, sig); // GroupInfo signature
        verify(null, tbs, ed.publicKey, sig); // the other member's LeafNode signature (§7.3)
        hmacs(24, k32, tbs.subarray(0, 64)); // HPKE, welcome key, key schedule, confirmation tag
        hashes(6, tbs); // tree hash and parent hash checks, transcript hash
      }
    },
  );
  return { createAdd2, welcome2 };
}

// ── report ──────────────────────────────────────────────────────────────────

const fill = await fillers();
const ours = await oursBench(fill);
const theirs = await coreCryptoBench(fill);
const labels: readonly (readonly [CaseName, string])[] = CASES;
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
  `- machine: ${machine()}`,
  `- cipher suite ${SUITE}, ${OPS} ops per round, best of ${ROUNDS} rounds after ${WARMUP_ROUNDS} untimed warm-up rounds (${WARMUP_ROUNDS * OPS} ops) per side, rounds alternating between the two sides; in-memory databases on both sides`,
  "- CoreCrypto: the real 10.3.0 wasm build in Node (test/interop/corecrypto.ts); its transport accepts every commit",
  '- "rolled back": the operation runs inside a transaction that is then aborted, so the same group/Welcome is reused',
  "- ours: the library's default crypto provider for this runtime (node:crypto, `src/mls/crypto`), ts-mls 1.6.4",
  "",
  ...lines,
  "",
  "Primitive floor (suite 1 only): the node:crypto calls RFC 9420 requires on the path and nothing",
  "else (no encoding, no awaits, no storage; `floorCases` in bench/conversation.ts lists them).",
  "CoreCrypto's time ÷ the floor is the best speed-up any implementation on these primitives could",
  "reach; a 2× lead needs everything besides the primitives to fit in the gap between the two.",
  "",
  "Where our time goes (CPU profiles and per-call timing of our side, suite 1, this machine;",
  "absolute times on this shared VM vary by up to 2x between runs, compare within a run): the",
  "node:crypto primitives are about half of both 2-member paths. Create + add: 3 Ed25519",
  "signatures (leaf, commit, GroupInfo), 2 verifications (the added KeyPackage), 3 X25519 key",
  "imports (leaf key, HPKE ephemeral, external_pub) and 1 X25519 DH, ~45 HMAC/hash calls. Join:",
  "2 verifications (GroupInfo, committer's leaf), 1 X25519 import + DH (HPKE open), ~30 HMAC/hash",
  "calls. Verification (~0.14 ms each with OpenSSL) dominates. The rest is JavaScript around them.",
  "Our adapter no longer uses ts-mls 1.6.4 for the hot structural work: TLS decoding of trees,",
  "GroupInfo, KeyPackage, Welcome and credentials (src/mls/fastDecode.ts: ts-mls rebuilds an enum",
  "reverse map per value, 40-160 us per leaf node), the key schedule and secret tree",
  "(src/mls/keySchedule.ts), tree/state encoding and tree hash with per-node cached encodings",
  "(src/mls/fastEncode.ts), the join (ts-mls joinGroup's steps and checks, with these pieces) and",
  "the add-only commit (createCommit's steps; the commit message is byte-identical; the Welcome",
  "carries the bundle's GroupInfo, signed once). What remains of ts-mls on these paths:",
  "applyProposals (Add validation), validateRatchetTree (leaf/parent-hash/tree-hash checks), the",
  "FramedContent/TBS encoders, HPKE label encoding. Also kept: no second verification of added",
  "packages' signatures, none of our own leaf on join, decoded states cached per database.",
  "",
  "Large groups: ts-mls's state keeps both ratchet secrets of every node of the secret tree (§9),",
  "about 6n HMACs per epoch for n members, and the tree hash (§7.8) covers every node. Our secret",
  "tree runs those HMACs synchronously on node:crypto (a promise per HMAC cost as much as the HMAC:",
  "5.4 ms → 3.3 ms for 100 leaves, against 2.6 ms of bare HMAC calls), and a commit's tree hash",
  "reuses the hashes of the subtrees it did not change, so an Add hashes O(log n) nodes.",
  "",
].join("\n");
console.log(report);
writeFileSync(new URL("./conversation-results.md", import.meta.url), report);
