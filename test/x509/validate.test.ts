import { validateCertificateChain } from "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../src/keystore/sqlite.js";
import { CoreCrypto, Database, DatabaseKey, SignatureScheme } from "../../src/index.js";
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from "@peculiar/x509";
import { createDevCa } from "../../src/pki/devCa.js";
import { wireClientIdUri, wireHandleUri } from "../../src/pki/wireUri.js";
import { DAY, device, testCa, wireId } from "./helpers.js";

const NOW = () => new Date();

describe("validateCertificateChain (RFC 5280 path, Wire profile)", () => {
  it.each(["Ed25519", "P-256", "P-384", "P-521"] as const)(
    "%s CA: device certificates of every key type are valid",
    async (alg) => {
      const ca = await testCa(alg);
      for (const suite of [1, 2, 5, 7] as const) {
        const dev = await device(ca, suite, suite);
        const r = await validateCertificateChain(dev.chain, { anchors: [ca.root.der] }, NOW());
        expect(r.status, `${alg} CA, suite ${suite}`).toBe("valid");
        expect(r.identity?.clientId).toBe(wireId(suite).toString());
        expect(r.identity?.handle).toBe(`user_${suite}`);
        expect(r.identity?.displayName).toBe(`User ${suite}`);
        expect(r.identity?.domain).toBe("wire.example");
        expect(r.leafPublicKey).toEqual(dev.publicKey);
        expect(r.serialNumber.replace(/^00/, "")).toBe(dev.serialNumber.replace(/^00/, ""));
        expect(r.thumbprint).toMatch(/^[0-9a-f]{64}$/);
      }
    },
  );

  it("reports the signature scheme of the leaf key", async () => {
    const ca = await testCa();
    const r = await validateCertificateChain(
      (await device(ca, 1, 5)).chain,
      { anchors: [ca.root.der] },
      NOW(),
    );
    expect(r.signatureScheme).toBe(SignatureScheme.ECDSA_SECP521R1_SHA512);
  });

  it("expired, not yet valid, revoked (CRL), unknown root, wrong key usage, missing intermediate", async () => {
    const ca = await testCa();
    const now = Date.now();
    const trust = { anchors: [ca.root.der] };
    const expired = await device(ca, 1, 1, {
      notBefore: new Date(now - 10 * DAY),
      notAfter: new Date(now - DAY),
    });
    expect(await validateCertificateChain(expired.chain, trust, NOW())).toMatchObject({
      status: "expired",
      rule: "validity",
    });
    const future = await device(ca, 2, 1, {
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 10 * DAY),
    });
    expect(await validateCertificateChain(future.chain, trust, NOW())).toMatchObject({
      status: "not_yet_valid",
      rule: "validity",
    });
    // The same certificate is valid at a time inside its validity.
    expect((await validateCertificateChain(future.chain, trust, new Date(now + 2 * DAY))).status).toBe(
      "valid",
    );

    const revoked = await device(ca, 3, 1);
    const fine = await device(ca, 4, 1);
    ca.revoke(revoked);
    const crl = (await ca.crl()).der;
    expect(await validateCertificateChain(revoked.chain, { ...trust, crls: [crl] }, NOW())).toMatchObject({
      status: "revoked",
      rule: "crl",
    });
    expect((await validateCertificateChain(fine.chain, { ...trust, crls: [crl] }, NOW())).status).toBe(
      "valid",
    );
    // A CRL past its nextUpdate still revokes what it lists (revocation is permanent).
    const stale = (
      await ca.crl({ thisUpdate: new Date(now - 10 * DAY), nextUpdate: new Date(now - 3 * DAY) })
    ).der;
    expect((await validateCertificateChain(revoked.chain, { ...trust, crls: [stale] }, NOW())).status).toBe(
      "revoked",
    );
    // A CRL of another CA listing the same serial does not.
    const other2 = await createDevCa();
    other2.revoke(revoked.serialNumber);
    const foreign = (await other2.crl()).der;
    expect((await validateCertificateChain(revoked.chain, { ...trust, crls: [foreign] }, NOW())).status).toBe(
      "valid",
    );
    // Without the CRL the revoked certificate is not known to be revoked.
    expect((await validateCertificateChain(revoked.chain, trust, NOW())).status).toBe("valid");

    const other = await createDevCa();
    const alien = await other.issueDevice({ clientId: wireId(5), handle: "alien" });
    expect(await validateCertificateChain(alien.chain, trust, NOW())).toMatchObject({
      status: "invalid",
      rule: "rfc5280_path",
    });
    expect(await validateCertificateChain(alien.chain, { anchors: [] }, NOW())).toMatchObject({
      status: "invalid",
    });

    const encipher = await ca.issueDevice({
      clientId: wireId(6),
      handle: "x",
      keyUsage: ["keyEncipherment"],
    });
    expect(await validateCertificateChain(encipher.chain, trust, NOW())).toMatchObject({
      status: "invalid",
      rule: "key_usage",
    });

    // Leaf only: no path, unless the intermediate is in the trust store.
    expect((await validateCertificateChain([fine.der], trust, NOW())).status).toBe("invalid");
    const withIntermediate = { ...trust, intermediates: [ca.intermediate.der] };
    expect((await validateCertificateChain([fine.der], withIntermediate, NOW())).status).toBe("valid");
  });

  it("a certificate without a Wire client id, a broken one, an empty chain", async () => {
    const ca = await testCa();
    const trust = { anchors: [ca.root.der] };
    expect(await validateCertificateChain([ca.intermediate.der], trust, NOW())).toMatchObject({
      status: "invalid",
      rule: "san_client_id",
    });
    expect(
      await validateCertificateChain([new Uint8Array([0x30, 0x03, 1, 2, 3])], trust, NOW()),
    ).toMatchObject({
      status: "invalid",
      rule: "parse",
    });
    expect(await validateCertificateChain([], trust, NOW())).toMatchObject({
      status: "invalid",
      rule: "parse",
    });
    const dev = await device(ca, 1, 1);
    const broken = Uint8Array.from(dev.der);
    broken[broken.length - 2] = (broken.at(-2) as number) ^ 0xff;
    expect(await validateCertificateChain([broken, ...dev.chain.slice(1)], trust, NOW())).toMatchObject({
      status: "invalid",
    });
  });
});

