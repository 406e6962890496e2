import { describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  CredentialRef,
  CredentialType,
  Database,
  ErrorCode,
  SignatureScheme,
  signatureSchemeOf,
} from "../../src/index.js";
import { ALICE, BOB, memorySession, withCredential } from "../helpers/session.js";

describe("ClientId", () => {
  it("parses and formats Wire's <user-uuid>:<device-id-hex>@<domain>", () => {
    const id = ClientId.parse("3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.com");
    expect(id.wireParts()).toEqual({
      userId: "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a",
      deviceId: "4d2a",
      domain: "wire.com",
    });
    expect(ClientId.format("3C4A8BD6-9B53-4C2F-8F36-4C8F8E5C5B1A", 0x4d2an, "wire.com").equals(id)).toBe(
      true,
    );
    expect(new TextDecoder().decode(id.bytes())).toBe("3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.com");
  });

  it.each([
    "",
    "nope",
    "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:xyz@wire.com",
    "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@",
  ])("rejects %j with InvalidClientId", (text) => {
    expect(() => ClientId.parse(text)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidClientId }));
  });

  it("accepts opaque bytes", () => {
    const id = ClientId.fromBytes(new Uint8Array([0xff, 0x00, 0x01]));
    expect(id.toString()).toBe("0xff0001");
    expect(() => id.wireParts()).toThrow(expect.objectContaining({ code: ErrorCode.InvalidClientId }));
  });
});

describe("signature schemes", () => {
  it("maps suites to RFC 9420 schemes", () => {
    expect(signatureSchemeOf(1)).toBe(SignatureScheme.ED25519);
    expect(signatureSchemeOf(2)).toBe(0x0403);
    expect(signatureSchemeOf(3)).toBe(0x0807);
    expect(signatureSchemeOf(4)).toBe(0x0808);
    expect(signatureSchemeOf(5)).toBe(0x0603);
    expect(signatureSchemeOf(6)).toBe(0x0808);
    expect(signatureSchemeOf(7)).toBe(0x0503);
    expect(() => signatureSchemeOf(99 as Ciphersuite)).toThrow(
      expect.objectContaining({ code: "UnsupportedCiphersuite" }),
    );
  });
});

describe("credentials", () => {
  it("Credential.basic makes a fresh key pair each time", () => {
    const a = Credential.basic(Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, ALICE);
    const b = Credential.basic(Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, ALICE);
    expect(a.publicKey).not.toEqual(b.publicKey);
    expect(a.type).toBe(CredentialType.Basic);
    expect(String(a)).not.toContain("privateKey");
  });

  it("CredentialRef accessors, publicKeyHash = SHA-256(public key)", async () => {
    const { cc } = await memorySession();
    const ref = await withCredential(cc, Ciphersuite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384);
    expect(ref.clientId().equals(ALICE)).toBe(true);
    expect(ref.ciphersuite()).toBe(7);
    expect(ref.signatureScheme()).toBe(SignatureScheme.ECDSA_SECP384R1_SHA384);
    expect(ref.type()).toBe(CredentialType.Basic);
    expect(ref.publicKeyHash()).toEqual(sha256(ref.publicKey()));
  });

  it("findCredentials filters by client id, suite, type and public key", async () => {
    const { cc } = await memorySession();
    const a1 = await withCredential(cc, 1, ALICE);
    const a2 = await withCredential(cc, 2, ALICE);
    const b1 = await withCredential(cc, 1, BOB);
    await cc.transaction(async (tx) => {
      expect(await tx.findCredentials()).toHaveLength(3);
      expect((await tx.findCredentials({ clientId: ALICE })).map((r) => r.ciphersuite()).sort()).toEqual([
        1, 2,
      ]);
      expect(await tx.findCredentials({ ciphersuite: 1 })).toHaveLength(2);
      expect(await tx.findCredentials({ credentialType: CredentialType.X509 })).toHaveLength(0);
      const [only] = await tx.findCredentials({ publicKey: b1.publicKey() });
      expect(only?.equals(b1)).toBe(true);
      expect((await tx.findCredentials({ clientId: ALICE, ciphersuite: 2 }))[0]?.equals(a2)).toBe(true);
      expect(a1.equals(a2)).toBe(false);
    });
  });

  it("serializes and parses back; stays valid across transactions and sessions on the same database", async () => {
    const database = await Database.inMemory();
    const cc1 = await CoreCrypto.open(database);
    const ref = await withCredential(cc1, 3);
    const parsed = CredentialRef.deserialize(ref.serialize());
    expect(parsed.equals(ref)).toBe(true);
    expect(parsed.clientId().equals(ref.clientId())).toBe(true);
    const cc2 = await CoreCrypto.open(database);
    const kp = await cc2.transaction((tx) => tx.generateKeypackage(parsed));
    expect(kp.ciphersuite()).toBe(3);
  });

  it("rejects malformed serialized refs", () => {
    expect(() => CredentialRef.deserialize(new Uint8Array([9, 9]))).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidCredentialRef }),
    );
  });
});
