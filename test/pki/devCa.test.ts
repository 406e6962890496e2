import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { ClientId } from "../../src/credential/clientId.js";
import { createDevCa, devKeyAlgorithmFor, type DevKeyAlgorithm } from "../../src/pki/devCa.js";
import { parseWireClientIdUri, parseWireHandleUri, wireClientIdUri } from "../../src/pki/wireUri.js";
import { Ciphersuite } from "../../src/mls/ciphersuite.js";

const CLIENT = "0d8d0b6c-3a2b-4c1d-9e8f-7a6b5c4d3e2f:9ff0457928ebe5f4@wire.example";

function publicOf(alg: DevKeyAlgorithm, priv: Uint8Array): Uint8Array {
  switch (alg) {
    case "Ed25519":
      return ed25519.getPublicKey(priv);
    case "P-256":
      return p256.getPublicKey(priv, false);
    case "P-384":
      return p384.getPublicKey(priv, false);
    case "P-521":
      return p521.getPublicKey(priv, false);
  }
}

describe("development CA", () => {
  it("formats and parses Wire SAN URIs as CoreCrypto reads them", () => {
    const uri = wireClientIdUri(CLIENT);
    expect(uri).toMatch(/^wireapp:\/\/[A-Za-z0-9_-]{22}%219ff0457928ebe5f4@wire\.example$/);
    expect(parseWireClientIdUri(uri)).toEqual({
      userId: "0d8d0b6c-3a2b-4c1d-9e8f-7a6b5c4d3e2f",
      deviceId: "9ff0457928ebe5f4",
      domain: "wire.example",
    });
    // CoreCrypto's own test vector (e2e-identity identity/mod.rs): obakjPOHQ2CkNb0rOrNM3A%21ba54e8ace8b4c90d@wire.com
    expect(parseWireClientIdUri("wireapp://obakjPOHQ2CkNb0rOrNM3A%21ba54e8ace8b4c90d@wire.com")).toEqual({
      userId: "a1b6a48c-f387-4360-a435-bd2b3ab34cdc",
      deviceId: "ba54e8ace8b4c90d",
      domain: "wire.com",
    });
    expect(parseWireClientIdUri("wireapp://%40alice_wire@wire.com")).toBeUndefined();
    expect(parseWireHandleUri("wireapp://%40alice_wire@wire.com")).toEqual({
      handle: "alice_wire",
      domain: "wire.com",
    });
  });

  it.each(["Ed25519", "P-256", "P-384", "P-521"] as const)(
    "issues %s device certificates that chain to the root",
    async (alg) => {
      const ca = await createDevCa();
      const dev = await ca.issueDevice({
        clientId: ClientId.parse(CLIENT),
        handle: "alice",
        displayName: "Alice Smith",
        algorithm: alg,
      });
      const leaf = new x509.X509Certificate(dev.der);
      const inter = new x509.X509Certificate(ca.intermediate.der);
      const root = new x509.X509Certificate(ca.root.der);
      expect(await leaf.verify({ publicKey: inter, signatureOnly: true })).toBe(true);
      expect(await inter.verify({ publicKey: root, signatureOnly: true })).toBe(true);
      expect(await root.verify({ signatureOnly: true })).toBe(true);
      expect(leaf.subject).toBe("O=wire.example, CN=Alice Smith");
      const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
      expect(san?.names.items.map((n) => n.value).sort()).toEqual([dev.clientIdUri, dev.handleUri].sort());
      expect(dev.chain).toHaveLength(2);
      expect(publicOf(alg, dev.signaturePrivateKey!)).toEqual(dev.publicKey);
      expect(dev.privateKeyPem).toContain("BEGIN PRIVATE KEY");
    },
  );

  it("certifies a given public key, sets validity and key usage, issues from the root, and lists revoked serials in a signed CRL", async () => {
    const now = Date.UTC(2030, 0, 1);
    const ca = await createDevCa({ now, algorithm: "Ed25519" });
    const key = p256.getPublicKey(p256.utils.randomSecretKey(), false);
    const dev = await ca.issueDevice({
      clientId: CLIENT,
      handle: "bob",
      algorithm: devKeyAlgorithmFor(Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256),
      publicKey: key,
      notBefore: new Date(now - 10 * 86_400_000),
      notAfter: new Date(now - 86_400_000),
      keyUsage: ["keyEncipherment"],
      issuer: "root",
    });
    expect(dev.publicKey).toEqual(key);
    expect(dev.signaturePrivateKey).toBeUndefined();
    expect(dev.chain).toHaveLength(1);
    expect(dev.notAfter.getTime()).toBe(now - 86_400_000);
    const leaf = new x509.X509Certificate(dev.der);
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.keyEncipherment);
    expect(await leaf.verify({ publicKey: new x509.X509Certificate(ca.root.der), signatureOnly: true })).toBe(
      true,
    );

    const revokedDev = await ca.issueDevice({ clientId: CLIENT, handle: "bob" });
    ca.revoke(revokedDev);
    const crl = await ca.crl();
    const parsed = new x509.X509Crl(crl.der);
    expect(await parsed.verify({ publicKey: new x509.X509Certificate(ca.intermediate.der) })).toBe(true);
    expect(parsed.findRevoked(revokedDev.serialNumber)).not.toBeNull();
    expect(crl.revoked).toEqual([revokedDev.serialNumber]);
  });
});
