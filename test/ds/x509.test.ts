import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ciphersuite, ClientId, CoreCrypto, Credential, Database } from "../../src/index.js";
import { DeliveryServiceClient, DeliveryServiceError } from "../../src/ds/client.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { WorkerVerifier } from "../../src/ds/verifyPool.js";
import { X509UploadPolicy } from "../../src/ds/x509.js";
import { encode } from "../../src/mls/codec/index.js";
import { writeCredential } from "../../src/mls/credential/codec.js";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import { signWithLabel } from "../../src/mls/crypto/labels.js";
import { ROTATION_PROOF_LABEL } from "../../src/ds/wire.js";
import { buildKeyPackage } from "../../src/mls/keypackage/build.js";
import { generateSignatureKeyPair } from "../../src/mls/signatureKeys.js";
import { signatureSchemeOf } from "../../src/mls/ciphersuite.js";
import {
  createDevCa,
  devKeyAlgorithmFor,
  type DevCa,
  type DevDeviceCertificate,
  type DevDeviceOptions,
} from "../../src/pki/devCa.js";
import { ROOT, SECRET, craft, randomUserId, spawnCli, startServer } from "./helpers.js";

const SUITE1 = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const SUITE2 = Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
const SUITE5 = Ciphersuite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521;
const SUITE7 = Ciphersuite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384;
const DAY = 86_400_000;

function newClientId(): ClientId {
  return ClientId.parse(
    `${randomUserId()}:${randomBytes(8).toString("hex").replace(/^0+/, "1")}@wire.example`,
  );
}

/** An X509 key package: the chain as the credential, signed with `key` (default the certificate's). */
async function x509Package(
  suite: Ciphersuite,
  chain: readonly Uint8Array[],
  key: { publicKey: Uint8Array; privateKey: Uint8Array },
): Promise<Uint8Array> {
  const now = Math.floor(Date.now() / 1000);
  const built = await buildKeyPackage(await ciphersuiteImpl(suite), {
    ciphersuite: suite,
    credential: encode({ credentialType: 2, certificates: [...chain] }, writeCredential),
    signaturePublicKey: key.publicKey,
    signaturePrivateKey: key.privateKey,
    notBefore: now - 60,
    notAfter: now + 30 * 86_400,
    lastResort: false,
  });
  return built.bytes;
}

async function memoryStore(): Promise<SqliteDsStore> {
  const store = new SqliteDsStore(":memory:");
  await store.init();
  return store;
}

const keyOf = (d: DevDeviceCertificate): { publicKey: Uint8Array; privateKey: Uint8Array } => ({
  publicKey: d.publicKey,
  privateKey: d.signaturePrivateKey as Uint8Array,
});

/** Register `clientId` with `signatureKey` for `suite`. */
async function register(url: string, clientId: ClientId, suite: Ciphersuite, signatureKey: Uint8Array) {
  const ds = new DeliveryServiceClient({ baseUrl: url });
  await ds.register({ clientId, signatureKeys: new Map([[suite, signatureKey]]), enrollmentSecret: SECRET });
  return ds;
}

/** A device with a certificate from `ca`, registered with the certificate's key. */
async function device(url: string, ca: DevCa, suite: Ciphersuite, o: Partial<DevDeviceOptions> = {}) {
  const clientId = newClientId();
  const cert = await ca.issueDevice({
    clientId,
    handle: "alice",
    algorithm: devKeyAlgorithmFor(suite),
    ...o,
  });
  const ds = await register(url, clientId, suite, cert.publicKey);
  return { clientId, cert, ds };
}

async function rules(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryServiceError);
  const e = err as DeliveryServiceError;
  expect(e.status).toBe(422);
  return e.rules;
}

