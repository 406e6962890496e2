/**
 * X.509 credentials between our library and the real CoreCrypto 10.3.0 with a PKI environment
 * (`PkiEnvironment.create`, `addTrustAnchor`, `setPkiEnvironment`) trusting our test CA.
 * CoreCrypto 10.3.0 can only obtain an X.509 credential through its ACME enrolment, so here it
 * always uses a Basic credential and validates ours (see docs/x509.md).
 */
import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import { describe, expect, it } from "vitest";
import {
  Credential,
  DeviceStatus,
  E2eiConversationState,
  ErrorCode,
  Keypackage,
  type Ciphersuite,
  type MlsRuleError,
} from "../../src/index.js";
import { dec, enc, receive, send } from "../conversation/helpers.js";
import { device, testCa, wireId, x509Member, type X509Member } from "../x509/helpers.js";
import { coreCryptoClient, loadCoreCrypto, setCoreCryptoPki } from "./corecrypto.js";

const SUITES = [1, 2, 3, 5, 7] as Ciphersuite[];

let counter = 0;

/**
 * A CoreCrypto client (Basic credential) whose PKI environment trusts our test root. CoreCrypto
 * validates only the leaf of a credential's chain against its environment (the chain's other
 * certificates are not used), so the intermediate is registered too (`addIntermediateCert`), as
 * Wire clients do with the ACME server's intermediate.
 */
async function ccPeer(suite: Ciphersuite, ca: { root: { pem: string }; intermediate: { pem: string } }) {
  counter += 1;
  const text = `5e1f0c2a-7b3d-4e6f-9a8b-${counter.toString(16).padStart(12, "0")}:${(0x7100 + counter).toString(16)}@wire.com`;
  const bundles: { commit: Uint8Array; welcome?: { serialize(): Uint8Array } }[] = [];
  const c = await coreCryptoClient(text, suite, {
    async sendCommitBundle(b: unknown) {
      bundles.push(b as (typeof bundles)[number]);
    },
  });
  await setCoreCryptoPki(c, ca.root.pem, [ca.intermediate.pem]);
  return { ...c, text, bundles };
}
type Peer = Awaited<ReturnType<typeof ccPeer>>;

function ccClientId(p: Peer, text: string) {
  const [user, rest] = text.split(":") as [string, string];
  const [dev, domain] = rest.split("@") as [string, string];
  return new p.cc.ClientId(new p.cc.Uuid(user), p.cc.DeviceId.fromHexString(dev.padStart(16, "0")), domain);
}

async function ccSend(p: Peer, id: Uint8Array, text: string): Promise<Uint8Array> {
  return new Uint8Array(
    await p.core.transaction((ctx) => ctx.encryptMessage(new p.cc.ConversationId(id), enc(text))),
  );
}

async function ccReceive(p: Peer, id: Uint8Array, msg: Uint8Array): Promise<string | undefined> {
  const d = await p.core.transaction((ctx) => ctx.decryptMessage(new p.cc.ConversationId(id), msg));
  return d.tag === "Text" ? dec(new Uint8Array(d.inner.plaintext)) : undefined;
}

/** CoreCrypto adds our key package to a new conversation; we join from its Welcome. */
async function ccAddsUs(p: Peer, us: X509Member, id: Uint8Array): Promise<void> {
  const kp = await us.cc.transaction((tx) => tx.generateKeypackage(us.cred));
  const convId = new p.cc.ConversationId(id);
  await p.core.transaction(async (ctx) => {
    await ctx.createConversation(convId, p.credentialRef);
    await ctx.addClientsToConversation(convId, [new p.cc.KeyPackage(kp.serialize())]);
  });
  const welcome = new Uint8Array(p.bundles.at(-1)?.welcome?.serialize() ?? []);
  expect(await us.cc.transaction((tx) => tx.processWelcomeMessage(welcome))).toEqual(id);
}

