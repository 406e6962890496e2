import { describe, expect, it } from "vitest";
import { getCiphersuiteImpl, defaultCryptoProvider } from "ts-mls";
import { getCiphersuiteFromId } from "ts-mls/crypto/ciphersuite.js";
import { decodeKeyPackage, encodeKeyPackage, signKeyPackage } from "ts-mls/keyPackage.js";
import { signLeafNodeKeyPackage } from "ts-mls/leafNode.js";
import {
  Ciphersuite,
  CoreCrypto,
  Credential,
  ErrorCode,
  Keypackage,
  MessageRejectedError,
  MlsKeypackagesError,
} from "../../src/index.js";
import {
  SUITE1,
  clientId,
  dec,
  enc,
  group,
  keypackage,
  member,
  receive,
  send,
  type Member,
} from "./helpers.js";

const counts = async (m: Member) => m.database.counts();

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<MlsKeypackagesError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MlsKeypackagesError);
  expect((err as MlsKeypackagesError).code).toBe(code);
  return err as MlsKeypackagesError;
}

/** Raw stored conversation state (to check "unchanged"). */
async function rawState(m: Member, id: Uint8Array): Promise<Uint8Array | undefined> {
  const rows = await m.database.keystore.all("conversations");
  return rows.find((r) => Buffer.from(r.id).equals(Buffer.from(id)))?.state;
}

describe("conversations between two of our sessions", () => {
  it("create, add, join, and messages both ways", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("conversation-1");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    expect(await a.cc.transaction((tx) => tx.conversationExists(id))).toBe(true);
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(0n);
    expect(await a.cc.transaction((tx) => tx.conversationCiphersuite(id))).toBe(SUITE1);
    const kp = await keypackage(b);
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp]));
    const bundle = a.transport.last();
    expect(bundle.welcome).toBeInstanceOf(Uint8Array);
    expect(bundle.commit[3]).toBe(1); // MLSMessage wire_format mls_public_message (RFC 9420 §6)
    expect(bundle.groupInfo[3]).toBe(4); // mls_group_info
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(1n);

    const joined = await b.cc.transaction((tx) => tx.processWelcomeMessage(bundle.welcome as Uint8Array));
    expect(joined).toEqual(id);
    expect(await b.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(1n);
    const ids = (await b.cc.transaction((tx) => tx.getClientIds(id))).map(String);
    expect(ids).toEqual([a.clientId.toString(), b.clientId.toString()]);

    const r1 = await receive(b, id, await send(a, id, "hello bob"));
    expect(r1).toMatchObject({ kind: "application", hasEpochChanged: false, isActive: true, epoch: 1n });
    expect(dec(r1.message)).toBe("hello bob");
    expect(r1.senderClientId?.equals(a.clientId)).toBe(true);
    const r2 = await receive(a, id, await send(b, id, "hello alice"));
    expect(dec(r2.message)).toBe("hello alice");
    expect(r2.senderClientId?.equals(b.clientId)).toBe(true);
  });

  it("the conversation row carries the credential id", async () => {
    const a = await member(1);
    await a.cc.transaction((tx) => tx.createConversation(enc("c"), a.cred));
    const [row] = await a.database.keystore.all("conversations");
    expect(row?.credentialId).toBe(a.cred.id);
    expect(await a.database.keystore.conversationsForCredential(a.cred.id)).toHaveLength(1);
  });

  it("createConversation refuses an existing id and an unknown credential", async () => {
    const a = await member(1);
    const other = await member(9);
    await a.cc.transaction((tx) => tx.createConversation(enc("c"), a.cred));
    await expectCode(
      a.cc.transaction((tx) => tx.createConversation(enc("c"), a.cred)),
      ErrorCode.ConversationAlreadyExists,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.createConversation(enc("d"), other.cred)),
      ErrorCode.CredentialNotFound,
    );
  });

  it("operations on an unknown conversation reject with ConversationNotFound", async () => {
    const a = await member(1);
    const id = enc("nope");
    expect(await a.cc.transaction((tx) => tx.conversationExists(id))).toBe(false);
    await expectCode(
      a.cc.transaction((tx) => tx.conversationEpoch(id)),
      ErrorCode.ConversationNotFound,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.encryptMessage(id, enc("x"))),
      ErrorCode.ConversationNotFound,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.wipeConversation(id)),
      ErrorCode.ConversationNotFound,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.updateKeyingMaterial(id)),
      ErrorCode.ConversationNotFound,
    );
  });

  it("an application message from the previous epoch still decrypts after a commit", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("late");
    await group(id, a, b);
    const early = await send(a, id, "sent in epoch 1");
    await b.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    expect((await receive(a, id, b.transport.last().commit)).hasEpochChanged).toBe(true);
    const r = await receive(b, id, early);
    expect(dec(r.message)).toBe("sent in epoch 1");
    expect(r.epoch).toBe(2n);
  });

  it("our own commit echoed back is InvalidMessage and changes nothing", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("echo");
    await group(id, a, b);
    await a.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    const before = await rawState(a, id);
    await expectCode(receive(a, id, a.transport.last().commit), ErrorCode.InvalidMessage);
    expect(await rawState(a, id)).toEqual(before);
  });

  it("a garbage message is InvalidMessage and changes nothing", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("g");
    await group(id, a, b);
    const before = await rawState(b, id);
    await expectCode(receive(b, id, Uint8Array.of(0, 1, 0, 2, 9, 9)), ErrorCode.InvalidMessage);
    const msg = await send(a, id, "x");
    msg[msg.length - 1] = (msg.at(-1) as number) ^ 1;
    await expectCode(receive(b, id, msg), ErrorCode.InvalidMessage);
    expect(await rawState(b, id)).toEqual(before);
  });
});

