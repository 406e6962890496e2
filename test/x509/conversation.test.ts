import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import { describe, expect, it } from "vitest";
import {
  Ciphersuite,
  CredentialType,
  DeviceStatus,
  E2eiConversationState,
  ErrorCode,
  jwkThumbprint,
  signatureSchemeOf,
  type MlsRuleError,
} from "../../src/index.js";
import { dec, keypackage, member, receive, send } from "../conversation/helpers.js";
import { DAY, device, testCa, wireId, x509Member, type X509Member } from "./helpers.js";

const ID = new TextEncoder().encode("x509-conversation");

async function addAndJoin(
  creator: X509Member,
  ...joiners: { cc: X509Member["cc"]; cred: X509Member["cred"] }[]
) {
  const kps = await Promise.all(joiners.map((j) => j.cc.transaction((tx) => tx.generateKeypackage(j.cred))));
  await creator.cc.transaction((tx) => tx.addClientsToConversation(ID, kps));
  const welcome = creator.transport.last().welcome as Uint8Array;
  for (const j of joiners) await j.cc.transaction((tx) => tx.processWelcomeMessage(welcome));
}

describe("X.509 conversations", () => {
  it.each([1, 2, 7] as Ciphersuite[])(
    "suite %i: members are validated, listed by their SAN client id and verified",
    async (suite) => {
      const ca = await testCa();
      const alice = await x509Member(ca, 1, suite);
      const bob = await x509Member(ca, 2, suite);
      await alice.cc.transaction((tx) => tx.createConversation(ID, alice.cred));
      await addAndJoin(alice, bob);
      expect(dec((await receive(bob, ID, await send(alice, ID, "hi"))).message)).toBe("hi");
      expect(dec((await receive(alice, ID, await send(bob, ID, "hello"))).message)).toBe("hello");

      const ids = await bob.cc.transaction((tx) => tx.getClientIds(ID));
      expect(ids.map(String)).toEqual([wireId(1).toString(), wireId(2).toString()]);
      for (const m of [alice, bob]) {
        expect(await m.cc.transaction((tx) => tx.conversationCredentialState(ID))).toBe(
          E2eiConversationState.Verified,
        );
      }
      const [identity] = await bob.cc.transaction((tx) => tx.getDeviceIdentities(ID, [wireId(1)]));
      expect(identity?.status).toBe(DeviceStatus.Valid);
      expect(identity?.credentialType).toBe(CredentialType.X509);
      expect(identity?.clientId?.toString()).toBe(wireId(1).toString());
      expect(identity?.x509Identity?.handle).toBe("wireapp://%40user_1@wire.example");
      expect(identity?.x509Identity?.displayName).toBe("User 1");
      expect(identity?.x509Identity?.domain).toBe("wire.example");
      expect(identity?.x509Identity?.certificate).toBe(
        alice.device.pem.replace(/\r\n/g, "\n").trimEnd() + "\n",
      );
      expect(identity?.x509Identity?.notAfter.getTime()).toBe(alice.device.notAfter.getTime());
      expect(identity?.thumbprint).toBe(
        jwkThumbprint(signatureSchemeOf(suite), alice.device.publicKey, suite === 7 ? "SHA-384" : "SHA-256"),
      );
      const users = await alice.cc.transaction((tx) => tx.getUserIdentities(ID, [wireId(2).userId()]));
      expect([...users.keys()]).toEqual([wireId(2).userId()]);
      expect(users.get(wireId(2).userId())?.[0]?.x509Identity?.handle).toBe(
        "wireapp://%40user_2@wire.example",
      );
      // Removing by the SAN client id works.
      await alice.cc.transaction((tx) => tx.removeClientsFromConversation(ID, [wireId(2)]));
      expect((await alice.cc.transaction((tx) => tx.getClientIds(ID))).map(String)).toEqual([
        wireId(1).toString(),
      ]);
    },
  );

  it("a Basic member makes the conversation NotVerified; no certificate at all is NotEnabled", async () => {
    const ca = await testCa();
    const alice = await x509Member(ca, 1);
    const basic = await member(9);
    await basic.cc.pki.addTrustAnchor(ca.root.der);
    await alice.cc.transaction((tx) => tx.createConversation(ID, alice.cred));
    await addAndJoin(alice, basic);
    expect(await alice.cc.transaction((tx) => tx.conversationCredentialState(ID))).toBe(
      E2eiConversationState.NotVerified,
    );
    const all = await alice.cc.transaction((tx) => tx.getDeviceIdentities(ID, [basic.clientId, wireId(1)]));
    expect(all.map((i) => i.credentialType)).toEqual([CredentialType.X509, CredentialType.Basic]);
    expect(all[1]?.status).toBe(DeviceStatus.Valid);
    const plain = new TextEncoder().encode("basic-only");
    await basic.cc.transaction((tx) => tx.createConversation(plain, basic.cred));
    expect(await basic.cc.transaction((tx) => tx.e2eiConversationState(plain))).toBe(
      E2eiConversationState.NotEnabled,
    );
    await expect(alice.cc.transaction((tx) => tx.getDeviceIdentities(ID, []))).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
  });

  it("refuses key packages whose certificate is expired, from an unknown root, or when no anchor is set", async () => {
    const ca = await testCa();
    const other = await testCa();
    const now = Date.now();
    const alice = await x509Member(ca, 1);
    await alice.cc.transaction((tx) => tx.createConversation(ID, alice.cred));
    const stranger = await x509Member(other, 2, 1, { anchors: false });
    const add = async (m: X509Member) => {
      const kp = await m.cc.transaction((tx) => tx.generateKeypackage(m.cred));
      return alice.cc.transaction((tx) => tx.addClientsToConversation(ID, [kp]));
    };
    const err = (await add(stranger).catch((e: unknown) => e)) as MlsRuleError;
    expect(err.code).toBe(ErrorCode.CredentialRejected);
    expect(err.message).toContain(wireId(2).toString());
    expect(err.details.reason).toMatch(/invalid, rfc5280_path/);

    // A certificate that expires while its key package waits.
    const short = await device(ca, 3, 1, { notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) });
    const late = await x509Member(ca, 3, 1, { dev: short });
    const kp = await late.cc.transaction((tx) => tx.generateKeypackage(late.cred));
    alice.clock.t = now + 2 * DAY;
    const expired = (await alice.cc
      .transaction((tx) => tx.addClientsToConversation(ID, [kp]))
      .catch((e: unknown) => e)) as MlsRuleError;
    // The key package's own lifetime (capped at the certificate) fails first, as a §10.1 check.
    expect(expired.code).toBe(ErrorCode.InvalidKeypackage);

    // No trust anchor: X.509 credentials cannot be validated and are refused.
    const lonely = await x509Member(ca, 4, 1, { anchors: false });
    await lonely.cc.transaction((tx) => tx.createConversation(ID, lonely.cred));
    const bob = await x509Member(ca, 5, 1);
    const kp5 = await bob.cc.transaction((tx) => tx.generateKeypackage(bob.cred));
    await expect(lonely.cc.transaction((tx) => tx.addClientsToConversation(ID, [kp5]))).rejects.toMatchObject(
      {
        code: ErrorCode.CredentialRejected,
      },
    );
  });

  it("reports members whose certificate expired or was revoked, and refuses revoked joiners", async () => {
    const ca = await testCa();
    const now = Date.now();
    const alice = await x509Member(ca, 1);
    const shortDev = await device(ca, 2, 1, {
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 3 * DAY),
    });
    const bob = await x509Member(ca, 2, 1, { dev: shortDev });
    const carol = await x509Member(ca, 3);
    await alice.cc.transaction((tx) => tx.createConversation(ID, alice.cred));
    await addAndJoin(alice, bob, carol);

    // Carol's certificate is revoked: a CRL listing it is added to Alice's PKI environment.
    ca.revoke(carol.device);
    await alice.cc.pki.addCrl((await ca.crl()).pem);
    // Bob's certificate expires.
    alice.clock.t = now + 4 * DAY;
    const ids = await alice.cc.transaction((tx) =>
      tx.getDeviceIdentities(ID, [wireId(1), wireId(2), wireId(3)]),
    );
    expect(ids.map((i) => [i.clientId?.toString(), i.status, i.x509Status])).toEqual([
      [wireId(1).toString(), DeviceStatus.Valid, "valid"],
      [wireId(2).toString(), DeviceStatus.Expired, "expired"],
      [wireId(3).toString(), DeviceStatus.Revoked, "revoked"],
    ]);
    expect(await alice.cc.transaction((tx) => tx.conversationCredentialState(ID))).toBe(
      E2eiConversationState.NotVerified,
    );

    // Existing members stay accepted (CoreCrypto's policy): Bob's update is processed.
    bob.clock.t = now + 4 * DAY;
    await bob.cc.pki.addCrl((await ca.crl()).pem);
    await bob.cc.transaction((tx) => tx.updateKeyingMaterial(ID));
    await alice.cc.transaction((tx) => tx.decryptMessage(ID, bob.transport.last().commit));

    // A revoked joiner is refused by default…
    const dave = await x509Member(ca, 4);
    ca.revoke(dave.device);
    await alice.cc.pki.addCrl((await ca.crl()).pem);
    const kp = await dave.cc.transaction((tx) => tx.generateKeypackage(dave.cred));
    const err = (await alice.cc
      .transaction((tx) => tx.addClientsToConversation(ID, [kp]))
      .catch((e: unknown) => e)) as MlsRuleError;
    expect(err.code).toBe(ErrorCode.CredentialRejected);
    expect(err.details.reason).toMatch(/revoked/);
  });

  it("policy: strict members refuse an expired member's update; allowRevokedJoiners admits a revoked joiner", async () => {
    const ca = await testCa();
    const now = Date.now();
    const alice = await x509Member(ca, 1, 1, {
      policy: { allowExpiredMembers: false, allowRevokedJoiners: true },
    });
    const dev = await device(ca, 2, 1, { notBefore: new Date(now - DAY), notAfter: new Date(now + 2 * DAY) });
    const bob = await x509Member(ca, 2, 1, { dev });
    await alice.cc.transaction((tx) => tx.createConversation(ID, alice.cred));
    await addAndJoin(alice, bob);
    await bob.cc.transaction((tx) => tx.updateKeyingMaterial(ID));
    alice.clock.t = now + 3 * DAY;
    await expect(
      alice.cc.transaction((tx) => tx.decryptMessage(ID, bob.transport.last().commit)),
    ).rejects.toMatchObject({
      code: ErrorCode.CredentialRejected,
    });
    alice.clock.t = now;
    const carol = await x509Member(ca, 3);
    ca.revoke(carol.device);
    await alice.cc.pki.addCrl((await ca.crl()).der);
    const kp = await keypackage(carol);
    await alice.cc.transaction((tx) => tx.addClientsToConversation(ID, [kp]));
    const [c] = await alice.cc.transaction((tx) => tx.getDeviceIdentities(ID, [wireId(3)]));
    expect(c?.status).toBe(DeviceStatus.Revoked);
  });

  it("joining a tree validates every X.509 leaf; external joiners are validated too", async () => {
    const ca = await testCa();
    const other = await testCa();
    // Alice does not enforce X.509 (policy), so a member from an unknown root gets in…
    const alice = await x509Member(ca, 1, 1, { policy: { enforce: false } });
    const alien = await x509Member(other, 2, 1, { anchors: false });
    await alice.cc.transaction((tx) => tx.createConversation(ID, alice.cred));
    await alice.cc.transaction(async (tx) =>
      tx.addClientsToConversation(ID, [await alien.cc.transaction((t) => t.generateKeypackage(alien.cred))]),
    );
    // …and Carol, who trusts only Alice's CA, refuses the tree that holds it.
    const carol = await x509Member(ca, 3);
    const kp = await keypackage(carol);
    await alice.cc.transaction((tx) => tx.addClientsToConversation(ID, [kp]));
    const welcome = alice.transport.last().welcome as Uint8Array;
    const err = (await carol.cc
      .transaction((tx) => tx.processWelcomeMessage(welcome))
      .catch((e: unknown) => e)) as MlsRuleError;
    expect(err.code).toBe(ErrorCode.CredentialRejected);
    expect(String(err.details.reason)).toContain(wireId(2).toString());
    expect(await carol.cc.transaction((tx) => tx.conversationExists(ID))).toBe(false);

    // External joins into a conversation whose members validate X.509: Dave (our CA) gets in,
    // Eve (unknown root) is refused by the members.
    const id2 = new TextEncoder().encode("x509-external");
    const bob = await x509Member(ca, 4);
    await bob.cc.transaction((tx) => tx.createConversation(id2, bob.cred));
    await bob.cc.transaction((tx) => tx.updateKeyingMaterial(id2));
    const dave = await x509Member(ca, 5);
    await dave.cc.transaction((tx) => tx.joinByExternalCommit(bob.transport.last().groupInfo, dave.cred));
    await bob.cc.transaction((tx) => tx.decryptMessage(id2, dave.transport.last().commit));
    expect((await bob.cc.transaction((tx) => tx.getClientIds(id2))).map(String)).toEqual([
      wireId(4).toString(),
      wireId(5).toString(),
    ]);
    const eve = await x509Member(other, 6, 1, { anchors: false });
    await eve.cc.pki.addTrustAnchor(ca.root.pem); // Eve trusts the group's CA, the group does not trust hers
    await eve.cc.transaction((tx) => tx.joinByExternalCommit(dave.transport.last().groupInfo, eve.cred));
    await expect(
      bob.cc.transaction((tx) => tx.decryptMessage(id2, eve.transport.last().commit)),
    ).rejects.toMatchObject({
      code: ErrorCode.CredentialRejected,
    });
  });

  it("the PKI environment is listed, removed and persisted per transaction", async () => {
    const ca = await testCa();
    const alice = await x509Member(ca, 1);
    await alice.cc.pki.addIntermediate(ca.intermediate.pem);
    await alice.cc.pki.addCrl((await ca.crl()).der);
    const entries = await alice.cc.pki.list();
    expect(entries.map((e) => e.kind)).toEqual(["anchor", "intermediate", "crl"]);
    expect(entries[0]?.name).toBe(ca.root.subject);
    // Adding twice is a no-op; a non-CA certificate is refused.
    await alice.cc.pki.addTrustAnchor(ca.root.der);
    expect(await alice.cc.pki.list("anchor")).toHaveLength(1);
    await expect(alice.cc.pki.addTrustAnchor(alice.device.pem)).rejects.toMatchObject({
      code: ErrorCode.InvalidCertificate,
      rule: "x509_not_ca",
    });
    // An aborted transaction leaves the environment as it was.
    await alice.cc
      .transaction(async (tx) => {
        await tx.removePkiEntry(entries[0]?.id as string);
        expect(await tx.getPkiEntries("anchor")).toEqual([]);
        throw new Error("abort");
      })
      .catch(() => undefined);
    expect(await alice.cc.pki.list("anchor")).toHaveLength(1);
    expect(await alice.cc.pki.remove(entries[0]?.id as string)).toBe(true);
    expect(await alice.cc.pki.remove(entries[0]?.id as string)).toBe(false);
    expect(await alice.cc.pki.list("anchor")).toEqual([]);
  });
});
