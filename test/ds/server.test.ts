/** Every endpoint over real HTTP on 127.0.0.1, on a SQLite store. */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Ciphersuite, Credential, ErrorCode, Keypackage, MlsKeypackagesError } from "../../src/index.js";
import { DeliveryServiceClient, DeliveryServiceError } from "../../src/ds/client.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { createDeliveryService } from "../../src/ds/server.js";
import { TestClock } from "../helpers/session.js";
import {
  Device,
  SECRET,
  SUITE1,
  SUITE2,
  b64,
  craft,
  flipLast,
  http,
  randomUserId,
  startServer,
  tamper,
} from "./helpers.js";

const DAY = 86_400_000;
const SUITE3 = Ciphersuite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

async function rejection(p: Promise<unknown>): Promise<DeliveryServiceError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryServiceError);
  const e = err as DeliveryServiceError;
  expect(e.code).toBe(ErrorCode.DeliveryServiceError);
  expect(MlsKeypackagesError.is(e, ErrorCode.DeliveryServiceError)).toBe(true);
  return e;
}

describe("delivery service over HTTP", () => {
  const clock = new TestClock(Date.now());
  let store: SqliteDsStore;
  let url: string;
  let close: () => Promise<void>;
  let alice: Device;
  let aliceDs: DeliveryServiceClient;
  const sec = () => Math.floor(clock.t / 1000);

  beforeAll(async () => {
    store = new SqliteDsStore(":memory:");
    await store.init();
    ({ url, close } = await startServer(store, {
      clock: clock.now,
      ciphersuites: [SUITE1, SUITE2],
      // some tests drain a pool on purpose (the per-target limit has its own tests: claims.test.ts)
      limits: { claimsPerTargetUser: 10_000 },
    }));
    alice = await Device.create({ clock: clock.now });
    aliceDs = await alice.register(url);
  });
  afterAll(async () => {
    await close();
  });

  const healthy = async () => expect((await http(url, "GET", "/healthz")).status).toBe(200);
  const countOf = (ds: DeliveryServiceClient = aliceDs) => ds.count(SUITE1);

  describe("operations", () => {
    it("/healthz reports the store", async () => {
      expect(await http(url, "GET", "/healthz")).toEqual({
        status: 200,
        json: { status: "ok", store: "sqlite" },
      });
    });

    it("/openapi.json documents every route with its security", async () => {
      const { status, json } = await http(url, "GET", "/openapi.json");
      expect(status).toBe(200);
      expect(String(json.openapi)).toMatch(/^3\./);
      const paths = json.paths as Record<string, Record<string, { security?: unknown }>>;
      expect(Object.keys(paths).sort()).toEqual(
        [
          "/healthz",
          "/metrics",
          "/v1/clients",
          "/v1/clients/{clientId}/events",
          "/v1/clients/{clientId}/key-packages",
          "/v1/clients/{clientId}/key-packages/count",
          "/v1/clients/{clientId}/signature-keys/rotate",
          "/v1/users/{userId}/key-packages/claim",
        ].sort(),
      );
      const kpPath = paths["/v1/clients/{clientId}/key-packages"];
      expect(Object.keys(kpPath ?? {}).sort()).toEqual(["delete", "get", "post", "put"]);
      expect(paths["/v1/clients/{clientId}/events"]?.get?.security).toEqual([{ bearer: [] }]);
      expect(paths["/v1/clients/{clientId}/signature-keys/rotate"]?.post?.security).toEqual([{ bearer: [] }]);
      expect(kpPath?.post?.security).toEqual([{ bearer: [] }]);
      expect(paths["/v1/clients"]?.post?.security).toEqual([{ enrollment: [] }]);
      expect((json.components as { securitySchemes: object }).securitySchemes).toHaveProperty("bearer");
    });

    it("/metrics speaks Prometheus text", async () => {
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await res.text();
      for (const name of [
        "mlskp_ds_upload_requests_total",
        "mlskp_ds_claimed_keypackages_total",
        "mlskp_ds_exhausted_claims_total",
        "mlskp_ds_rejected_keypackages_total",
        "mlskp_ds_keypackages",
      ]) {
        expect(text).toContain(`# TYPE ${name} `);
      }
    });

    it("unknown routes answer 404 in the error format", async () => {
      expect(await http(url, "GET", "/nope")).toMatchObject({ status: 404, json: { error: "not_found" } });
    });
  });

  describe("POST /v1/clients", () => {
    it("needs the enrollment secret", async () => {
      const d = await Device.create();
      const body = {
        userId: d.userId,
        clientId: d.id,
        signatureKeys: { "1": b64(d.keys.get(SUITE1) as Uint8Array) },
      };
      expect(await http(url, "POST", "/v1/clients", { body })).toMatchObject({
        status: 401,
        json: { error: "invalid_enrollment_secret" },
      });
      const wrong = await http(url, "POST", "/v1/clients", {
        body,
        headers: { "x-enrollment-secret": "wrong-secret-wrong-secret" },
      });
      expect(wrong.status).toBe(401);
      const ok = await http(url, "POST", "/v1/clients", { body, headers: { "x-enrollment-secret": SECRET } });
      expect(ok.status).toBe(201);
      expect(String(ok.json.token)).toMatch(/^mlskp_[A-Za-z0-9_-]{43}$/);
      const again = await http(url, "POST", "/v1/clients", {
        body,
        headers: { "x-enrollment-secret": SECRET },
      });
      expect(again).toMatchObject({ status: 409, json: { error: "client_exists" } });
    });

    it.each([
      ["a malformed client id", (_d: Device) => ({ clientId: "not-a-client-id" }), "invalid_client_id"],
      [
        "another user's client id",
        () => ({ clientId: `${randomUserId()}:1@example.com` }),
        "client_user_mismatch",
      ],
      ["a short key", () => ({ signatureKeys: { "1": b64(new Uint8Array(31)) } }), "invalid_signature_key"],
      ["malformed base64", () => ({ signatureKeys: { "1": "@@@@" } }), "invalid_signature_key"],
      [
        "a suite this server refuses",
        () => ({ signatureKeys: { "3": b64(new Uint8Array(32)) } }),
        "unsupported_ciphersuite",
      ],
      ["no keys", () => ({ signatureKeys: {} }), "bad_request"],
      ["a non-numeric suite", () => ({ signatureKeys: { x: b64(new Uint8Array(32)) } }), "bad_request"],
      ["a bad user id", () => ({ userId: "bob" }), "bad_request"],
    ] as const)("refuses %s", async (_name, change, error) => {
      const d = await Device.create();
      const body = {
        userId: d.userId,
        clientId: d.id,
        signatureKeys: { "1": b64(d.keys.get(SUITE1) as Uint8Array) },
        ...change(d),
      };
      const r = await http(url, "POST", "/v1/clients", { body, headers: { "x-enrollment-secret": SECRET } });
      expect(r.status).toBe(400);
      expect(r.json.error).toBe(error);
    });

    it("dev mode enrolls without a secret", async () => {
      const s = new SqliteDsStore(":memory:");
      await s.init();
      const dev = await startServer(s, { dev: true, enrollmentSecret: undefined });
      try {
        const d = await Device.create();
        const ds = await d.register(dev.url, null);
        expect(ds.token).toMatch(/^mlskp_/);
      } finally {
        await dev.close();
      }
    });

    it("refuses to start without a secret outside dev mode", async () => {
      const s = new SqliteDsStore(":memory:");
      await expect(createDeliveryService({ store: s })).rejects.toThrow(/enrollment secret/);
      await expect(createDeliveryService({ store: s, enrollmentSecret: "short" })).rejects.toThrow(
        /enrollment secret/,
      );
      await expect(createDeliveryService({ store: s, dev: true, maxLifetimeMs: 100 * DAY })).rejects.toThrow(
        /maxLifetimeMs/,
      );
      await expect(
        createDeliveryService({ store: s, dev: true, limits: { maxKeypackagesPerUpload: 1001 } }),
      ).rejects.toThrow();
      await s.close();
    });

    it("stores only a hash of the token, and logs neither tokens nor the secret", async () => {
      const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
      let logs = "";
      const stream = new Writable({
        write(chunk: Buffer, _enc, cb) {
          logs += chunk.toString();
          cb();
        },
      });
      try {
        const s = new SqliteDsStore(join(dir, "ds.db"));
        await s.init();
        const srv = await startServer(s, { logger: { level: "debug", stream } });
        const d = await Device.create();
        const ds = await d.register(srv.url);
        const kps = await d.generate(1);
        await ds.upload(kps);
        await ds.count(SUITE1);
        await http(srv.url, "GET", "/healthz", { token: ds.token as string });
        await srv.close();
        const token = ds.token as string;
        expect(logs.length).toBeGreaterThan(0);
        expect(logs).not.toContain(token);
        expect(logs).not.toContain(token.slice(6));
        expect(logs).not.toContain(SECRET);
        for (const f of readdirSync(dir)) {
          const raw = readFileSync(join(dir, f));
          expect(raw.includes(Buffer.from(token))).toBe(false);
          expect(raw.includes(Buffer.from(token.slice(6)))).toBe(false);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("POST /v1/clients/:clientId/key-packages", () => {
    it("accepts valid packages and answers their refs in order", async () => {
      const kps = [...(await alice.generate(3)), ...(await alice.generate(1, { lastResort: true }))];
      const r = await aliceDs.upload(kps);
      expect(r.refs).toEqual(kps.map((k) => k.ref().hex()));
      expect(r.removed).toBe(0);
      expect(await countOf()).toEqual({ count: 3, lastResort: 1 });
    });

    it("authenticates: missing, unknown, and another client's token", async () => {
      const [kp] = await alice.generate(1);
      const body = { keyPackages: [b64((kp as Keypackage).serialize())] };
      const path = `/v1/clients/${encodeURIComponent(alice.id)}/key-packages`;
      const before = await countOf();
      expect(await http(url, "POST", path, { body })).toMatchObject({
        status: 401,
        json: { error: "missing_token" },
      });
      expect(
        await http(url, "POST", path, { body, token: `mlskp_${randomBytes(32).toString("base64url")}` }),
      ).toMatchObject({
        status: 401,
        json: { error: "invalid_token" },
      });
      expect(await http(url, "POST", path, { body, token: "garbage" })).toMatchObject({ status: 401 });
      const bob = await Device.create();
      const bobDs = await bob.register(url);
      expect(await http(url, "POST", path, { body, token: bobDs.token as string })).toMatchObject({
        status: 403,
        json: { error: "forbidden" },
      });
      // the typed client: same answers
      const anon = new DeliveryServiceClient({
        baseUrl: url,
        clientId: alice.id,
        token: `mlskp_${"A".repeat(43)}`,
      });
      const e = await rejection(anon.upload([kp as Keypackage]));
      expect([e.status, e.error]).toEqual([401, "invalid_token"]);
      expect(await countOf()).toEqual(before);
    });

    describe("rejects a bad package, naming its index and rule, and stores nothing", () => {
      const cases: [string, () => Promise<string>][] = [
        ["base64", async () => "@@not base64@@"],
        ["too_large", async () => b64(randomBytes(17 * 1024))],
        ["decode", async () => b64(randomBytes(80))],
        [
          "trailing_bytes",
          async () => b64(Uint8Array.from([...(await alice.generate(1))[0]!.serialize(), 0])),
        ],
        [
          "keypackage_signature",
          async () => {
            const bytes = (await alice.generate(1))[0]!.serialize();
            return b64(flipLast(bytes));
          },
        ],
        [
          "leaf_signature",
          async () => {
            const bytes = (await alice.generate(1))[0]!.serialize();
            const cred = alice.credentials.get(SUITE1) as Credential;
            return b64(
              await tamper(bytes, cred, (kp) => {
                const leaf = kp.leafNode as typeof kp.leafNode & { signature: Uint8Array };
                leaf.signature[0] = (leaf.signature[0] ?? 0) ^ 1;
                return kp;
              }),
            );
          },
        ],
        [
          "init_key_equals_encryption_key",
          async () => {
            const bytes = (await alice.generate(1))[0]!.serialize();
            const cred = alice.credentials.get(SUITE1) as Credential;
            return b64(await tamper(bytes, cred, (kp) => ({ ...kp, initKey: kp.leafNode.hpkePublicKey })));
          },
        ],
        [
          "credential_type",
          async () => {
            const bytes = (await alice.generate(1))[0]!.serialize();
            const cred = alice.credentials.get(SUITE1) as Credential;
            return b64(
              await tamper(
                bytes,
                cred,
                (kp) => ({
                  ...kp,
                  leafNode: {
                    ...kp.leafNode,
                    credential: { credentialType: "x509", certificates: [new Uint8Array(16)] },
                  },
                }),
                { resignLeaf: true },
              ),
            );
          },
        ],
        [
          "client_id_mismatch",
          async () => {
            const other = await Device.create({ userId: alice.userId, clock: clock.now });
            return b64((await other.generate(1))[0]!.serialize());
          },
        ],
        [
          "signature_key_mismatch",
          async () => {
            const twin = await Device.create({
              userId: alice.userId,
              device: alice.clientId.wireParts().deviceId,
              clock: clock.now,
            });
            return b64((await twin.generate(1))[0]!.serialize());
          },
        ],
        [
          "signature_key_not_registered",
          async () => {
            const cred = Credential.basic(SUITE2, alice.clientId);
            return b64(await craft(cred, { notBefore: sec() - 3600, notAfter: sec() + 7 * 86_400 }));
          },
        ],
        [
          "ciphersuite",
          async () => {
            const cred = Credential.basic(SUITE3, alice.clientId);
            return b64(await craft(cred, { notBefore: sec() - 3600, notAfter: sec() + 7 * 86_400 }));
          },
        ],
        [
          "lifetime_expired",
          async () => {
            const cred = alice.credentials.get(SUITE1) as Credential;
            return b64(await craft(cred, { notBefore: sec() - 30 * 86_400, notAfter: sec() - 1 }));
          },
        ],
        [
          "lifetime_not_yet_valid",
          async () => {
            const cred = alice.credentials.get(SUITE1) as Credential;
            return b64(await craft(cred, { notBefore: sec() + 86_400, notAfter: sec() + 30 * 86_400 }));
          },
        ],
        [
          "lifetime_too_long",
          async () => {
            const cred = alice.credentials.get(SUITE1) as Credential;
            return b64(await craft(cred, { notBefore: sec() - 3600, notAfter: sec() + 85 * 86_400 }));
          },
        ],
      ];

      it.each(cases)("%s", async (rule, make) => {
        const bad = await make();
        const good = await alice.generate(2);
        const before = await countOf();
        const r = await http(url, "POST", `/v1/clients/${encodeURIComponent(alice.id)}/key-packages`, {
          token: aliceDs.token as string,
          body: { keyPackages: [b64(good[0]!.serialize()), bad, b64(good[1]!.serialize())] },
        });
        expect(r.status).toBe(422);
        expect(r.json.error).toBe("invalid_key_packages");
        const rejected = r.json.rejected as { index: number; rule: string; message: string }[];
        expect(rejected.map((x) => [x.index, x.rule])).toEqual([[1, rule]]);
        expect(rejected[0]?.message.length).toBeGreaterThan(0);
        expect(await countOf()).toEqual(before);
        // nothing recorded either: the good packages still upload afterwards
        expect((await aliceDs.upload(good)).refs).toHaveLength(2);
        await healthy();
      });
    });

    it("an unknown cipher suite code point is refused", async () => {
      const bytes = (await alice.generate(1))[0]!.serialize();
      bytes[2] = 0x7f; // KeyPackage.cipher_suite (after the 2-byte version)
      const e = await rejection(aliceDs.upload([bytes]));
      expect(e.status).toBe(422);
      expect(["decode", "ciphersuite"]).toContain(e.rules[0]);
    });

    it("lists every rejected index", async () => {
      const [a, b, c] = await alice.generate(3);
      const bad = a!.serialize();
      flipLast(bad);
      const e = await rejection(aliceDs.upload([bad, b!, new Uint8Array(3), c!]));
      expect(e.rejected.map((x) => [x.index, x.rule])).toEqual([
        [0, "keypackage_signature"],
        [2, "decode"],
      ]);
      expect(e.rules).toEqual(["keypackage_signature", "decode"]);
    });

    it("refuses replays: a seen init key, a repeat within a request, a claimed package uploaded again", async () => {
      const [kp, kp2] = await alice.generate(2);
      await aliceDs.upload([kp!]);
      let e = await rejection(aliceDs.upload([kp2!, kp!]));
      expect(e.rejected.map((x) => [x.index, x.rule])).toEqual([[1, "init_key_reused"]]);
      e = await rejection(aliceDs.upload([kp2!, kp2!]));
      expect(e.rejected.map((x) => [x.index, x.rule])).toEqual([[1, "init_key_reused"]]);
      // claim everything of alice, then replay one claimed package
      const claimer = await (await Device.create()).register(url);
      let claimed: Uint8Array | undefined;
      for (;;) {
        const r = await claimer.claim(alice.userId, SUITE1);
        const mine = r.keyPackages.find((k) => k.clientId === alice.id);
        if (mine === undefined || mine.lastResort) break;
        claimed = mine.keyPackage;
      }
      expect(claimed).toBeDefined();
      e = await rejection(aliceDs.upload([claimed as Uint8Array]));
      expect(e.rules).toEqual(["init_key_reused"]);
    });

    it("refuses two last-resort packages of one suite in one request", async () => {
      const lr = await alice.generate(2, { lastResort: true });
      const e = await rejection(aliceDs.upload(lr));
      expect(e.rejected.map((x) => [x.index, x.rule])).toEqual([[1, "multiple_last_resort"]]);
    });

    it("refuses malformed requests with 400 and oversized bodies with 413", async () => {
      const path = `/v1/clients/${encodeURIComponent(alice.id)}/key-packages`;
      const token = aliceDs.token as string;
      for (const body of [
        {},
        { keyPackages: "x" },
        { keyPackages: [] },
        { keyPackages: [1] },
        { keyPackages: [{}] },
        [],
      ]) {
        expect(await http(url, "POST", path, { token, body })).toMatchObject({
          status: 400,
          json: { error: "bad_request" },
        });
      }
      expect(await http(url, "POST", path, { token, rawBody: "{not json" })).toMatchObject({ status: 400 });
      expect(
        await http(url, "POST", path, { token, body: { keyPackages: Array(1001).fill("AAAA") } }),
      ).toMatchObject({
        status: 400,
        json: { error: "too_many_key_packages" },
      });
      // the auth scheme is case-insensitive; a non-JSON body is 415
      const plain = await fetch(url + path, {
        method: "POST",
        headers: { authorization: `bearer ${token}`, "content-type": "application/xml" },
        body: "x",
      });
      expect(plain.status).toBe(415);
      expect(((await plain.json()) as { error: string }).error).toBe("unsupported_media_type");
      const huge = await http(url, "POST", path, {
        token,
        body: { keyPackages: ["A".repeat(5 * 1024 * 1024)] },
      });
      expect(huge).toMatchObject({ status: 413, json: { error: "body_too_large" } });
      await healthy();
    });

    it("a server with a shorter maximum lifetime refuses a default 84-day package", async () => {
      const s = new SqliteDsStore(":memory:");
      await s.init();
      const srv = await startServer(s, { maxLifetimeMs: 7 * DAY, clock: clock.now });
      try {
        const d = await Device.create({ clock: clock.now });
        const ds = await d.register(srv.url);
        const e = await rejection(ds.upload(await d.generate(1)));
        expect(e.rules).toEqual(["lifetime_too_long"]);
        expect((await ds.upload(await d.generate(1, { lifetime: 7 * DAY - 3600_000 }))).refs).toHaveLength(1);
      } finally {
        await srv.close();
      }
    });

    it("caps the packages one client may hold (409, nothing stored)", async () => {
      const s = new SqliteDsStore(":memory:");
      await s.init();
      const srv = await startServer(s, { limits: { maxStoredPerClient: 3 } });
      try {
        const d = await Device.create();
        const ds = await d.register(srv.url);
        await ds.upload(await d.generate(2));
        const e = await rejection(ds.upload(await d.generate(2)));
        expect([e.status, e.error]).toEqual([409, "pool_full"]);
        expect(await ds.count(SUITE1)).toEqual({ count: 2, lastResort: 0 });
      } finally {
        await srv.close();
      }
    });
  });

  describe("PUT /v1/clients/:clientId/key-packages", () => {
    it("replaces every package of the suites present, atomically", async () => {
      const d = await Device.create({ suites: [SUITE1, SUITE2], clock: clock.now });
      const ds = await d.register(url);
      await ds.upload([...(await d.generate(4)), ...(await d.generate(1, { lastResort: true }))]);
      await ds.upload(await d.generate(2, { suite: SUITE2 }));
      const fresh = await d.generate(2);
      const r = await ds.replace(fresh);
      expect(r).toEqual({ refs: fresh.map((k) => k.ref().hex()), removed: 5 });
      expect(await ds.count(SUITE1)).toEqual({ count: 2, lastResort: 0 });
      expect(await ds.count(SUITE2)).toEqual({ count: 2, lastResort: 0 });
      // a rejected replace changes nothing
      const bad = (await d.generate(1))[0]!.serialize();
      flipLast(bad);
      const e = await rejection(ds.replace([...(await d.generate(1)), bad]));
      expect(e.rejected.map((x) => x.index)).toEqual([1]);
      expect(await ds.count(SUITE1)).toEqual({ count: 2, lastResort: 0 });
    });
  });

  describe("GET /v1/clients/:clientId/key-packages/count", () => {
    it("counts valid packages; expired ones drop out as the clock moves", async () => {
      const c = new TestClock(Date.now());
      const s = new SqliteDsStore(":memory:");
      await s.init();
      const srv = await startServer(s, { clock: c.now });
      try {
        const d = await Device.create({ clock: c.now });
        const ds = await d.register(srv.url);
        await ds.upload([
          ...(await d.generate(2, { lifetime: DAY })),
          ...(await d.generate(1, { lastResort: true })),
        ]);
        expect(await ds.count(SUITE1)).toEqual({ count: 2, lastResort: 1 });
        expect(await ds.count(SUITE2)).toEqual({ count: 0, lastResort: 0 });
        c.advance(DAY);
        expect(await ds.count(SUITE1)).toEqual({ count: 0, lastResort: 1 });
      } finally {
        await srv.close();
      }
    });

    it("needs a supported ciphersuite parameter and the owner's token", async () => {
      const path = `/v1/clients/${encodeURIComponent(alice.id)}/key-packages/count`;
      const token = aliceDs.token as string;
      expect((await http(url, "GET", path, { token })).status).toBe(400);
      expect((await http(url, "GET", `${path}?ciphersuite=abc`, { token })).status).toBe(400);
      expect(await http(url, "GET", `${path}?ciphersuite=3`, { token })).toMatchObject({
        status: 400,
        json: { error: "unsupported_ciphersuite" },
      });
      const other = await (await Device.create()).register(url);
      expect((await http(url, "GET", `${path}?ciphersuite=1`, { token: other.token as string })).status).toBe(
        403,
      );
      expect((await http(url, "GET", `${path}?ciphersuite=1`)).status).toBe(401);
    });
  });

  describe("DELETE /v1/clients/:clientId/key-packages", () => {
    it("deletes the caller's packages by ref", async () => {
      const d = await Device.create({ clock: clock.now });
      const ds = await d.register(url);
      const kps = await d.generate(3);
      await ds.upload(kps);
      expect(await ds.delete([kps[0]!.ref(), kps[1]!.ref().hashRef(), "00".repeat(32)])).toBe(2);
      expect(await ds.delete([kps[0]!.ref()])).toBe(0);
      expect(await ds.count(SUITE1)).toEqual({ count: 1, lastResort: 0 });
      const path = `/v1/clients/${encodeURIComponent(d.id)}/key-packages`;
      expect(
        (await http(url, "DELETE", path, { token: ds.token as string, body: { refs: ["xyz"] } })).status,
      ).toBe(400);
      expect(
        (await http(url, "DELETE", path, { token: aliceDs.token as string, body: { refs: [] } })).status,
      ).toBe(403);
    });
  });

  describe("POST /v1/users/:userId/key-packages/claim", () => {
    it("hands one package per other client, then last resort (kept), then exhausted", async () => {
      const userId = randomUserId();
      const [d1, d2, d3] = await Promise.all(
        [1, 2, 3].map(() => Device.create({ userId, clock: clock.now })),
      );
      const [ds1, ds2] = [await d1!.register(url), await d2!.register(url)];
      await d3!.register(url);
      const regular = await d1!.generate(2);
      const [lr] = await d1!.generate(1, { lastResort: true });
      await ds1.upload([...regular, lr!]);
      await ds2.upload(await d2!.generate(1));
      const claimer = await (await Device.create()).register(url);

      const r1 = await claimer.claim(userId, SUITE1);
      expect(r1.keyPackages.map((k) => [k.clientId, k.lastResort]).sort()).toEqual(
        [
          [d1!.id, false],
          [d2!.id, false],
        ].sort(),
      );
      expect(r1.exhausted).toEqual([d3!.id]);
      for (const k of r1.keyPackages) {
        const kp = Keypackage.deserialize(k.keyPackage);
        await kp.verify({ now: clock.now() });
        expect(kp.ref().hex()).toBe(k.ref);
        expect(kp.clientId()?.toString()).toBe(k.clientId);
      }
      const r2 = await claimer.claim(userId, SUITE1);
      expect(r2.keyPackages.map((k) => [k.clientId, k.lastResort])).toEqual([[d1!.id, false]]);
      expect(r2.exhausted.sort()).toEqual([d2!.id, d3!.id].sort());
      for (let i = 0; i < 2; i++) {
        const r = await claimer.claim(userId, SUITE1);
        expect(r.keyPackages).toEqual([
          { clientId: d1!.id, ref: lr!.ref().hex(), keyPackage: lr!.serialize(), lastResort: true },
        ]);
      }
      expect(await ds1.count(SUITE1)).toEqual({ count: 0, lastResort: 1 });
      const seen = [...r1.keyPackages, ...r2.keyPackages].map((k) => k.ref);
      expect(new Set(seen).size).toBe(seen.length);
    });

    it("never hands the caller its own package; skips and purges expired packages", async () => {
      const c = new TestClock(Date.now());
      const s = new SqliteDsStore(":memory:");
      await s.init();
      const srv = await startServer(s, { clock: c.now });
      try {
        const userId = randomUserId();
        const me = await Device.create({ userId, clock: c.now });
        const other = await Device.create({ userId, clock: c.now });
        const meDs = await me.register(srv.url);
        const otherDs = await other.register(srv.url);
        await meDs.upload(await me.generate(1));
        await otherDs.upload([
          ...(await other.generate(2, { lifetime: DAY })),
          ...(await other.generate(1, { lifetime: 2 * DAY })),
        ]);
        const r = await meDs.claim(userId, SUITE1);
        expect(r.keyPackages.map((k) => k.clientId)).toEqual([other.id]);
        c.advance(DAY);
        const r2 = await meDs.claim(userId, SUITE1);
        expect(r2.keyPackages).toHaveLength(1);
        expect(Keypackage.deserialize(r2.keyPackages[0]!.keyPackage).lifetime().notAfter.getTime()).toBe(
          Math.floor((c.t + DAY) / 1000) * 1000,
        );
        expect(await s.countKeypackages(other.id, SUITE1, Math.floor(c.t / 1000) - DAY / 1000)).toEqual({
          regular: 0,
          lastResort: 0,
        });
        const metrics = await (await fetch(`${srv.url}/metrics`)).text();
        expect(metrics).toMatch(/mlskp_ds_purged_keypackages_total 1/);
      } finally {
        await srv.close();
      }
    });

    it("answers 404 for an unknown user and 400 for a bad user id or suite; needs a token", async () => {
      const claimer = await (await Device.create()).register(url);
      const e = await rejection(claimer.claim(randomUserId(), SUITE1));
      expect([e.status, e.error]).toEqual([404, "unknown_user"]);
      expect((await rejection(claimer.claim("bob", SUITE1))).status).toBe(400);
      expect((await rejection(claimer.claim(alice.userId, SUITE3))).error).toBe("unsupported_ciphersuite");
      expect(
        (await http(url, "POST", `/v1/users/${alice.userId}/key-packages/claim?ciphersuite=1`)).status,
      ).toBe(401);
    });
  });

  describe("metrics", () => {
    it("count uploads, claims, rejects by rule and pool sizes", async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      expect(text).toMatch(/mlskp_ds_upload_requests_total\{result="accepted"\} [1-9]/);
      expect(text).toMatch(/mlskp_ds_rejected_keypackages_total\{rule="keypackage_signature"\} [1-9]/);
      expect(text).toMatch(/mlskp_ds_rejected_keypackages_total\{rule="init_key_reused"\} [1-9]/);
      expect(text).toMatch(/mlskp_ds_claimed_keypackages_total\{kind="last_resort"\} [1-9]/);
      expect(text).toMatch(/mlskp_ds_exhausted_claims_total [1-9]/);
      expect(text).toMatch(/mlskp_ds_auth_failures_total\{reason="invalid_token"\} [1-9]/);
      // The pool-size gauge reuses a database read for up to 1 s (metrics.ts): an earlier scrape
      // in this file may still be the answer, so ask again until a fresh read is in.
      await vi.waitFor(
        async () =>
          expect(await (await fetch(`${url}/metrics`)).text()).toMatch(
            /mlskp_ds_keypackages\{ciphersuite="1",kind="regular"\} [1-9]/,
          ),
        { timeout: 5_000, interval: 250 },
      );
    });
  });
});

describe("rate limits", () => {
  it("limit claims per claimer and uploads per client, not across clients", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s, {
      limits: { claimsPerWindow: 3, uploadsPerWindow: 2, registrationsPerWindow: 6 },
    });
    try {
      const target = await Device.create();
      const targetDs = await target.register(srv.url);
      const a = await (await Device.create()).register(srv.url);
      const b = await (await Device.create()).register(srv.url);
      for (let i = 0; i < 3; i++) await a.claim(target.userId, SUITE1);
      const e = await rejection(a.claim(target.userId, SUITE1));
      expect([e.status, e.error]).toEqual([429, "rate_limited"]);
      await b.claim(target.userId, SUITE1); // another claimer is not limited
      await targetDs.upload(await target.generate(1));
      await targetDs.upload(await target.generate(1));
      expect((await rejection(targetDs.upload(await target.generate(1)))).status).toBe(429);
      // registrations per IP: 3 done, 3 left
      for (let i = 0; i < 3; i++) await (await Device.create()).register(srv.url);
      expect((await rejection((await Device.create()).register(srv.url))).status).toBe(429);
      expect((await http(srv.url, "GET", "/healthz")).status).toBe(200);
    } finally {
      await srv.close();
    }
  });
});

describe("maintenance", () => {
  it("purges expired packages in the background", async () => {
    const c = new TestClock(Date.now());
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s, { clock: c.now, maintenanceIntervalMs: 20 });
    try {
      const d = await Device.create({ clock: c.now });
      const ds = await d.register(srv.url);
      await ds.upload(await d.generate(2, { lifetime: DAY }));
      c.advance(DAY + 1000);
      await new Promise((r) => setTimeout(r, 100));
      expect(await s.poolSizes(0)).toEqual([]);
    } finally {
      await srv.close();
    }
  });
});

describe("client errors", () => {
  it("a server that cannot be reached is status 0, code network", async () => {
    const ds = new DeliveryServiceClient({
      baseUrl: "http://127.0.0.1:9",
      clientId: "x",
      token: "t",
      timeoutMs: 2000,
    });
    const e = await rejection(ds.count(1));
    expect([e.status, e.error]).toEqual([0, "network"]);
    const none = new DeliveryServiceClient({ baseUrl: "http://127.0.0.1:9" });
    expect((await rejection(none.count(1))).error).toBe("no_client_id");
  });
});
