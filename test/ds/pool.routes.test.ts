/**
 * Issue #13, DS side, over real HTTP on 127.0.0.1 (SQLite store): counting at a time, listing
 * the client's own refs, and signature key rotation with a proof of possession.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Credential,
  ROTATION_PROOF_LABEL,
  rotationProofContent,
  type CredentialRef,
  type Keypackage,
} from "../../src/index.js";
import { DeliveryServiceError, type DeliveryServiceClient } from "../../src/ds/client.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { signWithLabel } from "../../src/mls/crypto/labels.js";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import { Writer } from "../../src/mls/codec/writer.js";
import { TestClock } from "../helpers/session.js";
import { Device, SUITE1, SUITE2, b64, craft, http, randomUserId, startServer } from "./helpers.js";

const DAY = 86_400_000;

async function rejection(p: Promise<unknown>): Promise<DeliveryServiceError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryServiceError);
  return err as DeliveryServiceError;
}

/** SignWithLabel(key of `cred`, ROTATION_PROOF_LABEL, content): the proof callback. */
const signer = (cred: Credential) => async (content: Uint8Array) =>
  signWithLabel(
    cred.signaturePrivateKey(),
    ROTATION_PROOF_LABEL,
    content,
    (await ciphersuiteImpl(cred.ciphersuite)).signature,
  );

/** A new credential of `d` for `suite`, in its keystore. */
async function newCredential(d: Device, suite = SUITE1): Promise<{ cred: Credential; ref: CredentialRef }> {
  const cred = Credential.basic(suite, d.clientId);
  const ref = await d.cc.transaction((tx) => tx.addCredential(cred));
  return { cred, ref };
}

async function generateWith(
  d: Device,
  ref: CredentialRef,
  n: number,
  options: { lastResort?: boolean } = {},
): Promise<Keypackage[]> {
  return d.cc.transaction(async (tx) => {
    const out: Keypackage[] = [];
    for (let i = 0; i < n; i++)
      out.push(await tx.generateKeypackage(ref, undefined, { lastResort: options.lastResort === true }));
    return out;
  });
}