describe("transport semantics", () => {
  it("no transport → TransportMissing, before anything changes", async () => {
    const a = await member(1, SUITE1, { transport: false });
    const b = await member(2);
    const id = enc("t");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const kp = await keypackage(b);
    await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp])),
      ErrorCode.TransportMissing,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.updateKeyingMaterial(id)),
      ErrorCode.TransportMissing,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.removeClientsFromConversation(id, [b.clientId])),
      ErrorCode.TransportMissing,
    );
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(0n);
  });

  it("retry → TransportRetry and the group is unchanged; a later success merges", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("retry");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const before = await rawState(a, id);
    const kp = await keypackage(b);
    a.transport.responses.push("retry");
    await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp])),
      ErrorCode.TransportRetry,
    );
    expect(await rawState(a, id)).toEqual(before);
    expect(a.transport.bundles).toHaveLength(1);
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp]));
    expect(await a.cc.transaction((tx) => tx.getClientIds(id))).toHaveLength(2);
    await b.cc.transaction((tx) => tx.processWelcomeMessage(a.transport.last().welcome as Uint8Array));
    expect(dec((await receive(b, id, await send(a, id, "ok"))).message)).toBe("ok");
  });

  it("abort → MessageRejectedError with the reason, group unchanged (add, remove, update)", async () => {
    const a = await member(1);
    const b = await member(2);
    const c = await member(3);
    const id = enc("abort");
    await group(id, a, b);
    const before = await rawState(a, id);
    const kp = await keypackage(c);
    a.transport.responses.push({ abort: { reason: "legal hold" } });
    const err = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp])),
      ErrorCode.MessageRejected,
    );
    expect(err).toBeInstanceOf(MessageRejectedError);
    expect((err as MessageRejectedError).reason).toBe("legal hold");
    a.transport.responses.push({ abort: { reason: "r2" } });
    await expectCode(
      a.cc.transaction((tx) => tx.removeClientsFromConversation(id, [b.clientId])),
      ErrorCode.MessageRejected,
    );
    a.transport.responses.push("retry");
    await expectCode(
      a.cc.transaction((tx) => tx.updateKeyingMaterial(id)),
      ErrorCode.TransportRetry,
    );
    expect(await rawState(a, id)).toEqual(before);
    // still in sync with b
    expect(dec((await receive(b, id, await send(a, id, "still here"))).message)).toBe("still here");
  });

  it("a throwing transport → DeliveryServiceError (cause kept), an invalid answer too", async () => {
    const a = await member(1, SUITE1, { transport: false });
    const id = enc("t");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const boom = new Error("network down");
    a.cc.provideTransport({ sendCommitBundle: async () => Promise.reject(boom) });
    const err = await expectCode(
      a.cc.transaction((tx) => tx.updateKeyingMaterial(id)),
      ErrorCode.DeliveryServiceError,
    );
    expect(err.cause).toBe(boom);
    a.cc.provideTransport({ sendCommitBundle: async () => "maybe" as never });
    await expectCode(
      a.cc.transaction((tx) => tx.updateKeyingMaterial(id)),
      ErrorCode.DeliveryServiceError,
    );
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(0n);
  });

  it("the error of one call does not poison the transaction", async () => {
    const a = await member(1);
    const id = enc("p");
    const tx = await a.cc.newTransaction();
    await tx.createConversation(id, a.cred);
    a.transport.responses.push("retry");
    await expect(tx.updateKeyingMaterial(id)).rejects.toMatchObject({ code: ErrorCode.TransportRetry });
    await tx.updateKeyingMaterial(id);
    await tx.finish();
    expect(await a.cc.transaction((t) => t.conversationEpoch(id))).toBe(1n);
  });
});

