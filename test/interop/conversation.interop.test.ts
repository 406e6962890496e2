/**
 * Conversations between our library and the real CoreCrypto 10.3.0 (wasm, OpenMLS inside),
 * for every cipher suite both support.
 */
import { describe, expect, it } from "vitest";
import { decodeMlsMessage, defaultCryptoProvider, encodeMlsMessage, getCiphersuiteImpl } from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { protectExternalProposalPublic } from "ts-mls/messageProtectionPublic.js";
import { ClientId, Keypackage, signatureSchemeOf, type Ciphersuite } from "../../src/index.js";
import { generateSignatureKeyPair } from "../../src/mls/signatureKeys.js";
import { dec, enc, keypackage, member, receive, send, type Member } from "../conversation/helpers.js";
import { coreCryptoClient, loadCoreCrypto, type CoreCryptoModule } from "./corecrypto.js";

const SUITES = [1, 2, 3, 5, 7] as Ciphersuite[];

interface CcBundle {
  commit: Uint8Array;
  welcome?: { serialize(): Uint8Array };
  groupInfo: { payload: Uint8Array };
}

let ccCounter = 0;

/** A CoreCrypto client recording the commit bundles it sends (its transport always accepts). */
async function ccMember(suite: Ciphersuite) {
  ccCounter += 1;
  const text = `3c4a8bd6-9b53-4c2f-8f36-${ccCounter.toString(16).padStart(12, "0")}:${(0x4d00 + ccCounter).toString(16)}@wire.com`;
  const bundles: CcBundle[] = [];
  const c = await coreCryptoClient(text, suite, {
    async sendCommitBundle(b: unknown) {
      bundles.push(b as CcBundle);
    },
  });
  const last = (): CcBundle => {
    const b = bundles.at(-1);
    if (b === undefined) throw new Error("CoreCrypto sent no bundle");
    return b;
  };
  return { ...c, text, bundles, last, welcome: () => new Uint8Array(last().welcome?.serialize() ?? []) };
}
type CcMember = Awaited<ReturnType<typeof ccMember>>;

function ccClientId(cc: CoreCryptoModule, text: string) {
  const [user, rest] = text.split(":") as [string, string];
  const [device, domain] = rest.split("@") as [string, string];
  return new cc.ClientId(new cc.Uuid(user), cc.DeviceId.fromHexString(device), domain);
}

async function ccKeypackage(m: CcMember): Promise<Uint8Array> {
  const kp = await m.core.transaction((ctx) => ctx.generateKeyPackage(m.credentialRef));
  return new Uint8Array(kp.serialize());
}

async function ccKeypackageCount(m: CcMember): Promise<number> {
  return (await m.core.transaction((ctx) => ctx.getKeyPackages())).length;
}

async function ccSend(m: CcMember, id: Uint8Array, text: string): Promise<Uint8Array> {
  const convId = new m.cc.ConversationId(id);
  return new Uint8Array(await m.core.transaction((ctx) => ctx.encryptMessage(convId, enc(text))));
}

/** CoreCrypto processes a message; returns the plaintext for application messages. */
async function ccReceive(m: CcMember, id: Uint8Array, message: Uint8Array): Promise<string | undefined> {
  const convId = new m.cc.ConversationId(id);
  const d = await m.core.transaction((ctx) => ctx.decryptMessage(convId, message));
  return d.tag === "Text" ? dec(new Uint8Array(d.inner.plaintext)) : undefined;
}

async function ccEpoch(m: CcMember, id: Uint8Array): Promise<bigint> {
  return m.core.transaction((ctx) => ctx.conversationEpoch(new m.cc.ConversationId(id)));
}

async function ourEpoch(m: Member, id: Uint8Array): Promise<bigint> {
  return m.cc.transaction((tx) => tx.conversationEpoch(id));
}

/** Every member can read a message from `from` (ours or CoreCrypto's). */
async function everybodyReads(
  id: Uint8Array,
  ours: Member[],
  theirs: CcMember[],
  text: string,
): Promise<void> {
  for (const from of [...ours, ...theirs]) {
    const label = `${text} from ${"transport" in from ? from.clientId.toString() : from.text}`;
    const msg = "transport" in from ? await send(from, id, label) : await ccSend(from, id, label);
    for (const to of ours) if (to !== from) expect(dec((await receive(to, id, msg)).message)).toBe(label);
    for (const to of theirs) if (to !== from) expect(await ccReceive(to, id, msg)).toBe(label);
  }
}