describe("the PKI environment in a SQLite keystore", () => {
  it("survives closing and reopening the database", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mlskp-x509-"));
    try {
      const ca = await testCa();
      const path = join(dir, "pki.db");
      const key = DatabaseKey.generate();
      const cc = await CoreCrypto.open(await Database.open(path, key));
      await cc.pki.addTrustAnchor(ca.root.pem);
      await cc.pki.addIntermediate(ca.intermediate.der);
      await cc.pki.addCrl((await ca.crl()).pem);
      const before = await cc.pki.list();
      await cc.close();
      const again = await CoreCrypto.open(await Database.open(path, key));
      const after = await again.pki.list();
      expect(after.map((e) => [e.kind, e.id])).toEqual(before.map((e) => [e.kind, e.id]));
      expect(after[0]?.der).toEqual(ca.root.der);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("validateCertificateChain: CA basic constraints (RFC 5280 §4.2.1.9)", () => {
  it("refuses a leaf that is itself a CA certificate, even with a valid Wire identity", async () => {
    const ca = await testCa("P-256");
    const ecdsa = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
    const signingKey = await crypto.subtle.importKey(
      "pkcs8",
      Uint8Array.from(ca.intermediate.privateKeyPkcs8 as Uint8Array),
      ecdsa,
      false,
      ["sign"],
    );
    const keys = (await crypto.subtle.generateKey(ecdsa, true, ["sign", "verify"])) as CryptoKeyPair;
    const id = wireId(9);
    const leaf = await X509CertificateGenerator.create({
      serialNumber: "0badc0de",
      subject: "O=wire.example, CN=Not A Device",
      issuer: ca.intermediate.subject,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
      signingAlgorithm: ecdsa,
      publicKey: keys.publicKey,
      signingKey,
      extensions: [
        new BasicConstraintsExtension(true, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign, true),
        new SubjectAlternativeNameExtension([
          { type: "url", value: wireClientIdUri(id) },
          { type: "url", value: wireHandleUri("notadevice", "wire.example") },
        ]),
      ],
    });
    const chain = [new Uint8Array(leaf.rawData), ca.intermediate.der];
    expect(await validateCertificateChain(chain, { anchors: [ca.root.der] }, NOW())).toMatchObject({
      status: "invalid",
      rule: "basic_constraints",
    });
  });
});