describe("adding: key package checks", () => {
  it("the same key package twice → InvalidKeypackage (duplicate_signature_key)", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("dup");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const kp = await keypackage(b);
    const err = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp, kp])),
      ErrorCode.InvalidKeypackage,
    );
    expect(err.details).toMatchObject({ rule: "duplicate_signature_key", index: 1 });
    expect(a.transport.bundles).toHaveLength(0);
  });

  it("two key packages with one signature key, or a member's key → duplicate_signature_key", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("dup2");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const [k1, k2] = [await keypackage(b), await keypackage(b)] as [Keypackage, Keypackage];
    const e1 = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [k1, k2])),
      ErrorCode.InvalidKeypackage,
    );
    expect(e1.details).toMatchObject({ rule: "duplicate_signature_key" });
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [k1]));
    const e2 = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [k2])),
      ErrorCode.InvalidKeypackage,
    );
    expect(e2.details).toMatchObject({ rule: "duplicate_signature_key", index: 0 });
    // our own key package (same credential as our leaf)
    const own = await keypackage(a);
    const e3 = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [own])),
      ErrorCode.InvalidKeypackage,
    );
    expect(e3.details).toMatchObject({ rule: "duplicate_signature_key" });
  });

  it("a key package reusing a member's encryption key → duplicate_encryption_key", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("dupenc");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const victim = await keypackage(b);
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [victim]));
    // A validly signed package of another client whose leaf encryption key is b's.
    const cs = await getCiphersuiteImpl(getCiphersuiteFromId(1), defaultCryptoProvider);
    const mallory = Credential.basic(SUITE1, clientId(66));
    const now = BigInt(Math.floor(Date.now() / 1000));
    const leafNode = await signLeafNodeKeyPackage(
      {
        hpkePublicKey: victim.encryptionKey(),
        signaturePublicKey: mallory.publicKey,
        credential: { credentialType: "basic", identity: mallory.clientId.bytes() },
        capabilities: decodeKeyPackage(victim.serialize(), 0)![0].leafNode.capabilities,
        leafNodeSource: "key_package",
        lifetime: { notBefore: now - 60n, notAfter: now + 3600n },
        extensions: [],
      },
      mallory.signaturePrivateKey(),
      cs.signature,
    );
    const initKey = (await keypackage(await member(67))).initKey();
    const forged = await signKeyPackage(
      { version: "mls10", cipherSuite: cs.name, initKey, leafNode, extensions: [] },
      mallory.signaturePrivateKey(),
      cs.signature,
    );
    const kp = Keypackage.deserialize(encodeKeyPackage(forged));
    await kp.verify(); // valid on its own
    const err = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp])),
      ErrorCode.InvalidKeypackage,
    );
    expect(err.details).toMatchObject({ rule: "duplicate_encryption_key" });
  });

  it("an expired key package is rejected (lifetime_expired), a foreign suite too", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("exp");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const kp = await b.cc.transaction((tx) => tx.generateKeypackage(b.cred, 60_000));
    a.clock.advance(120_000);
    const err = await expectCode(
      a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp])),
      ErrorCode.InvalidKeypackage,
    );
    expect(err.details).toMatchObject({ rule: "lifetime_expired" });

    const p256 = await member(3, Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256);
    const e2 = await expectCode(
      a.cc.transaction(async (tx) => tx.addClientsToConversation(id, [await keypackage(p256)])),
      ErrorCode.InvalidKeypackage,
    );
    expect(e2.details).toMatchObject({ rule: "group_ciphersuite" });
    expect(a.transport.bundles).toHaveLength(0);
  });
});

