/**
 * Strict input, our error bodies everywhere, bounded work (cheap checks and de-duplication
 * before signatures, verification off the event loop, limits in packages and bytes, failed
 * authentication per address) and CORS at the HTTP level. Real HTTP on 127.0.0.1.
 */
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keypackage, type Credential } from "../../src/index.js";
import { PostgresDsStore } from "../../src/ds/postgresStore.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { CLIENT_ID_PATTERN, MAX_CLIENT_ID_LENGTH } from "../../src/ds/schemas.js";
import {
  InProcessVerifier,
  VerifierUnavailableError,
  WorkerVerifier,
  type PackageVerifier,
  type VerifyResult,
} from "../../src/ds/verifyPool.js";
import {
  Device,
  PG_URL,
  SECRET,
  SUITE1,
  b64,
  dropSchema,
  flipLast,
  http,
  randomUserId,
  startServer,
  tamper,
  uniqueSchema,
} from "./helpers.js";

/** Every error answer: exactly `{ error, message }` (+ `rejected` for 422), strings. */
function expectOurError(
  r: { status: number; json: Record<string, unknown> },
  status: number,
  error?: string,
): void {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(typeof r.json.error).toBe("string");
  expect(typeof r.json.message).toBe("string");
  const keys = Object.keys(r.json).sort();
  expect(keys).toEqual(status === 422 ? ["error", "message", "rejected"] : ["error", "message"]);
  if (error !== undefined) expect(r.json.error).toBe(error);
}

/** Raw bytes on a socket (what fetch will not send); resolves with the whole answer. */
function rawHttp(url: string, request: string | Buffer): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), "127.0.0.1", () => s.write(request));
    let out = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      out += d;
      if (/\r\n\r\n/.test(out) && /content-length: (\d+)/i.test(out)) {
        const len = Number(/content-length: (\d+)/i.exec(out)?.[1]);
        if (Buffer.byteLength(out.split("\r\n\r\n").slice(1).join("\r\n\r\n")) >= len) s.end();
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(out));
  });
}

const bodyOf = (raw: string): Record<string, unknown> =>
  JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;
const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d+)/.exec(raw)?.[1]);

/** A verifier that records what reaches it, and can be held back. */
class RecordingVerifier implements PackageVerifier {
  readonly seen: Uint8Array[] = [];
  gate: Promise<void> = Promise.resolve();
  readonly #inner = new InProcessVerifier();
  #pending = 0;
  get pending(): number {
    return this.#pending;
  }
  async verify(packages: readonly Uint8Array[], nowMs: number): Promise<VerifyResult[]> {
    this.#pending += packages.length;
    try {
      this.seen.push(...packages);
      await this.gate;
      return await this.#inner.verify(packages, nowMs);
    } finally {
      this.#pending -= packages.length;
    }
  }
  warm(): void {}
  async close(): Promise<void> {}
}

