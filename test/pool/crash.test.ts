/**
 * Crash safety of the pool: a child process runs `sync()` (sometimes `rotateCredential()` first)
 * on an SQLite keystore file against a DS in this process, and is SIGKILLed at random moments
 * (seeded: MLSKP_CRASH_SEED). Between runs, another client claims packages and the shared clock
 * jumps ahead (packages expire, grace periods pass). Afterwards one `sync()` must converge:
 * every ref on the DS has its private keys locally, the counts are at target, nothing stale
 * is served, and no package claimed within the grace period lost its keys.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import {
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  DatabaseKey,
  DeliveryServiceClient,
  registerPersistentKeystore,
} from "../../src/index.js";
import { openSqliteKeystore } from "../../src/keystore/sqlite.js";
import { ROOT, SECRET, randomUserId } from "../ds/helpers.js";
import { prng } from "../helpers/prng.js";
import { CRASH_POOL_OPTIONS } from "./crashOptions.js";
import { DAY, PoolDevice, SUITE1, TestClock, claimAndWelcome, startDs } from "./helpers.js";

const KILLS = 30;
const SEED = Number(process.env.MLSKP_CRASH_SEED ?? 0x9001);
const GRACE = 7 * DAY;

const dir = mkdtempSync(join(tmpdir(), "mlskp-pool-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The child compiled once to plain JavaScript (file by file, same layout, so the library's own
 * dynamic imports still resolve): node starts it in a fraction of tsx's time.
 */
async function compileChild(): Promise<{ file: string; dir: string }> {
  const out = join(ROOT, ".tmp", `pool-crash-${process.pid}`);
  const sources = readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(ROOT, "src", f));
  await build({
    entryPoints: [...sources, join(ROOT, "test/pool/crashChild.ts"), join(ROOT, "test/pool/crashOptions.ts")],
    outdir: out,
    outbase: ROOT,
    bundle: false,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
  });
  return { file: join(out, "test/pool/crashChild.js"), dir: out };
}

interface Child {
  proc: ChildProcess;
  exited: Promise<number | null>;
  out(): string;
  err(): string;
  /** Resolves once the child printed `word` (rejects if it exits first or takes over 60 s). */
  waitFor(word: string): Promise<void>;
}