describe("processWelcomeMessage: exactly-once key package consumption", () => {
  it("consumes the key package from all three tables; abort undoes it", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("w");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    await keypackage(b); // an unrelated one stays
    const kp = await keypackage(b);
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp]));
    const welcome = a.transport.last().welcome as Uint8Array;
    const before = await counts(b);
    expect(before).toMatchObject({
      keypackages: 2,
      hpke_private_keys: 2,
      encryption_keypairs: 2,
      conversations: 0,
    });

    const tx = await b.cc.newTransaction();
    expect(await tx.processWelcomeMessage(welcome)).toEqual(id);
    expect(await tx.getKeypackage(kp.ref())).toBeUndefined();
    expect(await tx.conversationExists(id)).toBe(true);
    await tx.abort();
    expect(await counts(b)).toEqual(before);
    expect(await b.cc.transaction((t) => t.getKeypackage(kp.ref()))).toBeDefined();

    await b.cc.transaction((t) => t.processWelcomeMessage(welcome));
    expect(await counts(b)).toMatchObject({
      keypackages: 1,
      hpke_private_keys: 1,
      encryption_keypairs: 1,
      conversations: 1,
    });
    expect(await b.cc.transaction((t) => t.getKeypackage(kp.ref()))).toBeUndefined();
    // processing the same Welcome again: its key package is gone
    await expectCode(
      b.cc.transaction((t) => t.processWelcomeMessage(welcome)),
      ErrorCode.OrphanWelcome,
    );
  });

  it("a Welcome for a key package removed beforehand → OrphanWelcome, nothing changes", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("o");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const kp = await keypackage(b);
    await keypackage(b);
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp]));
    await b.cc.transaction((tx) => tx.removeKeypackage(kp.ref()));
    const before = await counts(b);
    const err = await expectCode(
      b.cc.transaction((tx) => tx.processWelcomeMessage(a.transport.last().welcome as Uint8Array)),
      ErrorCode.OrphanWelcome,
    );
    expect(err.message).toMatch(/key package/);
    expect(await counts(b)).toEqual(before);
  });

  it("ConversationAlreadyExists keeps the key package, which then joins another conversation", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("exists");
    await b.cc.transaction((tx) => tx.createConversation(id, b.cred));
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const kp = await keypackage(b);
    await a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp]));
    const before = await counts(b);
    await expectCode(
      b.cc.transaction((tx) => tx.processWelcomeMessage(a.transport.last().welcome as Uint8Array)),
      ErrorCode.ConversationAlreadyExists,
    );
    expect(await counts(b)).toEqual(before);
    const other = enc("other");
    await a.cc.transaction((tx) => tx.createConversation(other, a.cred));
    await a.cc.transaction((tx) => tx.addClientsToConversation(other, [kp]));
    expect(
      await b.cc.transaction((tx) => tx.processWelcomeMessage(a.transport.last().welcome as Uint8Array)),
    ).toEqual(other);
    expect(await counts(b)).toMatchObject({ keypackages: 0, conversations: 2 });
  });

  it("a last-resort key package is kept and can join again", async () => {
    const a = await member(1);
    const b = await member(2);
    const kp = await keypackage(b, { lastResort: true });
    for (const name of ["lr1", "lr2"]) {
      const id = enc(name);
      await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
      await a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp]));
      await b.cc.transaction((tx) => tx.processWelcomeMessage(a.transport.last().welcome as Uint8Array));
      expect(await counts(b)).toMatchObject({ keypackages: 1, hpke_private_keys: 1, encryption_keypairs: 1 });
      expect(dec((await receive(b, id, await send(a, id, name))).message)).toBe(name);
    }
  });

  it("malformed input → InvalidWelcome; nothing changes", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("m");
    await group(id, a, b);
    await keypackage(b);
    const before = await counts(b);
    await expectCode(
      b.cc.transaction((tx) => tx.processWelcomeMessage(Uint8Array.of(1, 2, 3))),
      ErrorCode.InvalidWelcome,
    );
    const appMsg = await send(a, id, "not a welcome");
    await expectCode(
      b.cc.transaction((tx) => tx.processWelcomeMessage(appMsg)),
      ErrorCode.InvalidWelcome,
    );
    expect(await counts(b)).toEqual(before);
  });

  it("a Welcome whose secrets do not decrypt → InvalidWelcome, key package kept", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("bad");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    await a.cc.transaction(async (tx) => tx.addClientsToConversation(id, [await keypackage(b)]));
    const welcome = Uint8Array.from(a.transport.last().welcome as Uint8Array);
    welcome[welcome.length - 1] = (welcome.at(-1) as number) ^ 0xff; // inside the encrypted GroupInfo
    const before = await counts(b);
    await expectCode(
      b.cc.transaction((tx) => tx.processWelcomeMessage(welcome)),
      ErrorCode.InvalidWelcome,
    );
    expect(await counts(b)).toEqual(before);
  });
});

