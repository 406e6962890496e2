/**
 * ts-mls itself (raw API, its default crypto provider, no adapter of ours) as a second peer
 * beside CoreCrypto: it creates a group and adds us, and we create one and add it; in both, a
 * commit and messages each way (and ts-mls adds a second client of ours to our group).
 */
import { describe, expect, it } from "vitest";
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCryptoProvider,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteImpl,
  joinGroup,
  processMessage,
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type PrivateKeyPackage,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { decodeKeyPackage, encodeKeyPackage } from "ts-mls/keyPackage.js";
import { Keypackage, type Ciphersuite } from "../../src/index.js";
import { dec, enc, keypackage, member, receive, send } from "../conversation/helpers.js";

const SUITES = [1, 2, 3, 4, 5, 6, 7] as Ciphersuite[];
const TS_MLS_ID = "99999999-8888-4777-8666-555555555555:7e@example.org";

async function tsMlsClient(
  suite: Ciphersuite,
): Promise<{ cs: CiphersuiteImpl; kp: KeyPackage; priv: PrivateKeyPackage }> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId), defaultCryptoProvider);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const { publicPackage, privatePackage } = await generateKeyPackage(
    { credentialType: "basic", identity: enc(TS_MLS_ID) },
    {
      versions: ["mls10"],
      ciphersuites: [cs.name],
      extensions: [],
      proposals: [],
      credentials: ["basic", "x509"],
    },
    { notBefore: now - 60n, notAfter: now + 86_400n },
    [],
    cs,
  );
  return { cs, kp: publicPackage, priv: privatePackage };
}

/** A ts-mls group member driven through the raw API. */
class TsPeer {
  constructor(
    public state: ClientState,
    readonly cs: CiphersuiteImpl,
  ) {}

  /** Process an MLSMessage; the plaintext for application messages. */
  async receive(bytes: Uint8Array): Promise<string | undefined> {
    const msg = decodeMlsMessage(bytes, 0)?.[0];
    if (
      msg === undefined ||
      (msg.wireformat !== "mls_private_message" && msg.wireformat !== "mls_public_message")
    ) {
      throw new Error("not a message");
    }
    const r = await processMessage(msg, this.state, emptyPskIndex, acceptAll, this.cs);
    this.state = r.newState;
    return r.kind === "applicationMessage" ? dec(r.message) : undefined;
  }

  async send(text: string): Promise<Uint8Array> {
    const r = await createApplicationMessage(this.state, enc(text), this.cs);
    this.state = r.newState;
    return encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_private_message",
      privateMessage: r.privateMessage,
    });
  }
}

