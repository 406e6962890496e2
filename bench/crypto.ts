/**
 * Key package generation benchmark: ts-mls generateKeyPackage with our
 * node:crypto provider vs ts-mls's default provider vs CoreCrypto 10.3.0
 * (wasm) vs the node:crypto primitive floor, for each RFC 9420 suite.
 *
 *   npx tsx bench/crypto.ts                 # all suites, writes bench/crypto-results.md
 *   npx tsx bench/crypto.ts --suites 1 --quick --no-write
 *
 * Method: each implementation runs batches sized to ~`roundMs`; rounds are
 * interleaved across implementations (so background load hits all of them
 * alike), a full GC runs before every batch (untimed), and the median round
 * is reported.
 */
import {
  createECDH,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign as nodeSign,
  type KeyObject,
} from "node:crypto";
import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  defaultCapabilities,
  defaultCryptoProvider,
  defaultLifetime,
  generateKeyPackage,
  generateKeyPackageWithKey,
  type CiphersuiteImpl,
  type Credential,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { nodeCryptoProvider } from "../src/mls/crypto/node.js";
import { createCoreCryptoClient, type CoreCryptoClient } from "./corecrypto.js";

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const QUICK = flag("--quick");
const WRITE = !flag("--no-write");
const SUITES = (opt("--suites") ?? "1,2,3,4,5,6,7").split(",").map(Number);
const ROUND_MS = Number(opt("--round-ms") ?? (QUICK ? 150 : 300));
const ROUNDS = Number(opt("--rounds") ?? (QUICK ? 3 : 7));
const HEADLINE_ROUNDS = Number(opt("--headline-rounds") ?? (QUICK ? 5 : 15));
const RESULTS = new URL("./crypto-results.md", import.meta.url);

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

// A full GC before every timed batch, so that no implementation pays for the
// garbage another one left behind (interleaved rounds otherwise skew results).
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** Runs `n` operations; resolves when done. */
type Batch = (n: number) => Promise<void>;

interface Subject {
  readonly name: string;
  readonly batch: Batch;
}

interface Result {
  readonly name: string;
  readonly msPerOp: number;
  readonly samples: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Picks a batch size that takes about `ms` (after warming up for about `ms`). */
async function calibrate(batch: Batch, ms: number): Promise<number> {
  let n = 1;
  for (;;) {
    const t = performance.now();
    await batch(n);
    const dt = performance.now() - t;
    if (dt >= ms / 4) return Math.max(1, Math.round((n * ms) / dt));
    n *= 4;
  }
}

async function measure(subjects: readonly Subject[], rounds: number, roundMs: number): Promise<Result[]> {
  const sizes: number[] = [];
  for (const s of subjects) {
    await calibrate(s.batch, roundMs); // warm-up
    sizes.push(await calibrate(s.batch, roundMs));
  }
  const samples: number[][] = subjects.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of subjects.entries()) {
      const n = sizes[i] as number;
      collectGarbage();
      const t = performance.now();
      await s.batch(n);
      samples[i]!.push((performance.now() - t) / n);
    }
  }
  return subjects.map((s, i) => ({ name: s.name, msPerOp: median(samples[i]!), samples: samples[i]! }));
}

// ---------------------------------------------------------------------------
// Subjects
// ---------------------------------------------------------------------------

const credential: Credential = {
  credentialType: "basic",
  identity: new TextEncoder().encode("bench-client@wire.com"),
};
const caps = defaultCapabilities();

function tsMlsSubject(name: string, cs: CiphersuiteImpl): Subject {
  return {
    name,
    async batch(n) {
      for (let i = 0; i < n; i++) await generateKeyPackage(credential, caps, defaultLifetime, [], cs);
    },
  };
}

/** generateKeyPackageWithKey: the client's long-term signature key signs every key package (as CoreCrypto does). */
async function tsMlsWithKeySubject(name: string, cs: CiphersuiteImpl): Promise<Subject> {
  const sig = await cs.signature.keygen();
  return {
    name,
    async batch(n) {
      for (let i = 0; i < n; i++)
        await generateKeyPackageWithKey(credential, caps, defaultLifetime, [], sig, cs);
    },
  };
}