describe("removal, update, credentials, wipe", () => {
  it("three members: remove one, update, everybody left keeps decrypting", async () => {
    const [a, b, c] = [await member(1), await member(2), await member(3)];
    const id = enc("three");
    await group(id, a, b, c);
    expect(await c.cc.transaction((tx) => tx.getClientIds(id))).toHaveLength(3);
    const m = await send(c, id, "from c");
    expect(dec((await receive(a, id, m)).message)).toBe("from c");
    expect(dec((await receive(b, id, m)).message)).toBe("from c");

    await expectCode(
      a.cc.transaction((tx) => tx.removeClientsFromConversation(id, [clientId(77)])),
      ErrorCode.ClientNotFound,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.removeClientsFromConversation(id, [a.clientId])),
      ErrorCode.CannotRemoveSelf,
    );

    await a.cc.transaction((tx) => tx.removeClientsFromConversation(id, [c.clientId]));
    const removal = a.transport.last();
    expect(removal.welcome).toBeUndefined();
    const rb = await receive(b, id, removal.commit);
    expect(rb).toMatchObject({ kind: "commit", hasEpochChanged: true, isActive: true, epoch: 2n });
    expect(rb.senderClientId?.equals(a.clientId)).toBe(true);
    const rc = await receive(c, id, removal.commit);
    expect(rc.isActive).toBe(false);
    expect((await b.cc.transaction((tx) => tx.getClientIds(id))).map(String)).toEqual([
      a.clientId.toString(),
      b.clientId.toString(),
    ]);
    await expectCode(send(c, id, "I am out"), ErrorCode.InvalidMessage);

    await b.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    expect((await receive(a, id, b.transport.last().commit)).epoch).toBe(3n);
    expect(dec((await receive(b, id, await send(a, id, "after update"))).message)).toBe("after update");
    expect(dec((await receive(a, id, await send(b, id, "and back"))).message)).toBe("and back");
    // c cannot read the new epoch
    await expectCode(receive(c, id, await send(a, id, "secret")), ErrorCode.InvalidMessage);
  });

  it("removeCredential → CredentialStillInUse while a conversation uses it; wipe frees it", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("cred");
    await group(id, a, b);
    await expectCode(
      b.cc.transaction((tx) => tx.removeCredential(b.cred)),
      ErrorCode.CredentialStillInUse,
    );
    await expectCode(
      a.cc.transaction((tx) => tx.removeCredential(a.cred)),
      ErrorCode.CredentialStillInUse,
    );
    await b.cc.transaction((tx) => tx.wipeConversation(id));
    expect(await b.cc.transaction((tx) => tx.conversationExists(id))).toBe(false);
    await b.cc.transaction((tx) => tx.removeCredential(b.cred));
    expect((await counts(b)).credentials).toBe(0);
  });

  it("wipeConversation deletes only that conversation", async () => {
    const a = await member(1);
    await a.cc.transaction(async (tx) => {
      await tx.createConversation(enc("x"), a.cred);
      await tx.createConversation(enc("y"), a.cred);
    });
    await a.cc.transaction((tx) => tx.wipeConversation(enc("x")));
    expect((await counts(a)).conversations).toBe(1);
    expect(await a.cc.transaction((tx) => tx.conversationExists(enc("y")))).toBe(true);
  });
});