describe("pool routes over HTTP (SQLite)", () => {
  const clock = new TestClock(Date.now());
  let store: SqliteDsStore;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    store = new SqliteDsStore(":memory:");
    await store.init();
    ({ url, close } = await startServer(store, {
      clock: clock.now,
      ciphersuites: [SUITE1, SUITE2],
      verifyWorkers: 0,
      limits: { claimsPerTargetUser: 10_000 },
    }));
  });
  afterAll(async () => {
    await close();
  });

  async function device(userId?: string): Promise<{ d: Device; ds: DeliveryServiceClient }> {
    const d = await Device.create({ clock: clock.now, ...(userId !== undefined ? { userId } : {}) });
    return { d, ds: await d.register(url) };
  }

  describe("count at a time (validAt)", () => {
    it("counts what will still be valid at validAt (ms), notAfter exclusive", async () => {
      const { d, ds } = await device();
      const cred = d.credentials.get(SUITE1) as Credential;
      const now = clock.t;
      const s = (ms: number) => Math.floor(ms / 1000);
      const pkgs = await Promise.all([
        craft(cred, { notBefore: s(now - 3_600_000), notAfter: s(now + DAY) }),
        craft(cred, { notBefore: s(now - 3_600_000), notAfter: s(now + 10 * DAY) }),
        craft(cred, { notBefore: s(now - 3_600_000), notAfter: s(now + 30 * DAY) }),
        craft(cred, { notBefore: s(now - 3_600_000), notAfter: s(now + 30 * DAY), lastResort: true }),
      ]);
      await ds.upload(pkgs);
      expect(await ds.count(SUITE1)).toEqual({ count: 3, lastResort: 1 });
      expect(await ds.count(SUITE1, { validAt: now + 5 * DAY })).toEqual({ count: 2, lastResort: 1 });
      expect(await ds.count(SUITE1, { validAt: new Date(now + 20 * DAY) })).toEqual({
        count: 1,
        lastResort: 1,
      });
      expect(await ds.count(SUITE1, { validAt: now + 31 * DAY })).toEqual({ count: 0, lastResort: 0 });
      // before notBefore: nothing valid yet
      expect(await ds.count(SUITE1, { validAt: now - 2 * 3_600_000 })).toEqual({ count: 0, lastResort: 0 });
      // exactly at notAfter: expired (RFC 9420 §7.2 lifetime is [not_before, not_after])
      const exact = s(now + DAY) * 1000;
      expect(await ds.count(SUITE1, { validAt: exact - 1000 })).toEqual({ count: 3, lastResort: 1 });
      expect(await ds.count(SUITE1, { validAt: exact })).toEqual({ count: 2, lastResort: 1 });
    });

    it("refuses a malformed validAt", async () => {
      const { ds } = await device();
      const path = `/v1/clients/${encodeURIComponent(ds.clientId!)}/key-packages/count?ciphersuite=${SUITE1}`;
      for (const bad of ["-1", "1.5", "abc", "1e3", "01", "1234567890123456", ""]) {
        const r = await http(url, "GET", `${path}&validAt=${bad}`, { token: ds.token! });
        expect([bad, r.status, r.json.error]).toEqual([bad, 400, "bad_request"]);
      }
    });
  });

  describe("the client's own refs", () => {
    it("lists them by ref, paginated, per suite, with lifetimes; nobody else's", async () => {
      const userId = randomUserId();
      const { d, ds } = await device(userId);
      const other = await device(userId);
      const kps = await d.generate(7);
      const [lr] = await d.generate(1, { lastResort: true });
      await ds.upload([...kps, lr!]);
      await other.ds.upload(await other.d.generate(2));
      const want = [...kps, lr!].map((k) => k.ref().hex()).sort();

      const first = await ds.listKeypackages({ limit: 3 });
      expect(first.keyPackages.map((k) => k.ref)).toEqual(want.slice(0, 3));
      expect(typeof first.nextCursor).toBe("string");
      const second = await ds.listKeypackages({ limit: 3, cursor: first.nextCursor! });
      expect(second.keyPackages.map((k) => k.ref)).toEqual(want.slice(3, 6));
      const third = await ds.listKeypackages({ limit: 3, cursor: second.nextCursor! });
      expect(third.keyPackages.map((k) => k.ref)).toEqual(want.slice(6));
      expect(third.nextCursor).toBeUndefined();

      const all = await ds.listAllKeypackages();
      expect(all.map((k) => k.ref)).toEqual(want);
      const lrListed = all.find((k) => k.lastResort);
      const lt = lr!.lifetime();
      expect(lrListed).toEqual({
        ref: lr!.ref().hex(),
        ciphersuite: SUITE1,
        lastResort: true,
        notBefore: Math.floor(lt.notBefore.getTime() / 1000),
        notAfter: Math.floor(lt.notAfter.getTime() / 1000),
      });
      expect(await ds.listAllKeypackages(SUITE2)).toEqual([]);
      expect((await ds.listKeypackages()).keyPackages).toHaveLength(8);
    });

    it("refuses bad pages, unknown parameters, and other clients' paths", async () => {
      const { ds } = await device();
      const other = await device();
      const path = `/v1/clients/${encodeURIComponent(ds.clientId!)}/key-packages`;
      const token = ds.token!;
      for (const q of [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "cursor=abc",
        `cursor=${"A".repeat(64)}`,
        `cursor=${"a".repeat(63)}`,
        "ciphersuite=0",
        "other=1",
      ]) {
        const r = await http(url, "GET", `${path}?${q}`, { token });
        expect([q, r.status]).toEqual([q, 400]);
        expect(typeof r.json.error).toBe("string");
      }
      expect((await http(url, "GET", `${path}?ciphersuite=3`, { token })).json.error).toBe(
        "unsupported_ciphersuite",
      );
      expect((await http(url, "GET", path, { token: other.ds.token! })).status).toBe(403);
      expect((await http(url, "GET", path)).status).toBe(401);
    });
  });

  describe("signature key rotation", () => {
    it("replaces the key and every package of the suite atomically; claims never see an old package", async () => {
      const userId = randomUserId();
      const { d, ds } = await device(userId);
      const bob = await device();
      const old = await d.generate(3);
      const [oldLr] = await d.generate(1, { lastResort: true });
      await ds.upload([...old, oldLr!]);
      const oldKey = d.keys.get(SUITE1) as Uint8Array;
      const { cred, ref } = await newCredential(d);
      const fresh = await generateWith(d, ref, 2);
      const [freshLr] = await generateWith(d, ref, 1, { lastResort: true });
      const r = await ds.rotateSignatureKey({
        ciphersuite: SUITE1,
        oldSignatureKey: oldKey,
        newSignatureKey: cred.publicKey,
        sign: signer(cred),
        keyPackages: [...fresh, freshLr!],
      });
      expect(r).toEqual({ deleted: 4, refs: [...fresh, freshLr!].map((k) => k.ref().hex()) });
      expect((await store.getClient(d.id))?.signatureKeys.get(SUITE1)).toEqual(cred.publicKey);
      expect((await ds.listAllKeypackages()).map((k) => k.ref).sort()).toEqual(
        [...fresh, freshLr!].map((k) => k.ref().hex()).sort(),
      );
      const oldRefs = new Set([...old, oldLr!].map((k) => k.ref().hex()));
      for (let i = 0; i < 3; i++) {
        const c = await bob.ds.claim(userId, SUITE1);
        for (const k of c.keyPackages) expect(oldRefs.has(k.ref)).toBe(false);
      }
      // packages of the old key are refused from now on; the new key's are accepted
      const e = await rejection(ds.upload(await d.generate(1)));
      expect(e.status).toBe(422);
      expect(e.rules).toEqual(["signature_key_mismatch"]);
      expect((await ds.upload(await generateWith(d, ref, 1))).refs).toHaveLength(1);
    });

    it("a rotation with no packages only deletes; the proof binds client, suite and both keys", async () => {
      const { d, ds } = await device();
      await ds.upload(await d.generate(2));
      const oldKey = d.keys.get(SUITE1) as Uint8Array;
      const { cred } = await newCredential(d);
      // the content is the TLS struct of the spec (RFC 9420 §2.1 opaque<V> and uint16)
      const content = rotationProofContent(d.id, SUITE1, oldKey, cred.publicKey);
      const w = new Writer();
      w.vec(new TextEncoder().encode(d.id)).u16(SUITE1).vec(oldKey).vec(cred.publicKey);
      expect(content).toEqual(w.finish());
      let seen: Uint8Array | undefined;
      const r = await ds.rotateSignatureKey({
        ciphersuite: SUITE1,
        oldSignatureKey: oldKey,
        newSignatureKey: cred.publicKey,
        sign: async (c) => {
          seen = c;
          return signer(cred)(c);
        },
        keyPackages: [],
      });
      expect(r).toEqual({ deleted: 2, refs: [] });
      expect(seen).toEqual(content);
      expect(await ds.count(SUITE1)).toEqual({ count: 0, lastResort: 0 });
    });

    it("refuses a wrong proof, a stale old key, packages of the old key, and changes nothing", async () => {
      const { d, ds } = await device();
      const kept = await d.generate(2);
      await ds.upload(kept);
      const oldKey = d.keys.get(SUITE1) as Uint8Array;
      const oldCred = d.credentials.get(SUITE1) as Credential;
      const { cred, ref } = await newCredential(d);
      const fresh = await generateWith(d, ref, 1);
      const base = {
        ciphersuite: SUITE1,
        oldSignatureKey: oldKey,
        newSignatureKey: cred.publicKey,
        sign: signer(cred),
        keyPackages: fresh,
      };
      const unchanged = async () => {
        expect((await store.getClient(d.id))?.signatureKeys.get(SUITE1)).toEqual(oldKey);
        expect((await ds.listAllKeypackages()).map((k) => k.ref).sort()).toEqual(
          kept.map((k) => k.ref().hex()).sort(),
        );
      };
      // signed by the old key, not the new one
      let e = await rejection(ds.rotateSignatureKey({ ...base, sign: signer(oldCred) }));
      expect([e.status, e.error]).toEqual([422, "invalid_proof"]);
      // signed over other content (another client id)
      e = await rejection(
        ds.rotateSignatureKey({
          ...base,
          sign: async () =>
            signWithLabel(
              cred.signaturePrivateKey(),
              ROTATION_PROOF_LABEL,
              rotationProofContent(`${randomUserId()}:1@example.com`, SUITE1, oldKey, cred.publicKey),
              (await ciphersuiteImpl(SUITE1)).signature,
            ),
        }),
      );
      expect([e.status, e.error]).toEqual([422, "invalid_proof"]);
      // a bit flipped in a good proof
      e = await rejection(
        ds.rotateSignatureKey({
          ...base,
          sign: async (c) => {
            const sig = await signer(cred)(c);
            sig[5] = (sig[5] ?? 0) ^ 1;
            return sig;
          },
        }),
      );
      expect([e.status, e.error]).toEqual([422, "invalid_proof"]);
      // an old key that is not the registered one
      e = await rejection(ds.rotateSignatureKey({ ...base, oldSignatureKey: new Uint8Array(32).fill(9) }));
      expect([e.status, e.error]).toEqual([409, "stale_signature_key"]);
      // packages signed by the old key
      e = await rejection(ds.rotateSignatureKey({ ...base, keyPackages: await d.generate(1) }));
      expect([e.status, e.error, e.rules]).toEqual([422, "invalid_key_packages", ["signature_key_mismatch"]]);
      // the same key again
      e = await rejection(
        ds.rotateSignatureKey({ ...base, newSignatureKey: oldKey, sign: signer(oldCred), keyPackages: [] }),
      );
      expect([e.status, e.error]).toEqual([400, "same_signature_key"]);
      // a suite with no registered key
      const other = Credential.basic(SUITE2, d.clientId);
      e = await rejection(
        ds.rotateSignatureKey({
          ciphersuite: SUITE2,
          oldSignatureKey: new Uint8Array(65),
          newSignatureKey: other.publicKey,
          sign: signer(other),
          keyPackages: [],
        }),
      );
      expect([e.status, e.error]).toEqual([400, "signature_key_not_registered"]);
      await unchanged();
      // and then the right request works
      expect((await ds.rotateSignatureKey(base)).deleted).toBe(2);
      // the old key is stale now
      e = await rejection(ds.rotateSignatureKey({ ...base, keyPackages: [] }));
      expect([e.status, e.error]).toEqual([409, "stale_signature_key"]);
    });

    it("refuses packages of another suite, replays, and a second last resort in one rotation", async () => {
      const d = await Device.create({ clock: clock.now, suites: [SUITE1, SUITE2] });
      const ds = await d.register(url);
      const oldKey = d.keys.get(SUITE1) as Uint8Array;
      const { cred, ref } = await newCredential(d);
      // valid for its own (registered) suite, but not part of a suite-1 rotation
      const [wrongSuite] = await d.generate(1, { suite: SUITE2 });
      const base = {
        ciphersuite: SUITE1,
        oldSignatureKey: oldKey,
        newSignatureKey: cred.publicKey,
        sign: signer(cred),
      };
      const [good] = await generateWith(d, ref, 1);
      let e = await rejection(ds.rotateSignatureKey({ ...base, keyPackages: [good!, wrongSuite!] }));
      expect(e.status).toBe(422);
      expect(e.rejected.map((r) => [r.index, r.rule])).toEqual([[1, "ciphersuite"]]);
      const lrs = await generateWith(d, ref, 2, { lastResort: true });
      e = await rejection(ds.rotateSignatureKey({ ...base, keyPackages: lrs }));
      expect(e.rejected.map((r) => [r.index, r.rule])).toEqual([[1, "multiple_last_resort"]]);
      e = await rejection(ds.rotateSignatureKey({ ...base, keyPackages: [good!, good!] }));
      expect(e.rejected.map((r) => [r.index, r.rule])).toEqual([[1, "init_key_reused"]]);
      expect((await store.getClient(d.id))?.signatureKeys.get(SUITE1)).toEqual(oldKey);
    });

    it("refuses foreign paths, missing tokens and malformed bodies (strict schema)", async () => {
      const { d, ds } = await device();
      const other = await device();
      const path = `/v1/clients/${encodeURIComponent(ds.clientId!)}/signature-keys/rotate`;
      const key = b64(d.keys.get(SUITE1) as Uint8Array);
      const body = {
        ciphersuite: SUITE1,
        signatureKey: key,
        proof: b64(new Uint8Array(64)),
        keyPackages: [],
      };
      expect((await http(url, "POST", path, { body })).status).toBe(401);
      expect((await http(url, "POST", path, { body, token: other.ds.token! })).status).toBe(403);
      const token = ds.token!;
      const bad: [string, unknown][] = [
        ["extra property", { ...body, extra: 1 }],
        ["missing proof", { ...body, proof: undefined }],
        ["suite as string", { ...body, ciphersuite: "1" }],
        ["suite 0", { ...body, ciphersuite: 0 }],
        ["suite too large", { ...body, ciphersuite: 70_000 }],
        ["key not base64", { ...body, signatureKey: "not base64!" }],
        ["key unpadded", { ...body, signatureKey: key.replace(/=+$/, "") }],
        ["proof too long", { ...body, proof: "A".repeat(516) }],
        ["old key not base64", { ...body, oldSignatureKey: "%%%%" }],
        ["packages not an array", { ...body, keyPackages: "x" }],
        ["1001 packages", { ...body, keyPackages: Array(1001).fill("AAAA") }],
      ];
      for (const [what, b] of bad) {
        const r = await http(url, "POST", path, { body: b, token });
        expect([what, r.status]).toEqual([what, 400]);
        expect(typeof r.json.error).toBe("string");
        expect(typeof r.json.message).toBe("string");
      }
      // a key of the wrong length for the suite
      const r = await http(url, "POST", path, {
        body: { ...body, signatureKey: b64(new Uint8Array(31)) },
        token,
      });
      expect([r.status, r.json.error]).toEqual([400, "invalid_signature_key"]);
      // a malformed package is a per-package rule
      const { cred } = await newCredential(d);
      const e = await rejection(
        ds.rotateSignatureKey({
          ciphersuite: SUITE1,
          oldSignatureKey: d.keys.get(SUITE1) as Uint8Array,
          newSignatureKey: cred.publicKey,
          sign: signer(cred),
          keyPackages: [new Uint8Array([1, 2, 3])],
        }),
      );
      expect(e.status).toBe(422);
      expect(e.rejected).toHaveLength(1);
    });

    it("two concurrent rotations from one old key: one wins, the other is stale", async () => {
      const { d, ds } = await device();
      await ds.upload(await d.generate(2));
      const oldKey = d.keys.get(SUITE1) as Uint8Array;
      const a = await newCredential(d);
      const b = await newCredential(d);
      const results = await Promise.allSettled(
        [a, b].map(async ({ cred, ref }) =>
          ds.rotateSignatureKey({
            ciphersuite: SUITE1,
            oldSignatureKey: oldKey,
            newSignatureKey: cred.publicKey,
            sign: signer(cred),
            keyPackages: await generateWith(d, ref, 1),
          }),
        ),
      );
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect((lost.reason as DeliveryServiceError).error).toBe("stale_signature_key");
      const winner = [a, b][won[0] as number]!;
      expect((await store.getClient(d.id))?.signatureKeys.get(SUITE1)).toEqual(winner.cred.publicKey);
      expect(await ds.count(SUITE1)).toEqual({ count: 1, lastResort: 0 });
    });
  });
});