describe("Delivery Service: X.509 credentials", () => {
  let ca: DevCa;
  let server: { url: string; close: () => Promise<void> };
  let revokedSerial: string;
  const revokedClient = newClientId();
  let revoked: DevDeviceCertificate;

  beforeAll(async () => {
    ca = await createDevCa();
    revoked = await ca.issueDevice({ clientId: revokedClient, handle: "mallory" });
    revokedSerial = revoked.serialNumber;
    ca.revoke(revokedSerial);
    const crl = await ca.crl();
    server = await startServer(await memoryStore(), {
      trustAnchors: [ca.root.pem],
      crls: [crl.der],
      verifyWorkers: 0,
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it.each([
    ["1 (Ed25519)", SUITE1],
    ["2 (P-256)", SUITE2],
    ["7 (P-384)", SUITE7],
    ["5 (P-521)", SUITE5],
  ] as const)(
    "accepts valid X509 packages of suite %s, and serves them",
    async (_name, suite) => {
      const { clientId, cert, ds } = await device(server.url, ca, suite);
      const packages = await Promise.all([1, 2, 3].map(() => x509Package(suite, cert.chain, keyOf(cert))));
      const r = await ds.upload(packages);
      expect(r.refs).toHaveLength(3);
      expect(await ds.count(suite)).toEqual({ count: 3, lastResort: 0 });
      const claimer = await device(server.url, ca, suite);
      const claimed = await claimer.ds.claim(clientId.userId(), suite);
      expect(claimed.keyPackages).toHaveLength(1);
      expect(claimed.keyPackages[0]?.clientId).toBe(clientId.toString());
    },
    60_000,
  );

  it("accepts a package generated by a session with Credential.x509 and uploaded by the client", async () => {
    const clientId = newClientId();
    const cert = await ca.issueDevice({ clientId, handle: "dora", algorithm: "P-256" });
    const credential = Credential.x509(SUITE2, {
      certificateChain: cert.chainPem,
      privateKey: cert.privateKeyPem as string,
    });
    expect(credential.publicKey).toEqual(cert.publicKey);
    const cc = await CoreCrypto.open(await Database.inMemory());
    const kp = await cc.transaction(async (tx) => tx.generateKeypackage(await tx.addCredential(credential)));
    const ds = await register(server.url, clientId, SUITE2, credential.publicKey);
    expect((await ds.upload([kp])).refs).toEqual([kp.ref().hex()]);
  }, 60_000);

  it("refuses an expired certificate, and one not yet valid", async () => {
    const now = Date.now();
    const expired = await device(server.url, ca, SUITE1, {
      notBefore: new Date(now - 30 * DAY),
      notAfter: new Date(now - DAY),
    });
    expect(
      await rules(expired.ds.upload([await x509Package(SUITE1, expired.cert.chain, keyOf(expired.cert))])),
    ).toEqual(["x509_expired"]);
    const early = await device(server.url, ca, SUITE1, {
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 30 * DAY),
    });
    expect(
      await rules(early.ds.upload([await x509Package(SUITE1, early.cert.chain, keyOf(early.cert))])),
    ).toEqual(["x509_not_yet_valid"]);
  }, 60_000);

  it("refuses a certificate of an unknown root", async () => {
    const other = await createDevCa({ organization: "elsewhere" });
    const d = await device(server.url, other, SUITE2);
    expect(await rules(d.ds.upload([await x509Package(SUITE2, d.cert.chain, keyOf(d.cert))]))).toEqual([
      "x509_untrusted",
    ]);
  }, 60_000);

  it("refuses a certificate naming another client id", async () => {
    const clientId = newClientId();
    const cert = await ca.issueDevice({ clientId: newClientId(), handle: "eve" });
    const ds = await register(server.url, clientId, SUITE1, cert.publicKey);
    expect(await rules(ds.upload([await x509Package(SUITE1, cert.chain, keyOf(cert))]))).toEqual([
      "x509_client_id_mismatch",
    ]);
  }, 60_000);

  it("refuses a leaf key that is not the registered key, and a certificate of another key", async () => {
    // The package is signed with the certificate's key, but another key is registered.
    const clientId = newClientId();
    const cert = await ca.issueDevice({ clientId, handle: "bob" });
    const registered = generateSignatureKeyPair(signatureSchemeOf(SUITE1));
    const ds = await register(server.url, clientId, SUITE1, registered.publicKey);
    expect(await rules(ds.upload([await x509Package(SUITE1, cert.chain, keyOf(cert))]))).toEqual([
      "signature_key_mismatch",
    ]);
    // The package is signed with the registered key, but the certificate certifies another key.
    expect(await rules(ds.upload([await x509Package(SUITE1, cert.chain, registered)]))).toEqual([
      "x509_key_mismatch",
    ]);
  }, 60_000);

  it("refuses a revoked certificate (CRL given to the DS) and a wrong key usage", async () => {
    const ds = await register(server.url, revokedClient, SUITE1, revoked.publicKey);
    expect(await rules(ds.upload([await x509Package(SUITE1, revoked.chain, keyOf(revoked))]))).toEqual([
      "x509_revoked",
    ]);
    const wrong = await device(server.url, ca, SUITE1, { keyUsage: ["keyEncipherment"] });
    expect(
      await rules(wrong.ds.upload([await x509Package(SUITE1, wrong.cert.chain, keyOf(wrong.cert))])),
    ).toEqual(["x509_key_usage"]);
  }, 60_000);

  it("names each refused package of a mixed upload, and still accepts Basic packages", async () => {
    const { cert, ds } = await device(server.url, ca, SUITE1);
    const bad = await ca.issueDevice({ clientId: newClientId(), handle: "x" });
    const good = await x509Package(SUITE1, cert.chain, keyOf(cert));
    const other = await x509Package(SUITE1, bad.chain, keyOf(cert));
    const err = (await ds.upload([good, other]).catch((e: unknown) => e)) as DeliveryServiceError;
    expect(err.rejected.map((r) => [r.index, r.rule])).toEqual([[1, "x509_client_id_mismatch"]]);
    expect(await ds.count(SUITE1)).toEqual({ count: 0, lastResort: 0 });

    const clientId = newClientId();
    const basic = Credential.basic(SUITE1, clientId);
    const bds = await register(server.url, clientId, SUITE1, basic.publicKey);
    const now = Math.floor(Date.now() / 1000);
    expect(
      (await bds.upload([await craft(basic, { notBefore: now - 60, notAfter: now + 86_400 })])).refs,
    ).toHaveLength(1);
  }, 60_000);

  it("refuses X509 without a trust anchor, and Basic with requireX509", async () => {
    const plain = await startServer(await memoryStore(), { verifyWorkers: 0 });
    const strict = await startServer(await memoryStore(), {
      trustAnchors: [ca.root.der],
      requireX509: true,
      verifyWorkers: 0,
    });
    try {
      const d = await device(plain.url, ca, SUITE1);
      expect(await rules(d.ds.upload([await x509Package(SUITE1, d.cert.chain, keyOf(d.cert))]))).toEqual([
        "credential_type",
      ]);
      const clientId = newClientId();
      const basic = Credential.basic(SUITE1, clientId);
      const bds = await register(strict.url, clientId, SUITE1, basic.publicKey);
      const now = Math.floor(Date.now() / 1000);
      expect(
        await rules(bds.upload([await craft(basic, { notBefore: now - 60, notAfter: now + 86_400 })])),
      ).toEqual(["x509_required"]);
      const x = await device(strict.url, ca, SUITE1);
      expect((await x.ds.upload([await x509Package(SUITE1, x.cert.chain, keyOf(x.cert))])).refs).toHaveLength(
        1,
      );
    } finally {
      await plain.close();
      await strict.close();
    }
    await expect(startServer(await memoryStore(), { requireX509: true, verifyWorkers: 0 })).rejects.toThrow(
      /requireX509 needs at least one trust anchor/,
    );
  }, 60_000);

  it("renews a certificate by a signature key rotation: the new chain is checked, the old packages go", async () => {
    const { clientId, cert, ds } = await device(server.url, ca, SUITE2);
    await ds.upload(await Promise.all([1, 2].map(() => x509Package(SUITE2, cert.chain, keyOf(cert)))));
    const impl = await ciphersuiteImpl(SUITE2);
    const rotate = (next: DevDeviceCertificate, packages: Uint8Array[]) =>
      ds.rotateSignatureKey({
        ciphersuite: SUITE2,
        oldSignatureKey: cert.publicKey,
        newSignatureKey: next.publicKey,
        sign: (content) =>
          signWithLabel(
            next.signaturePrivateKey as Uint8Array,
            ROTATION_PROOF_LABEL,
            content,
            impl.signature,
          ),
        keyPackages: packages,
      });
    // A renewal with an expired certificate is refused like an upload; nothing changes.
    const now = Date.now();
    const stale = await ca.issueDevice({
      clientId,
      handle: "alice",
      algorithm: "P-256",
      notBefore: new Date(now - 30 * DAY),
      notAfter: new Date(now - DAY),
    });
    expect(await rules(rotate(stale, [await x509Package(SUITE2, stale.chain, keyOf(stale))]))).toEqual([
      "x509_expired",
    ]);
    expect(await ds.count(SUITE2)).toEqual({ count: 2, lastResort: 0 });
    const renewed = await ca.issueDevice({ clientId, handle: "alice", algorithm: "P-256" });
    const r = await rotate(renewed, [await x509Package(SUITE2, renewed.chain, keyOf(renewed))]);
    expect(r).toMatchObject({ deleted: 2 });
    expect(r.refs).toHaveLength(1);
    expect(await ds.count(SUITE2)).toEqual({ count: 1, lastResort: 0 });
    // The old certificate's packages are refused now (its key is no longer the registered one).
    expect(await rules(ds.upload([await x509Package(SUITE2, cert.chain, keyOf(cert))]))).toEqual([
      "signature_key_mismatch",
    ]);
  }, 60_000);

  it("validates a chain once for many packages (cache per chain and anchor set), and again after the TTL", async () => {
    const clientId = newClientId();
    const cert = await ca.issueDevice({ clientId, handle: "carol" });
    const policy = new X509UploadPolicy({ trustAnchors: [ca.root.pem], ttlMs: 60_000 });
    const now = new Date();
    const verdicts = await Promise.all(
      Array.from({ length: 20 }, () => policy.check(cert.chain, cert.publicKey, clientId.toString(), now)),
    );
    expect(verdicts.every((v) => v.ok)).toBe(true);
    expect(policy.validations).toBe(1);
    expect(
      (await policy.check(cert.chain, cert.publicKey, clientId.toString(), new Date(now.getTime() + 30_000)))
        .ok,
    ).toBe(true);
    expect(policy.validations).toBe(1);
    // After the TTL, and when the leaf has expired at the DS clock, the chain is validated again.
    expect(
      (await policy.check(cert.chain, cert.publicKey, clientId.toString(), new Date(now.getTime() + 61_000)))
        .ok,
    ).toBe(true);
    expect(policy.validations).toBe(2);
    const late = new Date(cert.notAfter.getTime() + 1000);
    expect(await policy.check(cert.chain, cert.publicKey, clientId.toString(), late)).toMatchObject({
      ok: false,
      rule: "x509_expired",
    });
    expect(policy.validations).toBe(3);
    // The same failing chain in the same second is answered from the cache.
    await policy.check(cert.chain, cert.publicKey, clientId.toString(), late);
    expect(policy.validations).toBe(3);
  }, 60_000);
});

describe("X.509 chains on the verification workers", () => {
  it("validates chains in a worker, and refuses malformed and identity-less chains", async () => {
    const ca = await createDevCa();
    const other = await createDevCa();
    const clientId = newClientId();
    const good = await ca.issueDevice({ clientId, handle: "w" });
    const stranger = await other.issueDevice({ clientId, handle: "w" });
    const pool = new WorkerVerifier(1);
    try {
      const results = await pool.validateChains(
        [good.chain, stranger.chain],
        { anchors: [ca.root.der] },
        Date.now(),
      );
      expect(results.map((r) => r.status)).toEqual(["valid", "invalid"]);
      expect(results[0]?.identity?.clientId).toBe(clientId.toString());
      expect(results[0]?.leafPublicKey).toEqual(good.publicKey);
      expect(pool.pending).toBe(0);
      // Through the upload policy: the chain is validated on the pool.
      const policy = new X509UploadPolicy({ trustAnchors: [ca.root.pem] });
      const now = new Date();
      expect(await policy.check(good.chain, good.publicKey, clientId.toString(), now, pool)).toEqual({
        ok: true,
      });
      expect(
        await policy.check(stranger.chain, stranger.publicKey, clientId.toString(), now, pool),
      ).toMatchObject({
        ok: false,
        rule: "x509_untrusted",
      });
      expect(
        await policy.check([randomBytes(64)], good.publicKey, clientId.toString(), now, pool),
      ).toMatchObject({
        ok: false,
        rule: "x509_malformed",
      });
      expect(await policy.check([], good.publicKey, clientId.toString(), now, pool)).toMatchObject({
        ok: false,
        rule: "x509_malformed",
      });
      // A CA certificate names no client id.
      expect(
        await policy.check([ca.intermediate.der], good.publicKey, clientId.toString(), now, pool),
      ).toMatchObject({
        ok: false,
        rule: "x509_no_client_id",
      });
    } finally {
      await pool.close();
    }
    await expect(pool.validateChains([good.chain], { anchors: [ca.root.der] }, Date.now())).rejects.toThrow(
      /closed/,
    );
  }, 90_000);

  it("serves an upload through its own worker pool", async () => {
    const ca = await createDevCa();
    const server = await startServer(await memoryStore(), { trustAnchors: [ca.root.pem], verifyWorkers: 1 });
    try {
      const d = await device(server.url, ca, SUITE7);
      const packages = await Promise.all([1, 2].map(() => x509Package(SUITE7, d.cert.chain, keyOf(d.cert))));
      expect((await d.ds.upload(packages)).refs).toHaveLength(2);
      const other = await createDevCa();
      const e = await device(server.url, other, SUITE7);
      expect(await rules(e.ds.upload([await x509Package(SUITE7, e.cert.chain, keyOf(e.cert))]))).toEqual([
        "x509_untrusted",
      ]);
    } finally {
      await server.close();
    }
  }, 90_000);
});

describe("mlskp serve --trust-anchor --crl --require-x509", () => {
  it("refuses --require-x509 without a trust anchor, and an unreadable anchor", () => {
    const run = (args: string[]) =>
      spawnSync(
        process.execPath,
        [join(ROOT, "bin/mlskp.js"), "serve", "--db", ":memory:", "--port", "0", ...args],
        {
          env: { ...process.env, MLSKP_USE_SOURCE: "1", MLSKP_ENROLLMENT_SECRET: SECRET },
          encoding: "utf8",
          timeout: 60_000,
        },
      );
    const noAnchor = run(["--require-x509"]);
    expect(noAnchor.status).toBe(1);
    expect(noAnchor.stderr).toMatch(/--require-x509 needs at least one --trust-anchor/);
    const dir = mkdtempSync(join(tmpdir(), "mlskp-x509-"));
    try {
      writeFileSync(join(dir, "bad.der"), "not a certificate\n");
      const bad = run(["--trust-anchor", join(dir, "bad.der")]);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/trust anchor 1 does not decode/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it("accepts X509 packages chaining to the anchor and refuses Basic and revoked ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-x509-"));
    let stop = async (): Promise<void> => undefined;
    try {
      const ca = await createDevCa();
      const revokedClient = newClientId();
      const revoked = await ca.issueDevice({ clientId: revokedClient, handle: "r" });
      ca.revoke(revoked);
      writeFileSync(join(dir, "root.pem"), ca.root.pem);
      writeFileSync(join(dir, "crl.der"), (await ca.crl()).der);
      const s = await spawnCli(
        [
          "--db",
          ":memory:",
          "--trust-anchor",
          join(dir, "root.pem"),
          "--crl",
          join(dir, "crl.der"),
          "--require-x509",
        ],
        { MLSKP_ENROLLMENT_SECRET: SECRET },
      );
      stop = s.stop;
      const d = await device(s.url, ca, SUITE2);
      expect((await d.ds.upload([await x509Package(SUITE2, d.cert.chain, keyOf(d.cert))])).refs).toHaveLength(
        1,
      );
      const clientId = newClientId();
      const basic = Credential.basic(SUITE1, clientId);
      const bds = await register(s.url, clientId, SUITE1, basic.publicKey);
      const now = Math.floor(Date.now() / 1000);
      expect(
        await rules(bds.upload([await craft(basic, { notBefore: now - 60, notAfter: now + 86_400 })])),
      ).toEqual(["x509_required"]);
      const rds = await register(s.url, revokedClient, SUITE1, revoked.publicKey);
      expect(await rules(rds.upload([await x509Package(SUITE1, revoked.chain, keyOf(revoked))]))).toEqual([
        "x509_revoked",
      ]);
    } finally {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
