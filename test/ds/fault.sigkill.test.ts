/**
 * Fault test (issue #12): a DS process on one SQLite file, SIGKILLed at random (seeded) moments
 * during uploads and claims, several rounds, restarted on the same file each time. Uploads whose
 * answer was lost are sent again (a committed batch is then refused as `init_key_reused`); claims
 * whose answer was lost are retried under their `Idempotency-Key`. After all rounds: every package
 * uploaded was either handed out once (no ref in the answers of two keys) or is still stored.
 * Bounded in time, loopback only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Keypackage } from "../../src/index.js";
import { DeliveryServiceClient } from "../../src/ds/client.js";
import { Device, SUITE1, b64, randomUserId, spawnCli } from "./helpers.js";
import { prng } from "../helpers/prng.js";

const SEED = Number(process.env.MLSKP_FAULT_SEED ?? 12);
const ROUNDS = 5;
const TARGETS = 3;
const BATCHES = 8; // per target
const BATCH = 25;
const CLAIMERS = 4;
const ARGS = [
  "--dev",
  "--claims-per-minute",
  "1000000",
  "--claims-per-target-user",
  "1000000",
  "--uploads-per-minute",
  "100000",
  "--registrations-per-minute",
  "100000",
  "--verify-workers",
  "0",
];

type Outcome =
  | { kind: "ok"; json: Record<string, unknown>; replayed: boolean }
  | { kind: "lost" }
  | { kind: "http"; status: number; json: Record<string, unknown> };

async function send(
  url: string,
  method: string,
  path: string,
  token: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Outcome> {
  try {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { text };
    }
    return res.status >= 200 && res.status < 300
      ? { kind: "ok", json, replayed: res.headers.get("idempotent-replayed") === "true" }
      : { kind: "http", status: res.status, json };
  } catch {
    return { kind: "lost" };
  }
}

describe("DS on SQLite: SIGKILL during uploads and claims", () => {
  const dir = mkdtempSync(join(tmpdir(), "mlskp-fault-"));
  let stop: (() => void) | undefined;
  afterAll(() => {
    stop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${ROUNDS} rounds, seed ${SEED}: every package handed out once or still stored`, async () => {
    const killAt = prng(SEED); // kill moments: the same for a seed, whatever the interleaving
    const rand = prng(SEED + 1); // pauses of the clients
    const file = join(dir, "ds.db");
    let srv = await spawnCli(["--db", file, ...ARGS]);
    stop = () => srv.proc.kill("SIGKILL");

    const userId = randomUserId();
    const targets: { d: Device; token: string; batches: Keypackage[][]; next: number; pending: boolean }[] =
      [];
    for (let i = 0; i < TARGETS; i++) {
      const d = await Device.create({ userId });
      const ds = await d.register(srv.url, null);
      await ds.upload(await d.generate(1, { lastResort: true }));
      const all = await d.generate(BATCHES * BATCH);
      const batches = Array.from({ length: BATCHES }, (_, b) => all.slice(b * BATCH, (b + 1) * BATCH));
      targets.push({ d, token: ds.token!, batches, next: 0, pending: false });
    }
    const claimers = await Promise.all(
      Array.from({ length: CLAIMERS }, async (_, i) => ({
        token: (await (await Device.create()).register(srv.url, null)).token!,
        pending: undefined as string | undefined,
        n: 0,
        i,
      })),
    );

    const uploaded = new Set<string>(); // refs of batches known stored
    const answers = new Map<string, { ref: string; lastResort: boolean }[]>(); // key → final answer
    const figures = {
      seed: SEED,
      rounds: ROUNDS,
      uploadsOk: 0,
      uploadsLost: 0,
      uploadRetriesFoundStored: 0,
      claims: 0,
      claimsLost: 0,
      claimRetriesAnswered: 0,
      claimsReplayed: 0,
      errorsByStatus: {} as Record<string, number>,
      restartMs: [] as number[],
      killedAfterMs: [] as number[],
    };
    const unexpected = (where: string, status: number, json: Record<string, unknown>) => {
      const k = `${status} ${String(json.error)}`;
      figures.errorsByStatus[k] = (figures.errorsByStatus[k] ?? 0) + 1;
      return new Error(`${where}: ${status} ${JSON.stringify(json).slice(0, 300)}`);
    };

    /** One upload step of a target: its pending batch again, else its next one. */
    const uploadStep = async (url: string, t: (typeof targets)[number]): Promise<boolean> => {
      const batch = t.batches[t.next];
      if (batch === undefined) return false;
      const r = await send(
        url,
        "POST",
        `/v1/clients/${encodeURIComponent(t.d.id)}/key-packages`,
        t.token,
        {},
        {
          keyPackages: batch.map((k) => b64(k.serialize())),
        },
      );
      if (r.kind === "lost") {
        t.pending = true;
        figures.uploadsLost++;
        return false;
      }
      if (r.kind === "http") {
        const rejected = (r.json.rejected ?? []) as { rule: string }[];
        // a lost answer whose batch was committed: every init key is known now
        if (
          t.pending &&
          r.status === 422 &&
          rejected.length === batch.length &&
          rejected.every((x) => x.rule === "init_key_reused")
        ) {
          figures.uploadRetriesFoundStored++;
        } else throw unexpected("upload", r.status, r.json);
      } else figures.uploadsOk++;
      for (const k of batch) uploaded.add(k.ref().hex());
      t.pending = false;
      t.next++;
      return true;
    };

    /** One claim step: the pending key again, else a fresh one. */
    const claimStep = async (url: string, c: (typeof claimers)[number]): Promise<boolean> => {
      const key = c.pending ?? `sigkill-${c.i}-${c.n++}`;
      const r = await send(
        url,
        "POST",
        `/v1/users/${userId}/key-packages/claim?ciphersuite=${SUITE1}`,
        c.token,
        {
          "idempotency-key": key,
        },
      );
      if (r.kind === "lost") {
        if (c.pending === undefined) figures.claimsLost++;
        c.pending = key;
        return false;
      }
      if (r.kind === "http") throw unexpected("claim", r.status, r.json);
      if (c.pending !== undefined) figures.claimRetriesAnswered++;
      if (r.replayed) figures.claimsReplayed++; // the lost answer's commit, answered again
      c.pending = undefined;
      figures.claims++;
      const kps = r.json.keyPackages as { ref: string; lastResort: boolean }[];
      answers.set(
        key,
        kps.map((k) => ({ ref: k.ref, lastResort: k.lastResort })),
      );
      return true;
    };

    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) {
        const t = performance.now();
        srv = await spawnCli(["--db", file, ...ARGS]);
        figures.restartMs.push(Math.round(performance.now() - t));
      }
      const url = srv.url;
      let killed = false;
      const killAfter = 200 + Math.floor(killAt() * 1300);
      figures.killedAfterMs.push(killAfter);
      const exited = new Promise<void>((r) => srv.proc.once("exit", () => r()));
      const killer = (async () => {
        await new Promise((r) => setTimeout(r, killAfter));
        killed = true;
        srv.proc.kill("SIGKILL");
        await exited;
      })();
      await Promise.all([
        ...targets.map(async (t) => {
          while (!killed && (await uploadStep(url, t)))
            await new Promise((r) => setTimeout(r, 30 + rand() * 50));
        }),
        ...claimers.map(async (c) => {
          while (!killed && (await claimStep(url, c)))
            await new Promise((r) => setTimeout(r, 10 + rand() * 20));
        }),
      ]);
      await killer;
    }

    // Last start: the clients finish what they left pending (same batches, same keys).
    srv = await spawnCli(["--db", file, ...ARGS]);
    const url = srv.url;
    try {
      for (const t of targets) while (t.pending) expect(await uploadStep(url, t)).toBe(true);
      for (const c of claimers) while (c.pending !== undefined) expect(await claimStep(url, c)).toBe(true);

      const owner = new Map<string, string>();
      let duplicates = 0;
      let foreign = 0;
      let handedOut = 0;
      for (const [key, got] of answers)
        for (const g of got) {
          if (g.lastResort) continue;
          handedOut++;
          if (!uploaded.has(g.ref)) foreign++;
          if (owner.has(g.ref) && owner.get(g.ref) !== key) duplicates++;
          owner.set(g.ref, key);
        }
      let remaining = 0;
      for (const t of targets) {
        const ds = new DeliveryServiceClient({ baseUrl: url, clientId: t.d.id, token: t.token });
        remaining += (await ds.count(SUITE1)).count;
      }
      const result = {
        ...figures,
        uploaded: uploaded.size,
        handedOut,
        remaining,
        duplicates,
        foreign,
        lost: uploaded.size - handedOut - remaining,
      };
      console.log("fault.sigkill:", JSON.stringify(result));
      expect(figures.errorsByStatus).toEqual({});
      expect(duplicates).toBe(0);
      expect(foreign).toBe(0);
      expect(result.lost).toBe(0);
      expect(handedOut).toBeGreaterThan(0);
      expect(uploaded.size).toBeGreaterThan(0);
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
