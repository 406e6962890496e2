/**
 * Issue #13: pool events over Server-Sent Events, on real HTTP (127.0.0.1): several
 * subscribers, filters, limits, dropped connections (no leak), heartbeats, shutdown, and two DS
 * processes sharing PostgreSQL (LISTEN/NOTIFY).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Credential, ROTATION_PROOF_LABEL, type DsPoolEvent } from "../../src/index.js";
import type { DeliveryServiceClient, EventsOptions } from "../../src/ds/client.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { signWithLabel } from "../../src/mls/crypto/labels.js";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import { TestClock } from "../helpers/session.js";
import {
  Device,
  PG_URL,
  SUITE1,
  SUITE2,
  dropSchema,
  http,
  randomUserId,
  spawnCli,
  startServer,
  uniqueSchema,
} from "./helpers.js";

/** A running subscription: the events so far, and how to stop it. */
interface Stream {
  events: DsPoolEvent[];
  opened: Promise<void>;
  /** Resolves when the iteration has ended (with its error, if any). */
  ended: Promise<unknown>;
  stop: () => void;
}

function subscribe(
  ds: DeliveryServiceClient,
  options: Omit<EventsOptions, "signal" | "onOpen"> = {},
): Stream {
  const ac = new AbortController();
  const events: DsPoolEvent[] = [];
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const ended = (async () => {
    try {
      for await (const e of ds.events({ ...options, signal: ac.signal, onOpen: open })) events.push(e);
      return undefined;
    } catch (err) {
      open();
      return err;
    }
  })();
  return { events, opened, ended, stop: () => ac.abort() };
}

const types = (s: Stream) => s.events.map((e) => e.type);

/** `mlskp_ds_event_subscribers` from /metrics. */
async function subscribers(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^mlskp_ds_event_subscribers (\d+)$/m.exec(text);
  if (m === null) throw new Error("no mlskp_ds_event_subscribers gauge");
  return Number(m[1]);
}

const signer = (cred: Credential) => async (content: Uint8Array) =>
  signWithLabel(
    cred.signaturePrivateKey(),
    ROTATION_PROOF_LABEL,
    content,
    (await ciphersuiteImpl(cred.ciphersuite)).signature,
  );

/** Rotate `d`'s suite-1 key with no new packages. */
async function rotate(d: Device, ds: DeliveryServiceClient): Promise<void> {
  const cred = Credential.basic(SUITE1, d.clientId);
  await ds.rotateSignatureKey({
    ciphersuite: SUITE1,
    oldSignatureKey: d.keys.get(SUITE1) as Uint8Array,
    newSignatureKey: cred.publicKey,
    sign: signer(cred),
    keyPackages: [],
  });
  d.keys.set(SUITE1, cred.publicKey);
}

