/**
 * Key package generation, side by side in one run: our public API (one at a time and
 * batched), CoreCrypto 10.3.0 (wasm, in-memory), ts-mls with its default provider, and
 * the primitive floor (2 X25519 key generations, 2 Ed25519 signatures, 1 SHA-256).
 */
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import {
  defaultCryptoProvider,
  generateKeyPackage,
  getCiphersuiteImpl,
  defaultCapabilities,
  defaultLifetime,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { Ciphersuite, ClientId, CoreCrypto, Credential, Database } from "../src/index.js";
import { CC_CLIENT, coreCryptoClient } from "../test/interop/corecrypto.js";
import { machine, measure, table, writeResult, type Row } from "./util.js";

const N = Number(process.env.BENCH_KEYPACKAGES ?? 1000);
const clientId = ClientId.parse(CC_CLIENT);

async function oursRun(suite: Ciphersuite, n: number, batch: boolean): Promise<() => Promise<void>> {
  const cc = await CoreCrypto.open(await Database.inMemory());
  const cred = await cc.transaction((tx) => tx.addCredential(Credential.basic(suite, clientId)));
  return async () => {
    await cc.transaction(async (tx) => {
      if (batch) await tx.generateKeypackages(cred, n);
      else for (let i = 0; i < n; i++) await tx.generateKeypackage(cred);
    });
  };
}

async function ours(suite: Ciphersuite, n: number, batch: boolean): Promise<number> {
  return measure(n, await oursRun(suite, n, batch), 4);
}

/**
 * Best ms/op of each function over `rounds` rounds after one warm-up round, the functions
 * taking turns within each round (first one first in even rounds, last one first in odd
 * ones): load on the shared machine then falls on all of them alike.
 */
async function alternating(n: number, fns: (() => Promise<void>)[], rounds: number): Promise<number[]> {
  const best = fns.map(() => Number.POSITIVE_INFINITY);
  for (let r = 0; r <= rounds; r++) {
    const order = fns.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const t0 = performance.now();
      await (fns[i] as () => Promise<void>)();
      if (r > 0) best[i] = Math.min(best[i] as number, (performance.now() - t0) / n);
    }
  }
  return best;
}

async function coreCryptoRun(suite: number, n: number): Promise<() => Promise<void>> {
  const { core, credentialRef } = await coreCryptoClient(CC_CLIENT, suite);
  return async () => {
    await core.transaction(async (ctx) => {
      for (let i = 0; i < n; i++) await ctx.generateKeyPackage(credentialRef);
    });
  };
}

async function coreCrypto(suite: number, n: number): Promise<number> {
  return measure(n, await coreCryptoRun(suite, n), 4);
}

async function tsMlsDefault(suite: number, n: number): Promise<number> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId), defaultCryptoProvider);
  const credential = { credentialType: "basic" as const, identity: clientId.bytes() };
  return measure(
    n,
    async () => {
      for (let i = 0; i < n; i++)
        await generateKeyPackage(credential, defaultCapabilities(), defaultLifetime, [], cs);
    },
    4,
  );
}

function floorRun(n: number): () => Promise<void> {
  const { privateKey } = generateKeyPairSync("ed25519");
  const msg = new Uint8Array(300);
  return async () => {
    for (let i = 0; i < n; i++) {
      generateKeyPairSync("x25519");
      generateKeyPairSync("x25519");
      sign(null, msg, privateKey);
      sign(null, msg, privateKey);
      createHash("sha256").update(msg).digest();
    }
  };
}

/** Rounds of suite 1's alternating measurement (ours one by one, CoreCrypto, the floor). */
const SUITE1_ROUNDS = Number(process.env.BENCH_SUITE1_ROUNDS ?? 8);

const rows: Row[] = [];
const suites: [Ciphersuite, number][] = [
  [1, N],
  [2, N],
  [3, N],
  [7, Math.max(50, N / 4)],
  [5, Math.max(50, N / 4)],
  [4, Math.max(50, N / 4)],
  [6, Math.max(50, N / 4)],
];
const sections: string[] = [];
for (const [suite, n] of suites) {
  const r: Row[] = [];
  // Suite 1 carries the targets: ours, CoreCrypto and the floor take turns round by round.
  const [oursMs, ccMs, floorMs] =
    suite === 1
      ? await alternating(
          n,
          [await oursRun(suite, n, false), await coreCryptoRun(suite, n), floorRun(n)],
          SUITE1_ROUNDS,
        )
      : [await ours(suite, n, false), undefined, undefined];
  r.push({
    name: "mls-keypackages generateKeypackage",
    msPerOp: oursMs as number,
    note: `${n} in one transaction`,
  });
  r.push({
    name: "mls-keypackages generateKeypackages (batch)",
    msPerOp: await ours(suite, n, true),
    note: `${n}, worker_threads`,
  });
  if (suite !== 4 && suite !== 6)
    r.push({
      name: "CoreCrypto 10.3.0",
      msPerOp: ccMs ?? (await coreCrypto(suite, n)),
      note: `${n} in one transaction`,
    });
  r.push({ name: "ts-mls default provider", msPerOp: await tsMlsDefault(suite, Math.min(n, 200)) });
  if (suite === 1)
    r.push({
      name: "primitive floor",
      msPerOp: floorMs as number,
      note: "2 X25519 keygen + 2 Ed25519 sign + SHA-256",
    });
  rows.push(...r);
  const anchors =
    suite === 4 || suite === 6
      ? ["ts-mls default provider"]
      : suite === 1
        ? ["CoreCrypto 10.3.0", "ts-mls default provider", "primitive floor"]
        : ["CoreCrypto 10.3.0", "ts-mls default provider"];
  const t = table(r, anchors).replace("primitive floor |", "primitive floor |");
  sections.push(`### Suite ${suite} (${Ciphersuite[suite]})\n\n${t}\n`);
  console.log(`suite ${suite}\n${t}\n`);
}
const md = `## Key package generation\n\nMeasured ${new Date().toISOString().slice(0, 10)} on ${machine()}. Best round of each; for suite 1, ours (one by one), CoreCrypto and the floor take turns in ${SUITE1_ROUNDS} rounds after a warm-up (so load falls on them alike), the other rows are measured one after another (best of 4). Speed-up = anchor's ms/op ÷ row's ms/op (>1 means faster than the anchor); for "primitive floor", a value of 0.67 means within 1.5× of the floor. CoreCrypto does not support suites 4 and 6.\n\n${sections.join("\n")}`;
writeResult("lifecycle", md);