function startChild(file: string, env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, [file], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const waitFor = (word: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child: no "${word}" in time: ${err}`)), 60_000);
      const check = (): void => {
        if (out.includes(word)) {
          clearTimeout(timer);
          proc.stdout?.off("data", check);
          resolve();
        }
      };
      proc.stdout?.on("data", check);
      check();
      void exited.then((code) => {
        clearTimeout(timer);
        if (!out.includes(word)) reject(new Error(`child exited (${code}) before "${word}": ${err}`));
      });
    });
  return { proc, exited, out: () => out, err: () => err, waitFor };
}

describe("KeypackagePool crash safety", () => {
  it(
    `converges after ${KILLS} SIGKILLs of a syncing process (seed ${SEED})`,
    { timeout: 420_000 },
    async () => {
      registerPersistentKeystore((path, key) => openSqliteKeystore(path, key));
      const rand = prng(SEED);
      let offset = 0;
      const clock = new TestClock();
      clock.now = () => new Date(Date.now() + offset);
      const ds = await startDs(clock);
      const { file: child, dir: childDir } = await compileChild();
      try {
        // The owner: a keystore file with one credential, registered with the DS.
        const path = join(dir, "owner.db");
        const key = DatabaseKey.generate();
        const keyHex = Buffer.from(key.bytes()).toString("hex");
        const clientId = ClientId.parse(`${randomUserId()}:c0ffee@example.com`);
        const token = await (async () => {
          const db = await Database.open(path, key);
          const cc = await CoreCrypto.open(db);
          const c = Credential.basic(SUITE1, clientId);
          await cc.transaction((tx) => tx.addCredential(c));
          await cc.close();
          const client = new DeliveryServiceClient({ baseUrl: ds.url });
          return client.register({
            clientId,
            signatureKeys: { [SUITE1]: c.publicKey },
            enrollmentSecret: SECRET,
          });
        })();
        const claimer = await PoolDevice.create(ds.url, clock);
        const claims: { ref: string; at: number }[] = [];
        let completed = 0;
        let rotations = 0;
        const env = {
          ...process.env,
          MLSKP_CRASH_DS: ds.url,
          MLSKP_CRASH_CLIENT: clientId.toString(),
          MLSKP_CRASH_TOKEN: token,
          MLSKP_CRASH_KEYSTORE: path,
          MLSKP_CRASH_KEY: keyHex,
        };
        // Children are started ahead (two on standby): loading the library dominates their start.
        const standby: Child[] = [];
        const fill = (): void => {
          while (standby.length < 2) standby.push(startChild(child, env));
        };
        fill();
        // Kill moments spread over a whole first sync (measured on the first run, which is not killed early).
        let span = 0;
        try {
          for (let i = 0; i < KILLS; i++) {
            if (i % 6 === 5) offset += Math.floor((5 + rand() * 10) * DAY);
            const n = i === 0 ? 0 : Math.floor(rand() * 12);
            for (let k = 0; k < n; k++) {
              const r = await claimer.ds.claim(clientId.userId(), SUITE1);
              for (const kp of r.keyPackages) claims.push({ ref: kp.ref, at: clock.now().getTime() });
            }
            const mode = i > 0 && rand() < 0.2 ? "rotate" : "sync";
            const c = standby.shift() as Child;
            fill();
            await c.waitFor("loaded");
            c.proc.stdin?.write(`${JSON.stringify({ offset, mode })}\n`);
            await c.waitFor("ready");
            const readyAt = Date.now();
            if (i === 0) {
              await c.waitFor("synced");
              span = Math.max(50, Date.now() - readyAt);
            } else {
              await new Promise((r) => setTimeout(r, Math.floor(rand() * span * 1.3)));
            }
            if (c.proc.exitCode !== null) throw new Error(`child died on its own: ${c.err()}`);
            c.proc.kill("SIGKILL");
            await c.exited;
            if (/synced|rotated/.test(c.out())) completed++;
            if (mode === "rotate") rotations++;
          }
        } finally {
          for (const c of standby) c.proc.kill("SIGKILL");
        }

        // Converge.
        const db = await Database.open(path, key);
        const cc = await CoreCrypto.open(db, { clock: clock.now });
        cc.provideTransport({ sendCommitBundle: async () => "success" });
        try {
          const [first] = await cc.transaction((tx) => tx.findCredentials({ clientId }));
          const ownerDs = new DeliveryServiceClient({ baseUrl: ds.url, clientId, token });
          const pool = cc.keypackagePool({ ds: ownerDs, credential: first!, ...CRASH_POOL_OPTIONS });
          await pool.sync();
          const again = await pool.sync();
          expect(again).toMatchObject({ generated: 0, uploaded: 0, deletedOnDs: 0 });
          const status = await pool.status();
          expect(status.rotationPending).toBe(false);
          expect(status.local).toMatchObject({ new: 0, sending: 0, rotating: 0, untracked: 0 });

          const now = clock.now().getTime();
          const local = new Set((await cc.transaction((tx) => tx.getKeypackageRefs())).map((r) => r.hex()));
          const onDs = await ownerDs.listAllKeypackages(SUITE1);
          for (const k of onDs) {
            expect(local.has(k.ref), `DS ref ${k.ref} has no local keys`).toBe(true);
            expect(k.notAfter * 1000).toBeGreaterThan(now + 14 * DAY);
          }
          // Counts where the policy puts them: between lowWater and target, one last resort…
          const { target, lowWater } = CRASH_POOL_OPTIONS;
          const counted = await ownerDs.count(SUITE1, { validAt: now + 14 * DAY });
          expect(counted.lastResort).toBe(1);
          expect(counted.count).toBeGreaterThanOrEqual(lowWater);
          expect(counted.count).toBeLessThanOrEqual(target);
          expect(counted.count).toBe(onDs.filter((k) => !k.lastResort).length);
          // …and exactly at target after a top-up (a pool whose low-water mark is its target).
          const full = cc.keypackagePool({ ds: ownerDs, credential: first!, target, lowWater: target });
          await full.sync();
          expect(await ownerDs.count(SUITE1)).toEqual({ count: target, lastResort: 1 });
          const localAfter = new Set(
            (await cc.transaction((tx) => tx.getKeypackageRefs())).map((r) => r.hex()),
          );
          for (const k of await ownerDs.listAllKeypackages(SUITE1)) expect(localAfter.has(k.ref)).toBe(true);
          for (const ref of localAfter) local.add(ref);
          // Nothing lost: packages handed out within the grace period still have their keys.
          for (const c of claims)
            if (c.at + GRACE > now) expect(local.has(c.ref), `claimed ${c.ref}`).toBe(true);

          // Nothing stale served: claim everything; every package has its keys, one Welcome joins.
          const w = await claimAndWelcome(claimer, clientId);
          expect(local.has(w.ref)).toBe(true);
          await cc.transaction((tx) => tx.processWelcomeMessage(w.welcome));
          for (;;) {
            const r = await claimer.ds.claim(clientId.userId(), SUITE1);
            const kp = r.keyPackages[0];
            expect(kp).toBeDefined();
            expect(local.has(kp!.ref), `claimed ${kp!.ref} has no local keys`).toBe(true);
            if (kp!.lastResort) break;
          }
          // some runs got through a whole sync or rotation, the others were cut somewhere inside
          expect(completed).toBeGreaterThan(0);
          expect(completed).toBeLessThan(KILLS);
          console.log(
            `pool crash test (seed ${SEED}): ${KILLS} kills, ${completed} after a whole sync or rotation, ` +
              `${rotations} rotations started, ${claims.length} packages claimed between runs`,
          );
        } finally {
          await cc.close();
        }
      } finally {
        await ds.close();
        rmSync(childDir, { recursive: true, force: true });
      }
    },
  );
});