/** The same cryptographic work through our provider's interface, without ts-mls. */
function providerOnlySubject(cs: CiphersuiteImpl, tbsLen: number): Subject {
  const tbs = randomBytes(tbsLen);
  return {
    name: "our provider, primitives only (no ts-mls)",
    async batch(n) {
      for (let i = 0; i < n; i++) {
        const sig = await cs.signature.keygen();
        const init = await cs.hpke.generateKeyPair();
        const leaf = await cs.hpke.generateKeyPair();
        await cs.hpke.exportPrivateKey(init.privateKey);
        await cs.hpke.exportPrivateKey(leaf.privateKey);
        await cs.hpke.exportPublicKey(init.publicKey);
        await cs.hpke.exportPublicKey(leaf.publicKey);
        await cs.signature.sign(sig.signKey, tbs);
        await cs.signature.sign(sig.signKey, tbs);
        await cs.hash.digest(tbs);
      }
    },
  };
}

const NODE_HASH = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" } as const;
const EC_CURVE = { P256: "prime256v1", P384: "secp384r1", P521: "secp521r1" } as const;
const DH_CURVE = {
  "DHKEM-P256-HKDF-SHA256": "prime256v1",
  "DHKEM-P384-HKDF-SHA384": "secp384r1",
  "DHKEM-P521-HKDF-SHA512": "secp521r1",
} as const;

/**
 * The node:crypto primitive floor per key package: two HPKE key generations,
 * two signatures and one hash (for suite 1: two X25519 keygens, two Ed25519
 * signatures, one SHA-256). With `withSigKeygen`, plus the signature key pair
 * generateKeyPackage also creates.
 */
function floorSubject(suite: number, tbsLen: number, withSigKeygen: boolean): Subject {
  const cs = getCiphersuiteFromId(suite as CiphersuiteId);
  const tbs = randomBytes(tbsLen);
  const hash = NODE_HASH[cs.hash];
  const kem = cs.hpke.kem;
  const dhKeygen: () => void =
    kem === "DHKEM-X25519-HKDF-SHA256"
      ? () => void generateKeyPairSync("x25519")
      : kem === "DHKEM-X448-HKDF-SHA512"
        ? () => void generateKeyPairSync("x448")
        : () => void createECDH(DH_CURVE[kem as keyof typeof DH_CURVE]).generateKeys();
  let signKey: KeyObject;
  let signDigest: string | null;
  let sigKeygen: () => void;
  if (cs.signature === "Ed25519" || cs.signature === "Ed448") {
    const type = cs.signature === "Ed25519" ? "ed25519" : "ed448";
    signKey = generateKeyPairSync(type as "ed25519").privateKey;
    signDigest = null;
    sigKeygen = () => void generateKeyPairSync(type as "ed25519");
  } else {
    const curve = EC_CURVE[cs.signature as keyof typeof EC_CURVE];
    const e = createECDH(curve);
    e.generateKeys();
    const pub = e.getPublicKey();
    const n = (pub.length - 1) / 2;
    const b64 = (b: Buffer): string => b.toString("base64url");
    const d = Buffer.concat([Buffer.alloc(n - e.getPrivateKey().length), e.getPrivateKey()]);
    const crv = cs.signature === "P256" ? "P-256" : cs.signature === "P384" ? "P-384" : "P-521";
    signKey = createPrivateKey({
      key: { kty: "EC", crv, d: b64(d), x: b64(pub.subarray(1, 1 + n)), y: b64(pub.subarray(1 + n)) },
      format: "jwk",
    });
    signDigest = cs.signature === "P256" ? "sha256" : cs.signature === "P384" ? "sha384" : "sha512";
    sigKeygen = () => void createECDH(curve).generateKeys();
  }
  return {
    name: withSigKeygen ? "node:crypto floor + signature keygen" : "node:crypto primitive floor",
    async batch(n) {
      for (let i = 0; i < n; i++) {
        if (withSigKeygen) sigKeygen();
        dhKeygen();
        dhKeygen();
        nodeSign(signDigest, tbs, signKey);
        nodeSign(signDigest, tbs, signKey);
        createHash(hash).update(tbs).digest();
      }
    },
  };
}

