import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import { describe, expect, it } from "vitest";
import {
  Ciphersuite,
  CredentialType,
  Credential,
  ErrorCode,
  MlsKeypackagesError,
  MlsRuleError,
} from "../../src/index.js";
import { memorySession, TestClock } from "../helpers/session.js";
import { DAY, device, testCa, wireId, x509Credential } from "./helpers.js";

const SUITES = [1, 2, 3, 5, 7] as Ciphersuite[];

function ruleOf(f: () => unknown): { code: string; rule: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof MlsRuleError) return { code: e.code, rule: e.rule };
    throw e;
  }
  throw new Error("expected an error");
}

describe("Credential.x509", () => {
  it.each(SUITES)(
    "suite %i: PEM chain + PKCS#8 PEM, DER chain + raw key give the same credential",
    async (suite) => {
      const ca = await testCa();
      const dev = await device(ca, 1, suite);
      const a = x509Credential(suite, dev);
      const b = Credential.x509(suite, {
        certificateChain: dev.chain,
        privateKey: dev.signaturePrivateKey as Uint8Array,
      });
      const c = Credential.x509(suite, {
        certificateChain: dev.chain,
        privateKey: dev.privateKeyPkcs8 as Uint8Array,
      });
      expect(a.type).toBe(CredentialType.X509);
      expect(a.clientId.equals(wireId(1))).toBe(true);
      expect(a.publicKey).toEqual(dev.publicKey);
      expect(a.certificateChain).toHaveLength(2);
      expect(b.encoded).toEqual(a.encoded);
      expect(c.encoded).toEqual(a.encoded);
      expect(b.signaturePrivateKey()).toEqual(a.signaturePrivateKey());
    },
  );

  it("refuses an empty, undecodable or out-of-order chain", async () => {
    const ca = await testCa();
    const dev = await device(ca, 1, 1);
    const key = dev.privateKeyPem as string;
    expect(ruleOf(() => Credential.x509(1, { certificateChain: [], privateKey: key }))).toEqual({
      code: ErrorCode.InvalidCertificate,
      rule: "x509_empty_chain",
    });
    expect(
      ruleOf(() => Credential.x509(1, { certificateChain: [new Uint8Array([1, 2, 3])], privateKey: key }))
        .rule,
    ).toBe("x509_parse");
    expect(ruleOf(() => Credential.x509(1, { certificateChain: "not pem", privateKey: key })).rule).toBe(
      "x509_parse",
    );
    const reversed = [...dev.chain].reverse();
    expect(ruleOf(() => Credential.x509(1, { certificateChain: reversed, privateKey: key }))).toEqual({
      code: ErrorCode.InvalidCertificate,
      rule: "x509_chain_order",
    });
    // A leaf followed by the root (not its issuer) is out of order too.
    expect(
      ruleOf(() => Credential.x509(1, { certificateChain: [dev.der, ca.root.der], privateKey: key })).rule,
    ).toBe("x509_chain_order");
  });

  it("refuses a private key that is not the leaf's, or a key of another scheme", async () => {
    const ca = await testCa();
    const dev = await device(ca, 1, 1);
    const other = await device(ca, 2, 1);
    expect(
      ruleOf(() =>
        Credential.x509(1, { certificateChain: dev.chain, privateKey: other.privateKeyPem as string }),
      ),
    ).toEqual({ code: ErrorCode.CertificateKeyMismatch, rule: "x509_key_mismatch" });
    // An Ed25519 certificate for a P-256 suite.
    expect(
      ruleOf(() =>
        Credential.x509(2, { certificateChain: dev.chain, privateKey: dev.privateKeyPem as string }),
      ),
    ).toEqual({ code: ErrorCode.CertificateKeyMismatch, rule: "x509_signature_scheme" });
    // A P-256 key for an Ed25519 certificate.
    const p256 = await device(ca, 3, 2);
    expect(
      ruleOf(() =>
        Credential.x509(1, { certificateChain: dev.chain, privateKey: p256.privateKeyPem as string }),
      ),
    ).toEqual({ code: ErrorCode.CertificateKeyMismatch, rule: "x509_signature_scheme" });
  });

  it("refuses a certificate without a Wire client id in its SAN", async () => {
    const ca = await testCa();
    // The intermediate CA certificate has no SAN at all.
    const err = ruleOf(() =>
      Credential.x509(2, {
        certificateChain: [ca.intermediate.der],
        privateKey: ca.intermediate.privateKeyPem as string,
      }),
    );
    expect(err).toEqual({ code: ErrorCode.InvalidCertificate, rule: "san_client_id" });
  });

  it("is stored, found by type and removed like a Basic credential", async () => {
    const ca = await testCa();
    const { cc } = await memorySession();
    const x = x509Credential(1, await device(ca, 1, 1));
    const b = Credential.basic(1, wireId(2));
    const [xr, br] = await cc.transaction(async (tx) => [
      await tx.addCredential(x),
      await tx.addCredential(b),
    ]);
    const found = await cc.transaction((tx) => tx.findCredentials({ credentialType: CredentialType.X509 }));
    expect(found).toHaveLength(1);
    expect(found[0]?.equals(xr)).toBe(true);
    expect(found[0]?.type()).toBe(CredentialType.X509);
    expect(found[0]?.clientId().equals(wireId(1))).toBe(true);
    const basics = await cc.transaction((tx) => tx.findCredentials({ credentialType: CredentialType.Basic }));
    expect(basics.map((r) => r.equals(br))).toEqual([true]);
    await cc.transaction((tx) => tx.removeCredential(xr));
    expect(await cc.transaction((tx) => tx.findCredentials({ credentialType: CredentialType.X509 }))).toEqual(
      [],
    );
  });
});