describe("stored state", () => {
  it("an unknown format, engine or engine version → UnsupportedConversationState", async () => {
    const a = await member(1);
    const id = enc("s");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const [row] = await a.database.keystore.all("conversations");
    if (row === undefined) throw new Error("no row");
    const put = async (state: Uint8Array) =>
      a.database.keystore.commit([
        { kind: "put", table: "conversations", key: Buffer.from(id).toString("hex"), row: { ...row, state } },
      ]);
    const good = row.state;
    const variants: Uint8Array[] = [];
    const bumped = Uint8Array.from(good);
    bumped[5] = 9; // format version 9
    variants.push(bumped);
    const badMagic = Uint8Array.from(good);
    badMagic[0] = 0;
    variants.push(badMagic);
    const engine = Uint8Array.from(good);
    engine[7] = "x".charCodeAt(0); // "xs-mls"
    variants.push(engine);
    const version = Uint8Array.from(good);
    version[14] = "9".charCodeAt(0); // engine version "9.6.4"
    variants.push(version);
    variants.push(good.slice(0, good.length - 1));
    for (const state of variants) {
      await put(state);
      await expectCode(
        a.cc.transaction((tx) => tx.encryptMessage(id, enc("x"))),
        ErrorCode.UnsupportedConversationState,
      );
      await expectCode(
        a.cc.transaction((tx) => tx.conversationEpoch(id)),
        ErrorCode.UnsupportedConversationState,
      );
    }
    await put(good);
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(0n);
  });

  it("states are tagged with our engine, and a state of the previous (ts-mls) format is refused naming it", async () => {
    const { ENGINE_NAME, ENGINE_VERSION } = await import("../../src/mls/group.js");
    expect([ENGINE_NAME, ENGINE_VERSION]).toEqual(["mls-keypackages", "1"]);
    const a = await member(1);
    const id = enc("old-format");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const [row] = await a.database.keystore.all("conversations");
    if (row === undefined) throw new Error("no row");
    expect(Array.from(row.state.subarray(0, 6))).toEqual([0x4d, 0x4b, 0x43, 0x53, 0, 2]); // "MKCS", format 2
    // format 1: "MKCS" 0001, engine "ts-mls", version "1.6.4", suite, epoch, state
    const old = Uint8Array.from([
      0x4d,
      0x4b,
      0x43,
      0x53,
      0,
      1,
      6,
      ...enc("ts-mls"),
      5,
      ...enc("1.6.4"),
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      0,
    ]);
    await a.database.keystore.commit([
      {
        kind: "put",
        table: "conversations",
        key: Buffer.from(id).toString("hex"),
        row: { ...row, state: old },
      },
    ]);
    const err = await expectCode(
      a.cc.transaction((tx) => tx.conversationEpoch(id)),
      ErrorCode.UnsupportedConversationState,
    );
    expect(err.message).toMatch(/ts-mls 1\.6\.4/);
    expect(err.details).toMatchObject({ formatVersion: 1, engine: "ts-mls", engineVersion: "1.6.4" });
  });

  it("an aborted transaction leaves the conversation as stored (no stale in-memory state)", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("aborted");
    await group(id, a, b);
    const tx = await a.cc.newTransaction();
    await tx.updateKeyingMaterial(id);
    expect(await tx.conversationEpoch(id)).toBe(2n);
    await tx.abort();
    expect(await a.cc.transaction((t) => t.conversationEpoch(id))).toBe(1n);
    expect(dec((await receive(b, id, await send(a, id, "epoch 1"))).message)).toBe("epoch 1");
    await a.cc.transaction((t) => t.updateKeyingMaterial(id));
    expect((await receive(b, id, a.transport.last().commit)).epoch).toBe(2n);
    expect(dec((await receive(a, id, await send(b, id, "epoch 2"))).message)).toBe("epoch 2");
  });

  it("a new session on the same database continues its conversations", async () => {
    const a = await member(1);
    const b = await member(2);
    const id = enc("reopen");
    await group(id, a, b);
    const b2 = await CoreCrypto.open(b.database, { clock: b.clock.now });
    b2.provideTransport(b.transport);
    const m = await send(a, id, "to the new session");
    expect(dec((await b2.transaction((tx) => tx.decryptMessage(id, m))).message)).toBe("to the new session");
    await b2.transaction((tx) => tx.updateKeyingMaterial(id));
    await receive(a, id, b.transport.last().commit);
    const back = await b2.transaction((tx) => tx.encryptMessage(id, enc("from the new session")));
    expect(dec((await receive(a, id, back)).message)).toBe("from the new session");
  });
});