describe.each(SUITES)("conversations with raw ts-mls 1.6.4 (default provider), suite %i", (suite) => {
  it("(1) ts-mls adds our key package; we join from its Welcome; messages and commits both ways", async () => {
    const { cs, kp, priv } = await tsMlsClient(suite);
    const us = await member(201, suite);
    const ours = await keypackage(us);
    const id = enc(`tsmls-created-${suite}`);
    const peer = new TsPeer(await createGroup(id, kp, priv, [], cs), cs);
    const add = await createCommit(
      { state: peer.state, cipherSuite: cs },
      {
        extraProposals: [
          {
            proposalType: "add",
            add: { keyPackage: decodeKeyPackage(ours.serialize(), 0)?.[0] as KeyPackage },
          },
        ],
        ratchetTreeExtension: true,
      },
    );
    peer.state = add.newState;
    if (add.welcome === undefined) throw new Error("no welcome");
    const welcome = encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: add.welcome });
    expect(await us.cc.transaction((tx) => tx.processWelcomeMessage(welcome))).toEqual(id);
    expect(await us.database.counts()).toMatchObject({
      keypackages: 0,
      hpke_private_keys: 0,
      encryption_keypairs: 0,
    });

    const r = await receive(us, id, await peer.send("from ts-mls"));
    expect(dec(r.message)).toBe("from ts-mls");
    expect(r.senderClientId?.toString()).toBe(TS_MLS_ID);
    expect(await peer.receive(await send(us, id, "from us"))).toBe("from us");

    // ts-mls commits as a PrivateMessage (its default): we accept both framings
    const upd = await createCommit({ state: peer.state, cipherSuite: cs });
    peer.state = upd.newState;
    expect((await receive(us, id, encodeMlsMessage(upd.commit))).hasEpochChanged).toBe(true);
    await us.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    await peer.receive(us.transport.last().commit);
    expect(peer.state.groupContext.epoch).toBe(await us.cc.transaction((tx) => tx.conversationEpoch(id)));
    expect(await peer.receive(await send(us, id, "epoch 3"))).toBe("epoch 3");
  });

  it("(2) we add ts-mls's key package; ts-mls joins from our Welcome (ratchet tree inside)", async () => {
    const { cs, kp, priv } = await tsMlsClient(suite);
    const us = await member(202, suite);
    const id = enc(`ours-for-tsmls-${suite}`);
    await us.cc.transaction((tx) => tx.createConversation(id, us.cred));
    await us.cc.transaction((tx) =>
      tx.addClientsToConversation(id, [Keypackage.deserialize(encodeKeyPackage(kp))]),
    );
    const w = decodeMlsMessage(us.transport.last().welcome as Uint8Array, 0)?.[0];
    if (w?.wireformat !== "mls_welcome") throw new Error("not a welcome");
    // no ratchet tree passed: it comes from the Welcome's ratchet_tree extension
    const peer = new TsPeer(await joinGroup(w.welcome, kp, priv, emptyPskIndex, cs), cs);
    expect(peer.state.groupContext.groupId).toEqual(id);
    expect(await peer.receive(await send(us, id, "hello ts-mls"))).toBe("hello ts-mls");
    expect(dec((await receive(us, id, await peer.send("hello back"))).message)).toBe("hello back");

    // a commit each way: ts-mls's self-update (a PrivateMessage, its default), then ours
    const upd = await createCommit({ state: peer.state, cipherSuite: cs });
    peer.state = upd.newState;
    const r = await receive(us, id, encodeMlsMessage(upd.commit));
    expect(r).toMatchObject({ kind: "commit", hasEpochChanged: true, epoch: 2n });
    expect(r.senderClientId?.toString()).toBe(TS_MLS_ID);
    await us.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    await peer.receive(us.transport.last().commit);
    expect(peer.state.groupContext.epoch).toBe(3n);

    // ts-mls adds a second client of ours to our group: it joins from ts-mls's Welcome
    const u2 = await member(203, suite);
    const kp2 = decodeKeyPackage((await keypackage(u2)).serialize(), 0)?.[0] as KeyPackage;
    const add = await createCommit(
      { state: peer.state, cipherSuite: cs },
      { extraProposals: [{ proposalType: "add", add: { keyPackage: kp2 } }], ratchetTreeExtension: true },
    );
    peer.state = add.newState;
    if (add.welcome === undefined) throw new Error("no welcome");
    expect((await receive(us, id, encodeMlsMessage(add.commit))).epoch).toBe(4n);
    const welcome = encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: add.welcome });
    expect(await u2.cc.transaction((tx) => tx.processWelcomeMessage(welcome))).toEqual(id);
    const fromU2 = await send(u2, id, "third member");
    expect(await peer.receive(fromU2)).toBe("third member");
    expect(dec((await receive(us, id, fromU2)).message)).toBe("third member");
    const fromPeer = await peer.send("to both");
    for (const m of [us, u2]) expect(dec((await receive(m, id, fromPeer)).message)).toBe("to both");
    expect((await u2.cc.transaction((tx) => tx.getClientIds(id))).map(String).sort()).toEqual(
      [TS_MLS_ID, us.clientId.toString(), u2.clientId.toString()].sort(),
    );
  });
});