describe("key packages of X.509 credentials", () => {
  it("never outlive the certificate: not_after capped at its notAfter", async () => {
    const ca = await testCa();
    const now = Date.now();
    const dev = await device(ca, 1, 1, {
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 10 * DAY),
    });
    const { cc } = await memorySession(new TestClock(now));
    const ref = await cc.transaction((tx) => tx.addCredential(x509Credential(1, dev)));
    // Default lifetime (84 days) is capped at the certificate's 10 days…
    const kp = await cc.transaction((tx) => tx.generateKeypackage(ref));
    expect(kp.lifetime().notAfter.getTime()).toBe(Math.floor(dev.notAfter.getTime() / 1000) * 1000);
    expect(kp.credentialType()).toBe(CredentialType.X509);
    // …a shorter lifetime is kept, and batches are capped too.
    const short = await cc.transaction((tx) => tx.generateKeypackage(ref, 2 * DAY));
    expect(short.lifetime().notAfter.getTime()).toBeLessThan(dev.notAfter.getTime() - 7 * DAY);
    const batch = await cc.transaction((tx) => tx.generateKeypackages(ref, 3));
    for (const k of batch)
      expect(k.lifetime().notAfter.getTime()).toBeLessThanOrEqual(dev.notAfter.getTime());
  });

  it("are refused while the certificate is not yet valid or after it expired", async () => {
    const ca = await testCa();
    const now = Date.now();
    const dev = await device(ca, 1, 2, { notBefore: new Date(now + DAY), notAfter: new Date(now + 5 * DAY) });
    const { cc, clock } = await memorySession();
    clock.t = now;
    const ref = await cc.transaction((tx) => tx.addCredential(x509Credential(2, dev)));
    const attempt = () => cc.transaction((tx) => tx.generateKeypackage(ref));
    await expect(attempt()).rejects.toMatchObject({
      code: ErrorCode.InvalidCertificate,
      rule: "x509_not_yet_valid",
    });
    clock.t = now + 2 * DAY;
    const kp = await attempt();
    expect(kp.lifetime().notAfter.getTime()).toBeLessThanOrEqual(dev.notAfter.getTime());
    clock.t = now + 6 * DAY;
    const err = await attempt().catch((e: unknown) => e);
    expect(MlsKeypackagesError.is(err, ErrorCode.InvalidCertificate)).toBe(true);
    expect((err as MlsRuleError).rule).toBe("x509_expired");
    // Nothing was stored by the refused attempts.
    expect(await cc.transaction((tx) => tx.getKeypackageRefs())).toHaveLength(1);
  });
});