describe("pool events (SSE), one process on SQLite", () => {
  const clock = new TestClock(Date.now());
  let store: SqliteDsStore;
  let url: string;
  let close: () => Promise<void>;
  const streams: Stream[] = [];
  const open = (ds: DeliveryServiceClient, options: Omit<EventsOptions, "signal" | "onOpen"> = {}) => {
    const s = subscribe(ds, options);
    streams.push(s);
    return s;
  };

  beforeAll(async () => {
    store = new SqliteDsStore(":memory:");
    await store.init();
    ({ url, close } = await startServer(store, {
      clock: clock.now,
      ciphersuites: [SUITE1, SUITE2],
      verifyWorkers: 0,
      eventHeartbeatMs: 200,
      limits: { claimsPerTargetUser: 10_000, eventSubscribersPerClient: 3, eventSubscribers: 8 },
    }));
  });
  afterAll(async () => {
    for (const s of streams) s.stop();
    await close();
  });

  it("delivers claimed, low_water, last_resort_claimed and rotated to each subscriber, filtered", async () => {
    const userId = randomUserId();
    const alice = await Device.create({ userId, clock: clock.now });
    const aliceDs = await alice.register(url);
    const bob = await Device.create({ clock: clock.now });
    const bobDs = await bob.register(url);
    const low = open(aliceDs, { lowWater: 3 });
    const plain = open(aliceDs);
    const suite2 = open(aliceDs, { ciphersuite: SUITE2 });
    const bobs = open(bobDs, { lowWater: 100 });
    await Promise.all([low.opened, plain.opened, suite2.opened, bobs.opened]);
    await expect.poll(() => subscribers(url)).toBe(4);

    const regular = await alice.generate(4);
    const [lr] = await alice.generate(1, { lastResort: true });
    await aliceDs.upload([...regular, lr!]);
    const claimed: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await bobDs.claim(userId, SUITE1);
      claimed.push(r.keyPackages[0]!.ref);
    }
    await expect.poll(() => plain.events.length, { timeout: 10_000 }).toBe(6);
    expect(plain.events).toEqual([
      ...[3, 2, 1, 0].map((remaining, i) => ({
        type: "claimed",
        data: { ciphersuite: SUITE1, ref: claimed[i], lastResort: false, remaining },
      })),
      {
        type: "claimed",
        data: { ciphersuite: SUITE1, ref: lr!.ref().hex(), lastResort: true, remaining: 0 },
      },
      { type: "last_resort_claimed", data: { ciphersuite: SUITE1, ref: lr!.ref().hex() } },
    ]);
    await expect.poll(() => low.events.length, { timeout: 10_000 }).toBe(10);
    expect(types(low)).toEqual([
      "claimed",
      "claimed",
      "low_water",
      "claimed",
      "low_water",
      "claimed",
      "low_water",
      "claimed",
      "last_resort_claimed",
      "low_water",
    ]);
    expect(low.events.filter((e) => e.type === "low_water").map((e) => e.data)).toEqual(
      [2, 1, 0, 0].map((count) => ({ ciphersuite: SUITE1, count, lowWater: 3 })),
    );

    await rotate(alice, aliceDs);
    await expect.poll(() => plain.events.length, { timeout: 10_000 }).toBe(7);
    expect(plain.events[6]).toEqual({ type: "rotated", data: { ciphersuite: SUITE1, deleted: 1 } });
    await expect.poll(() => low.events.length, { timeout: 10_000 }).toBe(11);
    // the suite-2 subscriber and the claimer heard nothing of alice's suite 1
    expect(suite2.events).toEqual([]);
    expect(bobs.events).toEqual([]);
    for (const s of [low, plain, suite2, bobs]) s.stop();
    await Promise.all([low.ended, plain.ended, suite2.ended, bobs.ended]);
    await expect.poll(() => subscribers(url), { timeout: 10_000 }).toBe(0);
  });

  it("bounds subscribers per client and in total (429), and frees a slot when a stream drops", async () => {
    const devices = await Promise.all(Array.from({ length: 3 }, () => Device.create({ clock: clock.now })));
    const dss = await Promise.all(devices.map((d) => d.register(url)));
    const [a, b, c] = dss as [DeliveryServiceClient, DeliveryServiceClient, DeliveryServiceClient];
    const mine = [open(a), open(a), open(a)];
    await Promise.all(mine.map((s) => s.opened));
    const over = subscribe(a);
    const err = (await over.ended) as { status?: number; error?: string };
    expect([err.status, err.error]).toEqual([429, "too_many_subscribers"]);
    // total 8: 3 of a, 3 of b, 2 of c, then c's third is over the total
    const theirs = [open(b), open(b), open(b), open(c), open(c)];
    await Promise.all(theirs.map((s) => s.opened));
    await expect.poll(() => subscribers(url)).toBe(8);
    const overTotal = subscribe(c);
    const err2 = (await overTotal.ended) as { status?: number; error?: string };
    expect([err2.status, err2.error]).toEqual([429, "too_many_subscribers"]);
    // a dropped connection frees its slot
    mine[0]!.stop();
    await mine[0]!.ended;
    await expect.poll(() => subscribers(url), { timeout: 10_000 }).toBe(7);
    const again = open(a);
    await again.opened;
    expect(await subscribers(url)).toBe(8);
    for (const s of [...mine, ...theirs, again]) s.stop();
    await expect.poll(() => subscribers(url), { timeout: 10_000 }).toBe(0);
  });

  it("connections dropped by the peer (aborted mid-stream, socket destroyed) leave nothing behind", async () => {
    const d = await Device.create({ clock: clock.now });
    const ds = await d.register(url);
    const path = `/v1/clients/${encodeURIComponent(d.id)}/events?lowWater=5`;
    for (let i = 0; i < 12; i++) {
      const ac = new AbortController();
      const res = await fetch(url + path, {
        headers: { authorization: `Bearer ${ds.token!}` },
        signal: ac.signal,
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      await reader.read(); // ": connected"
      ac.abort();
    }
    await expect.poll(() => subscribers(url), { timeout: 10_000 }).toBe(0);
    // the client still has all its slots
    const three = [open(ds), open(ds), open(ds)];
    await Promise.all(three.map((s) => s.opened));
    const e = (await subscribe(ds).ended) as { status?: number };
    expect(e.status).toBe(429);
    for (const s of three) s.stop();
    await expect.poll(() => subscribers(url), { timeout: 10_000 }).toBe(0);
  });

  it("sends heartbeats, the SSE headers, and no body on errors but ours", async () => {
    const d = await Device.create({ clock: clock.now });
    const ds = await d.register(url);
    const ac = new AbortController();
    const res = await fetch(`${url}/v1/clients/${encodeURIComponent(d.id)}/events`, {
      headers: { authorization: `Bearer ${ds.token!}` },
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes(": ping\n\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.startsWith(": connected\n\n")).toBe(true);
    expect(text).toContain(": ping\n\n");
    ac.abort();

    const other = await Device.create({ clock: clock.now });
    const otherDs = await other.register(url);
    const path = `/v1/clients/${encodeURIComponent(d.id)}/events`;
    expect((await http(url, "GET", path)).status).toBe(401);
    const foreign = await http(url, "GET", path, { token: otherDs.token! });
    expect([foreign.status, foreign.json.error]).toEqual([403, "forbidden"]);
    for (const q of [
      "lowWater=-1",
      "lowWater=1.5",
      "lowWater=100000",
      "lowWater=1001",
      "ciphersuite=0",
      "x=1",
    ]) {
      const r = await http(url, "GET", `${path}?${q}`, { token: ds.token! });
      expect([q, r.status, typeof r.json.error]).toEqual([q, 400, "string"]);
    }
    const unsupported = await http(url, "GET", `${path}?ciphersuite=3`, { token: ds.token! });
    expect(unsupported.json.error).toBe("unsupported_ciphersuite");
    await expect.poll(() => subscribers(url), { timeout: 10_000 }).toBe(0);
  });

  it("close() ends open streams promptly", async () => {
    const s2 = new SqliteDsStore(":memory:");
    await s2.init();
    const server = await startServer(s2, { clock: clock.now, verifyWorkers: 0 });
    const d = await Device.create({ clock: clock.now });
    const ds = await d.register(server.url);
    const a = subscribe(ds);
    const b = subscribe(ds);
    await Promise.all([a.opened, b.opened]);
    const t0 = performance.now();
    await server.close();
    expect(await a.ended).toBeUndefined();
    expect(await b.ended).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});

describe("pool events across two DS processes on one PostgreSQL (LISTEN/NOTIFY)", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it("a subscriber on one process hears claims and rotations made through the other", async () => {
    const schema = uniqueSchema("events");
    cleanups.push(() => dropSchema(schema));
    const [a, b] = await Promise.all(
      [0, 1].map(() =>
        spawnCli(["--db", PG_URL, "--pg-schema", schema, "--dev", "--claims-per-minute", "100000"]),
      ),
    );
    cleanups.push(a!.stop, b!.stop);
    const userId = randomUserId();
    const alice = await Device.create({ userId });
    const aliceOnA = await alice.register(a!.url, null);
    const bob = await Device.create();
    const bobOnB = await bob.register(b!.url, null);
    await aliceOnA.upload([...(await alice.generate(2)), ...(await alice.generate(1, { lastResort: true }))]);

    const s1 = subscribe(aliceOnA, { lowWater: 2 });
    const s2 = subscribe(aliceOnA);
    cleanups.push(async () => {
      s1.stop();
      s2.stop();
    });
    await Promise.all([s1.opened, s2.opened]);
    for (let i = 0; i < 3; i++) await bobOnB.claim(userId, SUITE1);
    await expect
      .poll(() => types(s1), { timeout: 15_000 })
      .toEqual([
        "claimed",
        "low_water",
        "claimed",
        "low_water",
        "claimed",
        "last_resort_claimed",
        "low_water",
      ]);
    await expect
      .poll(() => types(s2), { timeout: 15_000 })
      .toEqual(["claimed", "claimed", "claimed", "last_resort_claimed"]);
    // a rotation through process B (same token: the client may talk to any process)
    const { DeliveryServiceClient } = await import("../../src/ds/client.js");
    const aliceOnB = new DeliveryServiceClient({
      baseUrl: b!.url,
      clientId: alice.id,
      token: aliceOnA.token!,
    });
    await rotate(alice, aliceOnB);
    await expect
      .poll(() => s2.events.at(-1), { timeout: 15_000 })
      .toEqual({
        type: "rotated",
        data: { ciphersuite: SUITE1, deleted: 1 },
      });
    s1.stop();
    s2.stop();
    expect(await s1.ended).toBeUndefined();
    expect(await s2.ended).toBeUndefined();
  }, 240_000);
});