describe.each(SUITES)("X.509 with CoreCrypto 10.3.0, suite %i", (suite) => {
  it("CoreCrypto adds our X.509 key package, reports our identity valid, messages flow both ways", async () => {
    const ca = await testCa();
    const peer = await ccPeer(suite, ca);
    const us = await x509Member(ca, 40 + suite, suite);
    const id = enc(`x509-cc-${suite}`);
    await ccAddsUs(peer, us, id);

    const convId = new peer.cc.ConversationId(id);
    const ourText = wireId(40 + suite).toString();
    const [theirView] = await peer.core.transaction((ctx) =>
      ctx.getDeviceIdentities(convId, [ccClientId(peer, ourText)]),
    );
    const [ourView] = await us.cc.transaction((tx) => tx.getDeviceIdentities(id, [wireId(40 + suite)]));
    expect(theirView?.status).toBe(DeviceStatus.Valid);
    expect(ourView?.status).toBe(DeviceStatus.Valid);
    // Same client id bytes, handle, display name, domain, serial, validity, certificate, thumbprint.
    expect(new TextDecoder().decode(theirView?.clientId?.copyBytes())).toBe(ourText);
    expect(ourView?.clientId?.toString()).toBe(ourText);
    const t = theirView?.x509Identity;
    const o = ourView?.x509Identity;
    expect(t?.handle).toBe(o?.handle);
    expect(o?.handle).toBe(`wireapp://%40user_${40 + suite}@wire.example`);
    expect(t?.displayName).toBe(o?.displayName);
    expect(t?.domain).toBe(o?.domain);
    expect(t?.serialNumber).toBe(o?.serialNumber);
    expect(t?.notBefore.getTime()).toBe(o?.notBefore.getTime());
    expect(t?.notAfter.getTime()).toBe(o?.notAfter.getTime());
    expect(t?.certificate.trim()).toBe(o?.certificate.trim());
    expect(theirView?.thumbprint).toBe(ourView?.thumbprint);

    // CoreCrypto's Basic leaf makes the conversation NotVerified on both sides.
    expect(await peer.core.transaction((ctx) => ctx.e2eiConversationState(convId))).toBe(
      E2eiConversationState.NotVerified,
    );
    expect(await us.cc.transaction((tx) => tx.conversationCredentialState(id))).toBe(
      E2eiConversationState.NotVerified,
    );

    const fromThem = await receive(us, id, await ccSend(peer, id, "hello X.509"));
    expect(dec(fromThem.message)).toBe("hello X.509");
    expect(await ccReceive(peer, id, await send(us, id, "hello CoreCrypto"))).toBe("hello CoreCrypto");
  });

  it("CoreCrypto joins our X.509 conversation from our Welcome and validates our leaf", async () => {
    const ca = await testCa();
    const peer = await ccPeer(suite, ca);
    const us = await x509Member(ca, 50 + suite, suite);
    const id = enc(`x509-ours-${suite}`);
    await us.cc.transaction((tx) => tx.createConversation(id, us.cred));
    const kp = await peer.core.transaction((ctx) => ctx.generateKeyPackage(peer.credentialRef));
    await us.cc.transaction((tx) =>
      tx.addClientsToConversation(id, [Keypackage.deserialize(new Uint8Array(kp.serialize()))]),
    );
    const welcome = us.transport.last().welcome as Uint8Array;
    await peer.core.transaction((ctx) => ctx.processWelcomeMessage(new peer.cc.Welcome(welcome)));
    const [view] = await peer.core.transaction((ctx) =>
      ctx.getDeviceIdentities(new peer.cc.ConversationId(id), [
        ccClientId(peer, wireId(50 + suite).toString()),
      ]),
    );
    expect(view?.status).toBe(DeviceStatus.Valid);
    expect(await ccReceive(peer, id, await send(us, id, "welcome"))).toBe("welcome");
  });

  it("a certificate from an unknown root or with a broken signature is refused by both", async () => {
    const ca = await testCa();
    const stranger = await testCa();
    const peer = await ccPeer(suite, ca);
    const alien = await x509Member(stranger, 60 + suite, suite);
    // Our side: an X.509 member with the CoreCrypto peer's trust (our test root only).
    const judge = await x509Member(ca, 70 + suite, suite);
    await judge.cc.transaction((tx) => tx.createConversation(enc("judge"), judge.cred));

    // A certificate of our CA whose signature is broken (last byte of the signature flipped).
    const good = await device(ca, 80 + suite, suite);
    const broken = Uint8Array.from(good.der);
    broken[broken.length - 1] = (broken.at(-1) as number) ^ 0x01;
    const brokenCred = Credential.x509(suite, {
      certificateChain: [broken, ...good.chain.slice(1)],
      privateKey: good.privateKeyPem as string,
    });
    const holder = await x509Member(ca, 90 + suite, suite);
    const brokenRef = await holder.cc.transaction((tx) => tx.addCredential(brokenCred));

    for (const [who, kp] of [
      ["unknown root", await alien.cc.transaction((tx) => tx.generateKeypackage(alien.cred))],
      ["broken signature", await holder.cc.transaction((tx) => tx.generateKeypackage(brokenRef))],
    ] as const) {
      const convId = new peer.cc.ConversationId(enc(`refuse-${suite}-${who}`));
      await peer.core.transaction((ctx) => ctx.createConversation(convId, peer.credentialRef));
      const theirs = await peer.core
        .transaction((ctx) => ctx.addClientsToConversation(convId, [new peer.cc.KeyPackage(kp.serialize())]))
        .then(
          () => "accepted",
          (e: unknown) => `refused: ${String(e instanceof Error ? e.message : e)}`,
        );
      expect(theirs, who).toMatch(/^refused/);
      const ours = (await judge.cc
        .transaction((tx) => tx.addClientsToConversation(enc("judge"), [kp]))
        .catch((e: unknown) => e)) as MlsRuleError;
      expect(ours.code, who).toBe(ErrorCode.CredentialRejected);
      expect(String(ours.details.reason), who).toMatch(/invalid, rfc5280_path/);
    }
  });
});