function coreCryptoSubject(cc: CoreCryptoClient, suite: number): Subject {
  return {
    name: "CoreCrypto 10.3.0 (wasm)",
    async batch(n) {
      await cc.generateKeyPackages(suite, n);
    },
  };
}

/** Single-primitive comparisons (suite 1 unless --suites says otherwise). */
async function primitiveSubjects(
  ours: CiphersuiteImpl,
  def: CiphersuiteImpl,
): Promise<Array<[string, Subject, Subject]>> {
  const msg = randomBytes(300);
  const info = randomBytes(40);
  const mk = async (cs: CiphersuiteImpl) => {
    const sig = await cs.signature.keygen();
    const signature = await cs.signature.sign(sig.signKey, msg);
    const kp = await cs.hpke.generateKeyPair();
    const sealed = await cs.hpke.seal(kp.publicKey, msg, info);
    return { sig, signature, kp, sealed };
  };
  const [o, d] = [await mk(ours), await mk(def)];
  const pair = (
    label: string,
    f: (cs: CiphersuiteImpl, st: Awaited<ReturnType<typeof mk>>) => Promise<unknown>,
  ): [string, Subject, Subject] => [
    label,
    {
      name: OURS,
      batch: async (n) => {
        for (let i = 0; i < n; i++) await f(ours, o);
      },
    },
    {
      name: DEFAULT,
      batch: async (n) => {
        for (let i = 0; i < n; i++) await f(def, d);
      },
    },
  ];
  return [
    pair("signature keygen", (cs) => cs.signature.keygen()),
    pair("sign (300 B)", (cs, st) => cs.signature.sign(st.sig.signKey, msg)),
    pair("verify (300 B)", (cs, st) => cs.signature.verify(st.sig.publicKey, msg, st.signature)),
    pair("HPKE generateKeyPair + export", async (cs) => {
      const kp = await cs.hpke.generateKeyPair();
      await cs.hpke.exportPrivateKey(kp.privateKey);
      await cs.hpke.exportPublicKey(kp.publicKey);
    }),
    pair("HPKE seal (300 B)", (cs, st) => cs.hpke.seal(st.kp.publicKey, msg, info)),
    pair("HPKE open (300 B)", (cs, st) => cs.hpke.open(st.kp.privateKey, st.sealed.enc, st.sealed.ct, info)),
    pair("HPKE deriveKeyPair (fresh ikm)", (cs) => cs.hpke.deriveKeyPair(randomBytes(32))),
    // (salt of hash length: ts-mls's default Kdf rejects other salt sizes)
    pair("HKDF extract + expand (32 B)", async (cs) =>
      cs.kdf.expand(await cs.kdf.extract(info.subarray(0, cs.kdf.size), msg), info, 32),
    ),
  ];
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const OURS = "ts-mls + our node provider";
const OURS_WK = "ts-mls WithKey + our node provider";
const DEFAULT = "ts-mls + ts-mls default provider";
const DEFAULT_WK = "ts-mls WithKey + ts-mls default provider";
const CC = "CoreCrypto 10.3.0 (wasm)";
const FLOOR = "node:crypto primitive floor";

function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits);
}