describe.each(SUITES)("conversations with CoreCrypto 10.3.0, suite %i", (suite) => {
  it("(1) CoreCrypto adds our key package; we join from its Welcome and messages flow both ways", async () => {
    const cc = await loadCoreCrypto();
    const theirs = await ccMember(suite);
    const us = await member(101, suite);
    const kp = await keypackage(us);
    await keypackage(us); // an unrelated one must survive
    expect(await us.database.counts()).toMatchObject({
      keypackages: 2,
      hpke_private_keys: 2,
      encryption_keypairs: 2,
    });
    const id = enc(`cc-created-${suite}`);
    const convId = new cc.ConversationId(id);
    await theirs.core.transaction(async (ctx) => {
      await ctx.createConversation(convId, theirs.credentialRef);
      await ctx.addClientsToConversation(convId, [new cc.KeyPackage(kp.serialize())]);
    });
    expect(await us.cc.transaction((tx) => tx.processWelcomeMessage(theirs.welcome()))).toEqual(id);
    expect(await us.database.counts()).toMatchObject({
      keypackages: 1,
      hpke_private_keys: 1,
      encryption_keypairs: 1,
      conversations: 1,
    });
    expect(await us.cc.transaction((tx) => tx.getKeypackage(kp.ref()))).toBeUndefined();
    expect(await ourEpoch(us, id)).toBe(await ccEpoch(theirs, id));
    expect(await us.cc.transaction((tx) => tx.conversationCiphersuite(id))).toBe(suite);
    expect((await us.cc.transaction((tx) => tx.getClientIds(id))).map(String).sort()).toEqual(
      [theirs.text, us.clientId.toString()].sort(),
    );

    const fromThem = await receive(us, id, await ccSend(theirs, id, "hello from CoreCrypto"));
    expect(dec(fromThem.message)).toBe("hello from CoreCrypto");
    expect(fromThem.senderClientId?.toString()).toBe(theirs.text);
    expect(await ccReceive(theirs, id, await send(us, id, "hello from us"))).toBe("hello from us");
  });

  it("(2) we add CoreCrypto's key package; CoreCrypto joins from our Welcome and consumes it", async () => {
    const cc = await loadCoreCrypto();
    const theirs = await ccMember(suite);
    const us = await member(102, suite);
    const kpBytes = await ccKeypackage(theirs);
    await ccKeypackage(theirs);
    expect(await ccKeypackageCount(theirs)).toBe(2);
    const id = enc(`ours-${suite}`);
    await us.cc.transaction((tx) => tx.createConversation(id, us.cred));
    await us.cc.transaction((tx) => tx.addClientsToConversation(id, [Keypackage.deserialize(kpBytes)]));
    const welcome = us.transport.last().welcome as Uint8Array;
    const joined = await theirs.core.transaction((ctx) => ctx.processWelcomeMessage(new cc.Welcome(welcome)));
    expect(new Uint8Array(joined.copyBytes())).toEqual(id);
    expect(await ccKeypackageCount(theirs)).toBe(1);
    expect(await ccEpoch(theirs, id)).toBe(await ourEpoch(us, id));
    const members = await theirs.core.transaction((ctx) => ctx.getClientIds(new cc.ConversationId(id)));
    expect(members).toHaveLength(2);

    expect(await ccReceive(theirs, id, await send(us, id, "hi from us"))).toBe("hi from us");
    const r = await receive(us, id, await ccSend(theirs, id, "hi from CoreCrypto"));
    expect(dec(r.message)).toBe("hi from CoreCrypto");
    expect(r.senderClientId?.toString()).toBe(theirs.text);
  });

  it("(3) a group where each side adds a member, then removals and updates; everybody keeps decrypting", async () => {
    const cc = await loadCoreCrypto();
    const u1 = await member(103, suite);
    const u2 = await member(104, suite);
    const c1 = await ccMember(suite);
    const c2 = await ccMember(suite);
    const id = enc(`mixed-${suite}`);
    const convId = new cc.ConversationId(id);

    // u1 creates and adds c1 (our side adds)
    await u1.cc.transaction((tx) => tx.createConversation(id, u1.cred));
    await u1.cc.transaction(async (tx) =>
      tx.addClientsToConversation(id, [Keypackage.deserialize(await ccKeypackage(c1))]),
    );
    await c1.core.transaction((ctx) =>
      ctx.processWelcomeMessage(new cc.Welcome(u1.transport.last().welcome as Uint8Array)),
    );

    // c1 adds u2 (CoreCrypto's side adds): u1 merges the commit, u2 joins from CoreCrypto's Welcome
    const kp2 = await keypackage(u2);
    await c1.core.transaction((ctx) =>
      ctx.addClientsToConversation(convId, [new cc.KeyPackage(kp2.serialize())]),
    );
    const add = await receive(u1, id, new Uint8Array(c1.last().commit));
    expect(add).toMatchObject({ kind: "commit", hasEpochChanged: true, isActive: true, epoch: 2n });
    expect(add.senderClientId?.toString()).toBe(c1.text);
    expect(await u2.cc.transaction((tx) => tx.processWelcomeMessage(c1.welcome()))).toEqual(id);
    await everybodyReads(id, [u1, u2], [c1], "three");

    // u1 adds c2 (our side again)
    await u1.cc.transaction(async (tx) =>
      tx.addClientsToConversation(id, [Keypackage.deserialize(await ccKeypackage(c2))]),
    );
    const addC2 = u1.transport.last();
    await receive(u2, id, addC2.commit);
    await ccReceive(c1, id, addC2.commit);
    await c2.core.transaction((ctx) =>
      ctx.processWelcomeMessage(new cc.Welcome(addC2.welcome as Uint8Array)),
    );
    await everybodyReads(id, [u1, u2], [c1, c2], "four");

    // CoreCrypto updates its keying material
    await c1.core.transaction((ctx) => ctx.updateKeyingMaterial(convId));
    for (const u of [u1, u2])
      expect((await receive(u, id, new Uint8Array(c1.last().commit))).hasEpochChanged).toBe(true);
    await ccReceive(c2, id, new Uint8Array(c1.last().commit));

    // CoreCrypto removes u2
    await c1.core.transaction((ctx) =>
      ctx.removeClientsFromConversation(convId, [ccClientId(cc, u2.clientId.toString())]),
    );
    const removal = new Uint8Array(c1.last().commit);
    expect((await receive(u1, id, removal)).isActive).toBe(true);
    expect((await receive(u2, id, removal)).isActive).toBe(false);
    await ccReceive(c2, id, removal);

    // we update, then remove c2
    await u1.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    for (const c of [c1, c2]) await ccReceive(c, id, u1.transport.last().commit);
    await everybodyReads(id, [u1], [c1, c2], "after update");
    await u1.cc.transaction((tx) => tx.removeClientsFromConversation(id, [ClientId.parse(c2.text)]));
    await ccReceive(c1, id, u1.transport.last().commit);
    await everybodyReads(id, [u1], [c1], "after removal");
    expect(await ourEpoch(u1, id)).toBe(await ccEpoch(c1, id));
    expect((await u1.cc.transaction((tx) => tx.getClientIds(id))).map(String).sort()).toEqual(
      [c1.text, u1.clientId.toString()].sort(),
    );
    const ccMembers = await c1.core.transaction((ctx) => ctx.getClientIds(convId));
    expect(ccMembers).toHaveLength(2);

    // a new CoreCrypto member takes a blanked leaf; it joins from our Welcome (truncated tree)
    const c3 = await ccMember(suite);
    await u1.cc.transaction(async (tx) =>
      tx.addClientsToConversation(id, [Keypackage.deserialize(await ccKeypackage(c3))]),
    );
    await ccReceive(c1, id, u1.transport.last().commit);
    await c3.core.transaction((ctx) =>
      ctx.processWelcomeMessage(new cc.Welcome(u1.transport.last().welcome as Uint8Array)),
    );
    await everybodyReads(id, [u1], [c1, c3], "re-filled");
  });

  it("(4) a Welcome for a key package we removed beforehand → OrphanWelcome, nothing changes", async () => {
    const cc = await loadCoreCrypto();
    const theirs = await ccMember(suite);
    const us = await member(105, suite);
    const kp = await keypackage(us);
    await keypackage(us);
    const id = enc(`orphan-${suite}`);
    const convId = new cc.ConversationId(id);
    await theirs.core.transaction(async (ctx) => {
      await ctx.createConversation(convId, theirs.credentialRef);
      await ctx.addClientsToConversation(convId, [new cc.KeyPackage(kp.serialize())]);
    });
    await us.cc.transaction((tx) => tx.removeKeypackage(kp.ref()));
    const before = await us.database.counts();
    await expect(us.cc.transaction((tx) => tx.processWelcomeMessage(theirs.welcome()))).rejects.toMatchObject(
      {
        code: "OrphanWelcome",
      },
    );
    expect(await us.database.counts()).toEqual(before);
  });

  it("(5) ConversationAlreadyExists keeps the key package: a Welcome for another conversation still joins", async () => {
    const cc = await loadCoreCrypto();
    const c1 = await ccMember(suite);
    const c2 = await ccMember(suite);
    const us = await member(106, suite);
    const id = enc(`dup-${suite}`);
    // we are already in `id` (joined from c1)
    const first = await keypackage(us);
    await c1.core.transaction(async (ctx) => {
      await ctx.createConversation(new cc.ConversationId(id), c1.credentialRef);
      await ctx.addClientsToConversation(new cc.ConversationId(id), [new cc.KeyPackage(first.serialize())]);
    });
    await us.cc.transaction((tx) => tx.processWelcomeMessage(c1.welcome()));
    // c2 creates another group with the same id and invites our second key package
    const kp = await keypackage(us);
    await c2.core.transaction(async (ctx) => {
      await ctx.createConversation(new cc.ConversationId(id), c2.credentialRef);
      await ctx.addClientsToConversation(new cc.ConversationId(id), [new cc.KeyPackage(kp.serialize())]);
    });
    const before = await us.database.counts();
    await expect(us.cc.transaction((tx) => tx.processWelcomeMessage(c2.welcome()))).rejects.toMatchObject({
      code: "ConversationAlreadyExists",
    });
    expect(await us.database.counts()).toEqual(before);
    expect(await us.cc.transaction((tx) => tx.getKeypackage(kp.ref()))).toBeDefined();
    // the same key package joins a different conversation
    const other = enc(`other-${suite}`);
    await c2.core.transaction(async (ctx) => {
      await ctx.createConversation(new cc.ConversationId(other), c2.credentialRef);
      await ctx.addClientsToConversation(new cc.ConversationId(other), [new cc.KeyPackage(kp.serialize())]);
    });
    expect(await us.cc.transaction((tx) => tx.processWelcomeMessage(c2.welcome()))).toEqual(other);
    expect(await us.database.counts()).toMatchObject({ keypackages: 0, conversations: 2 });
    expect(await ccReceive(c2, other, await send(us, other, "joined"))).toBe("joined");
  });

  it("(6) a CoreCrypto group with an external sender: we join, commit, and commit the sender's Remove proposal", async () => {
    const cc = await loadCoreCrypto();
    const c1 = await ccMember(suite);
    const us = await member(107, suite);
    const u2 = await member(108, suite);
    const backend = generateSignatureKeyPair(signatureSchemeOf(suite));
    const id = enc(`external-${suite}`);
    const convId = new cc.ConversationId(id);
    const [k1, k2] = [await keypackage(us), await keypackage(u2)];
    await c1.core.transaction(async (ctx) => {
      await ctx.createConversation(
        convId,
        c1.credentialRef,
        cc.ExternalSender.parsePublicKey(backend.publicKey, signatureSchemeOf(suite) as number),
      );
      await ctx.addClientsToConversation(convId, [
        new cc.KeyPackage(k1.serialize()),
        new cc.KeyPackage(k2.serialize()),
      ]);
    });
    for (const u of [us, u2]) await u.cc.transaction((tx) => tx.processWelcomeMessage(c1.welcome()));
    await everybodyReads(id, [us, u2], [c1], "with external sender");
    // our commit keeps the group context (and its external_senders) intact for CoreCrypto
    await us.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    await ccReceive(c1, id, us.transport.last().commit);
    await receive(u2, id, us.transport.last().commit);

    // the backend (external sender #0) proposes to remove u2 (leaf 2), RFC 9420 §12.1.8
    const decoded = decodeMlsMessage(us.transport.last().groupInfo, 0)?.[0];
    if (decoded?.wireformat !== "mls_group_info") throw new Error("no group info");
    const cs = await getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId), defaultCryptoProvider);
    const { publicMessage } = await protectExternalProposalPublic(
      backend.privateKey,
      decoded.groupInfo.groupContext,
      new Uint8Array(),
      { proposalType: "remove", remove: { removed: 2 } },
      { senderType: "external", senderIndex: 0 },
      cs,
    );
    const proposal = encodeMlsMessage({ version: "mls10", wireformat: "mls_public_message", publicMessage });
    expect(await ccReceive(c1, id, proposal)).toBeUndefined();
    for (const u of [us, u2])
      expect(await receive(u, id, proposal)).toMatchObject({ kind: "proposal", hasEpochChanged: false });

    await us.cc.transaction((tx) => tx.commitPendingProposals(id));
    const commit = us.transport.last().commit;
    await ccReceive(c1, id, commit);
    expect((await receive(u2, id, commit)).isActive).toBe(false);
    await everybodyReads(id, [us], [c1], "after external remove");
    expect(await c1.core.transaction((ctx) => ctx.getClientIds(convId))).toHaveLength(2);
    // nothing pending any more: a no-op
    const sent = us.transport.bundles.length;
    await us.cc.transaction((tx) => tx.commitPendingProposals(id));
    expect(us.transport.bundles).toHaveLength(sent);
  });

  it("(7) CoreCrypto joins by external commit from the GroupInfo in our commit bundle; we merge its commit", async () => {
    const cc = await loadCoreCrypto();
    const c1 = await ccMember(suite);
    const c2 = await ccMember(suite);
    const us = await member(109, suite);
    const id = enc(`external-commit-${suite}`);
    await us.cc.transaction((tx) => tx.createConversation(id, us.cred));
    await us.cc.transaction(async (tx) =>
      tx.addClientsToConversation(id, [Keypackage.deserialize(await ccKeypackage(c1))]),
    );
    const bundle = us.transport.last();
    await c1.core.transaction((ctx) =>
      ctx.processWelcomeMessage(new cc.Welcome(bundle.welcome as Uint8Array)),
    );
    // CoreCrypto's GroupInfo type takes the bare GroupInfo: drop the MLSMessage header (version, wire_format)
    const groupInfo = new cc.GroupInfo(bundle.groupInfo.subarray(4));
    const joined = await c2.core.transaction((ctx) => ctx.joinByExternalCommit(groupInfo, c2.credentialRef));
    expect(new Uint8Array(joined.copyBytes())).toEqual(id);
    const external = new Uint8Array(c2.last().commit);
    const r = await receive(us, id, external);
    expect(r).toMatchObject({ kind: "commit", hasEpochChanged: true, isActive: true, epoch: 2n });
    await ccReceive(c1, id, external);
    await everybodyReads(id, [us], [c1, c2], "after external join");
  });

  it("(8) we join CoreCrypto's group by external commit (tx.joinByExternalCommit); CoreCrypto merges it", async () => {
    const cc = await loadCoreCrypto();
    const c1 = await ccMember(suite);
    const c2 = await ccMember(suite);
    const us = await member(110, suite);
    const id = enc(`cc-external-commit-${suite}`);
    const convId = new cc.ConversationId(id);
    await c1.core.transaction(async (ctx) => {
      await ctx.createConversation(convId, c1.credentialRef);
      await ctx.addClientsToConversation(convId, [new cc.KeyPackage(await ccKeypackage(c2))]);
    });
    await c2.core.transaction((ctx) => ctx.processWelcomeMessage(new cc.Welcome(c1.welcome())));
    // CoreCrypto's bundle carries the GroupInfo (MLSMessage) with external_pub and the full tree
    const groupInfo = new Uint8Array(c1.last().groupInfo.payload);
    const joined = await us.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, us.cred));
    expect(joined.conversationId).toEqual(id);
    expect(us.transport.last().commit).toEqual(joined.commit);
    for (const c of [c1, c2]) await ccReceive(c, id, joined.commit);
    expect(await ourEpoch(us, id)).toBe(await ccEpoch(c1, id));
    expect(await c2.core.transaction((ctx) => ctx.getClientIds(convId))).toHaveLength(3);
    expect((await us.cc.transaction((tx) => tx.getClientIds(id))).map(String).sort()).toEqual(
      [c1.text, c2.text, us.clientId.toString()].sort(),
    );
    await everybodyReads(id, [us], [c1, c2], "after our external join");

    // CoreCrypto's self-update, then ours, then CoreCrypto removes c2: we follow and are followed
    await c1.core.transaction((ctx) => ctx.updateKeyingMaterial(convId));
    expect((await receive(us, id, new Uint8Array(c1.last().commit))).hasEpochChanged).toBe(true);
    await ccReceive(c2, id, new Uint8Array(c1.last().commit));
    await us.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    for (const c of [c1, c2]) await ccReceive(c, id, us.transport.last().commit);
    await everybodyReads(id, [us], [c1, c2], "after both updates");
    await c1.core.transaction((ctx) => ctx.removeClientsFromConversation(convId, [ccClientId(cc, c2.text)]));
    expect((await receive(us, id, new Uint8Array(c1.last().commit))).isActive).toBe(true);
    await everybodyReads(id, [us], [c1], "after CoreCrypto's removal");
    expect(await ourEpoch(us, id)).toBe(await ccEpoch(c1, id));
  });
});