describe("X.509 expiry seen by CoreCrypto 10.3.0 and by us", () => {
  it("a member whose certificate expires is flagged Expired by both, the conversation NotVerified", async () => {
    await loadCoreCrypto();
    const suite = 2 as Ciphersuite;
    const ca = await testCa();
    const peer = await ccPeer(suite, ca);
    const now = Date.now();
    // CoreCrypto reads the real clock: a certificate that expires in a few seconds.
    const dev = await device(ca, 99, suite, {
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 12_000),
    });
    const us = await x509Member(ca, 99, suite, { dev });
    const id = enc("x509-expiring");
    await ccAddsUs(peer, us, id);
    const ids = () =>
      peer.core.transaction((ctx) =>
        ctx.getDeviceIdentities(new peer.cc.ConversationId(id), [ccClientId(peer, wireId(99).toString())]),
      );
    expect((await ids())[0]?.status).toBe(DeviceStatus.Valid);
    const spare = await us.cc.transaction((tx) => tx.generateKeypackage(us.cred));
    await new Promise((r) => setTimeout(r, Math.max(0, dev.notAfter.getTime() + 1500 - Date.now())));
    us.clock.t = Date.now();
    expect((await ids())[0]?.status).toBe(DeviceStatus.Expired);
    const [ours] = await us.cc.transaction((tx) => tx.getDeviceIdentities(id, [wireId(99)]));
    expect(ours?.status).toBe(DeviceStatus.Expired);
    expect(await us.cc.transaction((tx) => tx.conversationCredentialState(id))).toBe(
      E2eiConversationState.NotVerified,
    );
    // Both still accept messages from the expired member (CoreCrypto's policy for existing members).
    expect(await ccReceive(peer, id, await send(us, id, "still here"))).toBe("still here");
    // A key package made before the expiry is refused by both now (its lifetime ends with the certificate).
    const late = new peer.cc.ConversationId(enc("x509-late"));
    await peer.core.transaction((ctx) => ctx.createConversation(late, peer.credentialRef));
    await expect(
      peer.core.transaction((ctx) =>
        ctx.addClientsToConversation(late, [new peer.cc.KeyPackage(spare.serialize())]),
      ),
    ).rejects.toThrow();
    const judge = await x509Member(ca, 98, suite);
    await judge.cc.transaction((tx) => tx.createConversation(enc("judge-late"), judge.cred));
    await expect(
      judge.cc.transaction((tx) => tx.addClientsToConversation(enc("judge-late"), [spare])),
    ).rejects.toMatchObject({ code: ErrorCode.InvalidKeypackage });
    await expect(us.cc.transaction((tx) => tx.generateKeypackage(us.cred))).rejects.toMatchObject({
      code: ErrorCode.InvalidCertificate,
      rule: "x509_expired",
    });
  }, 60_000);
});