function table(results: readonly Result[]): string {
  const by = (name: string): number | undefined => results.find((r) => r.name === name)?.msPerOp;
  const cc = by(CC);
  const floor = by(FLOOR);
  const lines = [
    "| implementation | ops/s | ms/op | x floor | speed-up vs CoreCrypto | speed-up vs ts-mls default (same variant) |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const def = by(r.name.includes("WithKey") ? DEFAULT_WK : DEFAULT);
    lines.push(
      `| ${r.name} | ${fmt(1000 / r.msPerOp, 0)} | ${fmt(r.msPerOp, 3)} | ${fmt(floor && r.msPerOp / floor)} | ${fmt(cc && cc / r.msPerOp)} | ${fmt(def && def / r.msPerOp)} |`,
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  const load0 = loadavg();
  const cpu = cpus()[0]?.model ?? "unknown";
  const nproc = cpus().length;
  console.log(
    `crypto bench: node ${process.version}, ${nproc} x ${cpu}, load ${load0.map((x) => x.toFixed(2)).join(" ")}`,
  );

  const cc = await createCoreCryptoClient(SUITES);
  for (const [s, why] of cc.unsupported) console.log(`CoreCrypto: suite ${s} unsupported (${why})`);
  // Warm the wasm module up before any timing.
  await cc.generateKeyPackagesFor(cc.suites[0] ?? 1, QUICK ? 500 : 2000);

  const perSuite = new Map<number, Result[]>();
  for (const suite of SUITES) {
    const cs = getCiphersuiteFromId(suite as CiphersuiteId);
    const ours = await nodeCryptoProvider.getCiphersuiteImpl(cs);
    const def = await defaultCryptoProvider.getCiphersuiteImpl(cs);
    const sample = await generateKeyPackage(credential, caps, defaultLifetime, [], ours);
    // Signed content size of a typical key package (KeyPackageTBS ~ leaf node + header).
    const tbsLen =
      64 + sample.publicPackage.initKey.length + 2 * sample.publicPackage.leafNode.hpkePublicKey.length + 120;
    const subjects: Subject[] = [
      tsMlsSubject(OURS, ours),
      await tsMlsWithKeySubject(OURS_WK, ours),
      providerOnlySubject(ours, tbsLen),
      tsMlsSubject(DEFAULT, def),
      await tsMlsWithKeySubject(DEFAULT_WK, def),
      floorSubject(suite, tbsLen, false),
      floorSubject(suite, tbsLen, true),
    ];
    if (cc.suites.includes(suite)) subjects.splice(5, 0, coreCryptoSubject(cc, suite));
    const rounds = suite === 1 ? HEADLINE_ROUNDS : ROUNDS;
    const results = await measure(subjects, rounds, ROUND_MS);
    perSuite.set(suite, results);
    console.log(`\nSuite ${suite} ${cs.name} (median of ${rounds} rounds of ~${ROUND_MS} ms)`);
    console.log(table(results));
  }

  const primSuite = SUITES[0] ?? 1;
  const primCs = getCiphersuiteFromId(primSuite as CiphersuiteId);
  const prim = await primitiveSubjects(
    await nodeCryptoProvider.getCiphersuiteImpl(primCs),
    await defaultCryptoProvider.getCiphersuiteImpl(primCs),
  );
  const primLines = [
    `| operation (suite ${primSuite}) | ours us/op | ts-mls default us/op | speed-up |`,
    "|---|---:|---:|---:|",
  ];
  for (const [label, a, b] of prim) {
    const [ra, rb] = await measure([a, b], QUICK ? 3 : 5, QUICK ? 100 : 200);
    primLines.push(
      `| ${label} | ${fmt(ra!.msPerOp * 1000, 1)} | ${fmt(rb!.msPerOp * 1000, 1)} | ${fmt(rb!.msPerOp / ra!.msPerOp, 1)} |`,
    );
  }
  console.log("\nPrimitives");
  console.log(primLines.join("\n"));

  const load1 = loadavg();
  const s1 = perSuite.get(1);
  const get = (rs: readonly Result[] | undefined, n: string): number | undefined =>
    rs?.find((r) => r.name === n)?.msPerOp;
  const summary: string[] = [
    "| suite | ours ms/kp (new sig key) | ours ms/kp (WithKey) | ts-mls default ms/kp (new sig key) | CoreCrypto ms/kp | floor ms/kp | ours x floor (new / WithKey) | ours speed-up vs CoreCrypto (new / WithKey) | ours speed-up vs default (new sig key) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [suite, rs] of perSuite) {
    const o = get(rs, OURS);
    const w = get(rs, OURS_WK);
    const d = get(rs, DEFAULT);
    const c = get(rs, CC);
    const f = get(rs, FLOOR);
    summary.push(
      `| ${suite} | ${fmt(o, 3)} | ${fmt(w, 3)} | ${fmt(d, 3)} | ${c === undefined ? (cc.unsupported.has(suite) ? "unsupported" : "n/a") : fmt(c, 3)} | ${fmt(f, 3)} | ${fmt(o && f && o / f)} / ${fmt(w && f && w / f)} | ${fmt(o && c && c / o)} / ${fmt(w && c && c / w)} | ${fmt(o && d && d / o)} |`,
    );
  }
  console.log("\nAll suites");
  console.log(summary.join("\n"));

  if (!WRITE) return;
  const md = [
    "## Crypto provider: key package generation",
    "",
    `Machine: ${nproc} cores (\`nproc\`), ${cpu}; Node ${process.version}; ${started.toISOString().slice(0, 10)}.`,
    `Load average during the run: ${load0.map((x) => x.toFixed(2)).join("/")} at start, ${load1.map((x) => x.toFixed(2)).join("/")} at end`,
    "(other work shared the machine; rounds are interleaved across implementations, a full GC runs before each timed batch, medians reported).",
    `Command: \`npx tsx bench/crypto.ts${argv.length ? ` ${argv.join(" ")}` : ""}\`. Each figure is the median of ${ROUNDS} rounds (${HEADLINE_ROUNDS} for suite 1) of ~${ROUND_MS} ms.`,
    "",
    "What is measured, per key package:",
    "- *ts-mls + our node provider*: `generateKeyPackage` (a new signature key pair, 2 HPKE keygens, 2 signatures, TLS encoding) with `nodeCryptoProvider` (src/mls/crypto/node.ts).",
    "- *ts-mls WithKey + ...*: `generateKeyPackageWithKey` with the client's existing signature key (2 HPKE keygens, 2 signatures, encoding): the same work CoreCrypto's `generateKeyPackage(credentialRef)` does, and exactly the floor's primitives.",
    "- *our provider, primitives only*: the same provider calls without ts-mls (shows ts-mls's own overhead).",
    "- *ts-mls default provider*: ts-mls 1.6.4's `defaultCryptoProvider` (WebCrypto + @hpke + @noble), same two variants.",
    "- *CoreCrypto 10.3.0 (wasm)*: `generateKeyPackage` in a transaction, in-memory database, wasm build run under Node.",
    "- *node:crypto primitive floor*: 2 HPKE keygens + 2 signatures + 1 hash straight on node:crypto (suite 1: 2 X25519 keygens, 2 Ed25519 signatures, 1 SHA-256); *+ signature keygen* adds the signature key pair that generateKeyPackage also creates.",
    "",
    "### Suite 1 (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)",
    "",
    s1 ? table(s1) : "(suite 1 not run)",
    "",
    "### All suites",
    "",
    summary.join("\n"),
    "",
    ...[...cc.unsupported].map(([s, why]) => `CoreCrypto 10.3.0 (wasm) does not support suite ${s}: ${why}.`),
    "",
    "Notes:",
    "- Plain `generateKeyPackage` does more than the floor: it also creates a signature key pair (one more scalar multiplication, see the *+ signature keygen* row), and ts-mls itself spends ~20-25 us per key package on TLS encoding and awaits (measured with a no-op provider). `generateKeyPackageWithKey` does the floor's work plus that ts-mls overhead, like CoreCrypto, which signs with the credential's existing key.",
    "- P-384/P-521 are dominated by OpenSSL 3.0's generic (unoptimised) P-384/P-521 scalar multiplications in Node 20; @noble/curves is faster for fixed-base operations there, but this provider stays on node:crypto (constant-time native code).",
    "- CoreCrypto's figure is for its wasm build under Node; its native build would be faster.",
    "",
    "### Single primitives, our provider vs ts-mls default",
    "",
    primLines.join("\n"),
    "",
  ].join("\n");
  await writeFile(RESULTS, md);
  console.log(`\nwrote ${RESULTS.pathname}`);
}

await main();