describe("strict input and our error bodies", () => {
  let store: SqliteDsStore;
  let url: string;
  let close: () => Promise<void>;
  let alice: Device;
  let token: string;
  let path: string;
  const verifier = new RecordingVerifier();

  beforeAll(async () => {
    store = new SqliteDsStore(":memory:");
    await store.init();
    ({ url, close } = await startServer(store, {
      ciphersuites: [SUITE1],
      verifier,
      limits: { authFailuresPerWindow: 10_000, registrationsPerWindow: 10_000 },
    }));
    alice = await Device.create();
    token = (await alice.register(url)).token as string;
    path = `/v1/clients/${encodeURIComponent(alice.id)}/key-packages`;
  });
  afterAll(async () => {
    await close();
  });

  const register = (body: Record<string, unknown>) =>
    http(url, "POST", "/v1/clients", { body, headers: { "x-enrollment-secret": SECRET } });

  it("refuses unknown properties with 400 instead of stripping them; nothing is stored", async () => {
    const d = await Device.create();
    const reg = { userId: d.userId, clientId: d.id, signatureKeys: { "1": b64(d.keys.get(SUITE1)!) } };
    expectOurError(await register({ ...reg, admin: true }), 400, "bad_request");
    expect(await store.getClient(d.id)).toBeUndefined();
    const [kp] = await alice.generate(1);
    expectOurError(
      await http(url, "POST", path, { token, body: { keyPackages: [b64(kp!.serialize())], replace: true } }),
      400,
      "bad_request",
    );
    expectOurError(
      await http(url, "DELETE", path, { token, body: { refs: [], all: true } }),
      400,
      "bad_request",
    );
    expectOurError(
      await http(url, "GET", `${path}/count?ciphersuite=1&verbose=1`, { token }),
      400,
      "bad_request",
    );
    expectOurError(await http(url, "GET", `/healthz?x=1`), 400, "bad_request");
    expect(await store.poolSizes(0)).toEqual([]);
    // a route without a body refuses one
    expectOurError(
      await http(url, "POST", `/v1/users/${alice.userId}/key-packages/claim?ciphersuite=1`, {
        token,
        body: {},
      }),
      400,
      "bad_request",
    );
  });

  it("client ids: one grammar and one length (307) in the schema and the router", async () => {
    const u = randomUserId();
    const label = "a".repeat(63);
    const longestDomain = [label, label, label, "b".repeat(61)].join(".");
    expect(longestDomain).toHaveLength(253);
    const longest = `${u}:${"f".repeat(16)}@${longestDomain}`;
    expect(longest).toHaveLength(MAX_CLIENT_ID_LENGTH);
    expect(new RegExp(CLIENT_ID_PATTERN).test(longest)).toBe(true);

    const bad = [
      `${u}:1@exa\u0000mple.com`, // NUL
      `${u}:1@exa\u0007mple.com`, // control character
      `${u}:1@example.com\n`,
      `${u}:1@exa mple.com`,
      `${u}:1@Example.com`, // uppercase
      `${u}:1@exämple.com`, // non-ASCII
      `${u}:1@-example.com`,
      `${u}:1@example..com`,
      `${u}:1@${"a".repeat(64)}.com`, // label over 63
      `${u}:${"f".repeat(17)}@example.com`, // device id over 16
      `${u}:1A@example.com`,
      `${u}:@example.com`,
      `${u.toUpperCase()}:1@example.com`,
      `${u}:1@`,
      `${longest}a`, // 308 characters
      `${u}:1@${[label, label, label, "b".repeat(62)].join(".")}`, // domain of 254
      "",
    ];
    for (const clientId of bad) {
      const r = await register({ userId: u, clientId, signatureKeys: { "1": b64(new Uint8Array(32)) } });
      expect(r.status, JSON.stringify(clientId)).toBe(400);
      expectOurError(r, 400);
      expect(["invalid_client_id", "bad_request"]).toContain(r.json.error);
    }
    // The longest valid id registers, and every route of it works (the router's limit is 307 too).
    const d = await Device.create({ userId: u, device: "f".repeat(16) });
    const cred = { "1": b64(d.keys.get(SUITE1)!) };
    const r = await register({ userId: u, clientId: longest, signatureKeys: cred });
    expect(r.status).toBe(201);
    const t = r.json.token as string;
    const p = `/v1/clients/${encodeURIComponent(longest)}/key-packages`;
    expect((await http(url, "GET", `${p}/count?ciphersuite=1`, { token: t })).status).toBe(200);
    expect((await http(url, "DELETE", p, { token: t, body: { refs: [] } })).status).toBe(200);
    // One character more in the path: 414, our body.
    expectOurError(
      await http(
        url,
        "GET",
        `/v1/clients/${encodeURIComponent(`${longest}a`)}/key-packages/count?ciphersuite=1`,
        {
          token: t,
        },
      ),
      414,
      "uri_too_long",
    );
    // A bad id in the path of an authenticated owner is refused before any store work (403: not the caller).
    expectOurError(
      await http(
        url,
        "GET",
        `/v1/clients/${encodeURIComponent(`${u}:1@exa\u0000mple.com`)}/key-packages/count?ciphersuite=1`,
        {
          token: t,
        },
      ),
      403,
      "forbidden",
    );
  });

  it("refs: even-length lowercase hex of the accepted suites' hash length", async () => {
    // This server accepts suite 1 only (SHA-256): refs are 64 hex characters.
    for (const ref of [
      "abc",
      "ab".repeat(31) + "a",
      "AB".repeat(32),
      "zz".repeat(32),
      "ab".repeat(48),
      "ab".repeat(64),
      "",
      "ab".repeat(33),
    ]) {
      const r = await http(url, "DELETE", path, { token, body: { refs: [ref] } });
      expectOurError(r, 400, "bad_request");
    }
    expect((await http(url, "DELETE", path, { token, body: { refs: ["ab".repeat(32)] } })).json).toEqual({
      deleted: 0,
    });
  });

  it("every error body is ours: 404, 405-as-404, 413, 414, 415, bad JSON, bad URL, 431, malformed HTTP", async () => {
    expectOurError(await http(url, "GET", "/nope"), 404, "not_found");
    expectOurError(await http(url, "PATCH", path, { token }), 404, "not_found");
    expectOurError(await http(url, "POST", path, { token, rawBody: "{" }), 400, "bad_request");
    expectOurError(await http(url, "POST", path, { token, rawBody: "" }), 400, "bad_request");
    expectOurError(
      await http(url, "POST", path, { token, rawBody: '{"__proto__":{"x":1},"keyPackages":["AA=="]}' }),
      400,
    );
    expectOurError(
      await http(url, "POST", path, { token, body: { keyPackages: ["A".repeat(5 * 1024 * 1024)] } }),
      413,
      "body_too_large",
    );
    for (const type of [
      "text/plain",
      "application/xml",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const res = await fetch(url + path, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": type },
        body: "x",
      });
      const json = (await res.json()) as Record<string, unknown>;
      expectOurError({ status: res.status, json }, 415, "unsupported_media_type");
    }
    expectOurError(
      await http(url, "GET", "/v1/clients/%E0%A4%A/key-packages/count?ciphersuite=1", { token }),
      400,
      "bad_request",
    );
    expectOurError(
      await http(url, "GET", `/v1/clients/${"a".repeat(400)}/key-packages/count?ciphersuite=1`, { token }),
      414,
      "uri_too_long",
    );
    const big = await rawHttp(
      url,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    expect(statusOf(big)).toBe(431);
    expect(bodyOf(big)).toEqual({ error: "headers_too_large", message: expect.any(String) });
    const garbage = await rawHttp(url, "NOT HTTP AT ALL\r\n\r\n");
    expect(statusOf(garbage)).toBe(400);
    expect(bodyOf(garbage)).toEqual({ error: "bad_request", message: expect.any(String) });
    expect((await http(url, "GET", "/healthz")).status).toBe(200);
  });

  it("an empty Basic identity, or any unexpected validation failure, is 422 with a rule, never 500", async () => {
    const cred = alice.credentials.get(SUITE1) as Credential;
    const bytes = (await alice.generate(1))[0]!.serialize();
    const empty = await tamper(
      bytes,
      cred,
      (kp) => ({
        ...kp,
        leafNode: { ...kp.leafNode, credential: { credentialType: "basic", identity: new Uint8Array(0) } },
      }),
      { resignLeaf: true },
    );
    const r = await http(url, "POST", path, { token, body: { keyPackages: [b64(empty)] } });
    expectOurError(r, 422, "invalid_key_packages");
    const rejected = r.json.rejected as { index: number; rule: string }[];
    expect(rejected).toHaveLength(1);
    expect(["credential_rejected", "client_id_mismatch", "decode"]).toContain(rejected[0]?.rule);
    expect(await store.poolSizes(0)).toEqual([]);
  });

  it("cheap checks and de-duplication run before any signature: only survivors reach the verifier", async () => {
    const kps = await alice.generate(3);
    const other = await Device.create({ userId: alice.userId });
    const foreign = (await other.generate(1))[0]!.serialize();
    const stored = (await alice.generate(1))[0]!;
    expect(
      (await http(url, "POST", path, { token, body: { keyPackages: [b64(stored.serialize())] } })).status,
    ).toBe(201);
    verifier.seen.length = 0;
    const bad = flipLast(kps[2]!.serialize());
    const r = await http(url, "POST", path, {
      token,
      body: {
        keyPackages: [
          b64(kps[0]!.serialize()),
          b64(kps[0]!.serialize()), // repeated in the request
          b64(stored.serialize()), // replay of a stored one
          b64(foreign), // another client's identity
          "@@", // not base64
          b64(kps[1]!.serialize()),
          b64(bad), // passes the cheap checks, fails its signature
        ],
      },
    });
    expectOurError(r, 422, "invalid_key_packages");
    expect((r.json.rejected as { index: number; rule: string }[]).map((x) => [x.index, x.rule])).toEqual([
      [1, "init_key_reused"],
      [2, "init_key_reused"],
      [3, "client_id_mismatch"],
      [4, "base64"],
      [6, "keypackage_signature"],
    ]);
    // Only 0, 5 and 6 were verified.
    expect(verifier.seen.map((b) => b64(b))).toEqual(
      [kps[0]!, kps[1]!].map((k) => b64(k.serialize())).concat(b64(bad)),
    );
  });
});

describe("on PostgreSQL", () => {
  it("NUL and control characters never reach the database: 400/403/414, never 500", async () => {
    const schema = uniqueSchema("strict");
    const s = new PostgresDsStore(PG_URL, { schema, poolSize: 2 });
    await s.init();
    const srv = await startServer(s);
    try {
      const d = await Device.create();
      const token = (await d.register(srv.url)).token as string;
      const key = b64(d.keys.get(SUITE1)!);
      const u = randomUserId();
      for (const clientId of [
        `${u}:1@exa\u0000mple.com`,
        `${u}:1@exa\u0001mple.com`,
        `${u}\u0000:1@example.com`,
      ]) {
        const r = await http(srv.url, "POST", "/v1/clients", {
          body: { userId: u, clientId, signatureKeys: { "1": key } },
          headers: { "x-enrollment-secret": SECRET },
        });
        expectOurError(r, 400, "invalid_client_id");
      }
      expectOurError(
        await http(srv.url, "POST", "/v1/clients", {
          body: { userId: `${u}\u0000`, clientId: `${u}:1@example.com`, signatureKeys: { "1": key } },
          headers: { "x-enrollment-secret": SECRET },
        }),
        400,
        "bad_request",
      );
      expectOurError(
        await http(srv.url, "POST", `/v1/users/${u}%00/key-packages/claim?ciphersuite=1`, { token }),
        400,
        "bad_request",
      );
      expectOurError(
        await http(
          srv.url,
          "GET",
          `/v1/clients/${encodeURIComponent(`${u}:1@a\u0000b`)}/key-packages/count?ciphersuite=1`,
          { token },
        ),
        403,
        "forbidden",
      );
      expectOurError(
        await http(srv.url, "GET", `/v1/clients/${"%00".repeat(120)}/key-packages/count?ciphersuite=1`, {
          token,
        }),
        403,
        "forbidden",
      );
      expectOurError(
        await http(srv.url, "POST", `/v1/clients/${"a".repeat(308)}/key-packages`, {
          token,
          body: { keyPackages: [] },
        }),
        414,
        "uri_too_long",
      );
      expect((await http(srv.url, "GET", "/healthz")).status).toBe(200);
    } finally {
      await srv.close();
      await dropSchema(schema);
    }
  });
});

describe("bounded work", () => {
  it("uploads are counted in packages and in bytes per client, before any work", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const verifier = new RecordingVerifier();
    const srv = await startServer(s, {
      verifier,
      limits: { uploadPackagesPerWindow: 5, uploadBytesPerWindow: 200_000 },
    });
    try {
      const d = await Device.create();
      const ds = await d.register(srv.url);
      await ds.upload(await d.generate(3));
      const p = `/v1/clients/${encodeURIComponent(d.id)}/key-packages`;
      const body = { keyPackages: (await d.generate(3)).map((k) => b64(k.serialize())) };
      const seenBefore = verifier.seen.length;
      const r = await http(srv.url, "POST", p, { token: ds.token as string, body });
      expectOurError(r, 429, "rate_limited");
      expect(verifier.seen.length).toBe(seenBefore);
      // another client has its own budget
      const e = await Device.create();
      const es = await e.register(srv.url);
      await es.upload(await e.generate(5));
      // bytes: a body of ~190 kB (rejected by validation, but counted), then the next one is over
      const f = await Device.create();
      const fs = await f.register(srv.url);
      const fp = `/v1/clients/${encodeURIComponent(f.id)}/key-packages`;
      const fat = { keyPackages: ["A".repeat(190_000)] };
      expect((await http(srv.url, "POST", fp, { token: fs.token as string, body: fat })).status).toBe(422);
      const res = await fetch(srv.url + fp, {
        method: "POST",
        headers: { authorization: `Bearer ${fs.token}`, "content-type": "application/json" },
        body: JSON.stringify({ keyPackages: ["AAAA".repeat(5000)] }),
      });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expectOurError(
        { status: res.status, json: (await res.json()) as Record<string, unknown> },
        429,
        "rate_limited",
      );
    } finally {
      await srv.close();
    }
  });

  it("too many packages waiting for verification: 503 overloaded with retry-after, nothing stored", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const verifier = new RecordingVerifier();
    let open!: () => void;
    verifier.gate = new Promise((r) => (open = r));
    const srv = await startServer(s, { verifier, limits: { maxQueuedVerifications: 4 } });
    try {
      const [a, b] = [await Device.create(), await Device.create()];
      const [as, bs] = [await a.register(srv.url), await b.register(srv.url)];
      const first = as.upload(await a.generate(3));
      while (verifier.pending === 0) await new Promise((r) => setTimeout(r, 5));
      const p = `/v1/clients/${encodeURIComponent(b.id)}/key-packages`;
      const body = { keyPackages: (await b.generate(2)).map((k) => b64(k.serialize())) };
      const res = await fetch(srv.url + p, {
        method: "POST",
        headers: { authorization: `Bearer ${bs.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expectOurError({ status: 503, json: (await res.json()) as Record<string, unknown> }, 503, "overloaded");
      open();
      expect((await first).refs).toHaveLength(3);
      expect(await bs.count(SUITE1)).toEqual({ count: 0, lastResort: 0 });
      expect((await bs.upload(await b.generate(2))).refs).toHaveLength(2);
    } finally {
      await srv.close();
    }
  });

  it("a verification pool that fails is 503 verification_unavailable, never 500, nothing stored", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const broken: PackageVerifier = {
      pending: 0,
      verify: async () => {
        throw new VerifierUnavailableError("a verification worker exited (1)");
      },
      warm: () => undefined,
      close: async () => undefined,
    };
    const srv = await startServer(s, { verifier: broken });
    try {
      const d = await Device.create();
      const ds = await d.register(srv.url);
      const p = `/v1/clients/${encodeURIComponent(d.id)}/key-packages`;
      const r = await http(srv.url, "POST", p, {
        token: ds.token as string,
        body: { keyPackages: (await d.generate(2)).map((k) => b64(k.serialize())) },
      });
      expectOurError(r, 503, "verification_unavailable");
      expect(await s.poolSizes(0)).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it("failed authentication is limited per address, before any token lookup", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    let lookups = 0;
    const lookup = s.clientByTokenHash.bind(s);
    s.clientByTokenHash = async (h: Uint8Array) => {
      lookups++;
      return lookup(h);
    };
    const srv = await startServer(s, { trustProxy: true, limits: { authFailuresPerWindow: 5 } });
    try {
      const d = await Device.create();
      const ds = await d.register(srv.url);
      const p = `/v1/clients/${encodeURIComponent(d.id)}/key-packages/count?ciphersuite=1`;
      const from = (ip: string, t?: string) =>
        http(srv.url, "GET", p, {
          ...(t !== undefined ? { token: t } : {}),
          headers: { "x-forwarded-for": ip },
        });
      expect((await from("10.0.0.9", ds.token as string)).status).toBe(200); // cached now
      const wrong = () => `mlskp_${randomBytes(32).toString("base64url")}`;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await from("10.0.0.1", wrong())).status);
      statuses.push((await from("10.0.0.1")).status); // missing token counts too
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
      const before = lookups;
      for (let i = 0; i < 20; i++) expectOurError(await from("10.0.0.1", wrong()), 429, "rate_limited");
      expect(lookups).toBe(before); // no store work for a blocked address
      // a wrong enrollment secret from that address is limited too
      expectOurError(
        await http(srv.url, "POST", "/v1/clients", {
          body: { userId: d.userId, clientId: d.id, signatureKeys: { "1": b64(d.keys.get(SUITE1)!) } },
          headers: { "x-enrollment-secret": "x".repeat(20), "x-forwarded-for": "10.0.0.1" },
        }),
        429,
        "rate_limited",
      );
      // another address, and a token already known, still work
      expectOurError(await from("10.0.0.2", wrong()), 401, "invalid_token");
      expect((await from("10.0.0.1", ds.token as string)).status).toBe(200);
      const metrics = await (await fetch(`${srv.url}/metrics`)).text();
      expect(metrics).toMatch(/mlskp_ds_auth_failures_total\{reason="rate_limited"\} [1-9]/);
    } finally {
      await srv.close();
    }
  });
});

describe("signature verification pool", () => {
  it("verifies on worker threads like in process, and serves small uploads between big ones", async () => {
    const d = await Device.create();
    const good = (await d.generate(120)).map((k) => k.serialize());
    const bad = good.slice(0, 20).map((b) => flipLast(Uint8Array.from(b)));
    const now = Date.now();
    const pool = new WorkerVerifier(2, { chunkSize: 10 });
    try {
      const mixed = [...good.slice(0, 60), ...bad, ...good.slice(60)];
      const [fromPool, inProcess] = await Promise.all([
        pool.verify(mixed, now),
        new InProcessVerifier().verify(mixed, now),
      ]);
      expect(fromPool).toEqual(inProcess);
      expect(fromPool.flatMap((v) => (v.ok ? [] : [v.rule]))).toEqual(Array(20).fill("keypackage_signature"));
      // the refs of the valid ones, as the library computes them
      const refs = fromPool.flatMap((v) => (v.ok ? [Buffer.from(v.ref).toString("hex")] : []));
      expect(refs).toEqual(
        [...good.slice(0, 60), ...good.slice(60)].map((b) => Keypackage.deserialize(b).ref().hex()),
      );
      expect(pool.pending).toBe(0);
      // A big job, then a small one: the small one is not queued behind the whole big one.
      const order: string[] = [];
      const big = pool.verify([...good, ...good, ...good], now).then(() => order.push("big"));
      const small = pool.verify(good.slice(0, 5), now).then(() => order.push("small"));
      // The event loop stays free meanwhile.
      let maxLag = 0;
      let last = performance.now();
      const tick = setInterval(() => {
        const t = performance.now();
        maxLag = Math.max(maxLag, t - last - 5);
        last = t;
      }, 5);
      const started = performance.now();
      await Promise.all([big, small]);
      const elapsed = performance.now() - started;
      clearInterval(tick);
      expect(order).toEqual(["small", "big"]);
      // Verifying on this thread would stall it for the whole run; off it, the loop only sees
      // the machine's own noise (a generous bound: other test files share the cores).
      expect(maxLag).toBeLessThan(Math.max(150, elapsed / 2));
    } finally {
      await pool.close();
    }
    await expect(pool.verify(good.slice(0, 1), now)).rejects.toThrow(/closed/);
  });
});

describe("CORS at the HTTP level", () => {
  it("off by default: no headers, and a preflight is 404", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s);
    try {
      const res = await fetch(`${srv.url}/healthz`, { headers: { origin: "http://app.test" } });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      const pre = await fetch(`${srv.url}/v1/clients`, {
        method: "OPTIONS",
        headers: { origin: "http://app.test", "access-control-request-method": "POST" },
      });
      expectOurError(
        { status: pre.status, json: (await pre.json()) as Record<string, unknown> },
        404,
        "not_found",
      );
    } finally {
      await srv.close();
    }
  });

  it("on: listed origins only; preflight answered; headers on errors too", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s, { corsOrigins: ["http://app.test", "https://other.test:8443"] });
    try {
      const pre = await fetch(`${srv.url}/v1/users/${randomUserId()}/key-packages/claim?ciphersuite=1`, {
        method: "OPTIONS",
        headers: {
          origin: "http://app.test",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, idempotency-key",
        },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("http://app.test");
      expect(pre.headers.get("access-control-allow-methods")).toMatch(/POST/);
      expect(pre.headers.get("access-control-allow-headers")).toMatch(/authorization/);
      expect(pre.headers.get("access-control-allow-headers")).toMatch(/idempotency-key/);
      expect(pre.headers.get("vary")).toMatch(/Origin/);
      const denied = await fetch(`${srv.url}/v1/clients`, {
        method: "OPTIONS",
        headers: { origin: "http://evil.test", "access-control-request-method": "POST" },
      });
      expectOurError(
        { status: denied.status, json: (await denied.json()) as Record<string, unknown> },
        403,
        "cors_origin_not_allowed",
      );
      expect(denied.headers.get("access-control-allow-origin")).toBeNull();
      const err = await fetch(`${srv.url}/v1/users/${randomUserId()}/key-packages/claim?ciphersuite=1`, {
        method: "POST",
        headers: { origin: "https://other.test:8443" },
      });
      expect(err.status).toBe(401);
      expect(err.headers.get("access-control-allow-origin")).toBe("https://other.test:8443");
      expect(err.headers.get("access-control-expose-headers")).toMatch(/retry-after/);
    } finally {
      await srv.close();
    }
    await expect(startServer(s, { corsOrigins: ["http://app.test/path"] })).rejects.toThrow(/origin/);
  });
});
