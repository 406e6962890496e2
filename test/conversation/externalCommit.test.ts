/**
 * `tx.joinByExternalCommit` (RFC 9420 §12.4.3.2) between sessions of our library: a client joins
 * from the GroupInfo of a commit bundle, the members process its commit with `decryptMessage`,
 * and messages flow every way. A refused GroupInfo is `InvalidGroupInfo` naming the rule, and a
 * transport that does not accept the commit leaves nothing stored.
 */
import { describe, expect, it } from "vitest";
import {
  Ciphersuite,
  CoreCrypto,
  Credential,
  Database,
  ErrorCode,
  MlsKeypackagesError,
  type ErrorCode as Code,
} from "../../src/index.js";
import { encode } from "../../src/mls/codec/index.js";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import { ExtensionTypes } from "../../src/mls/keypackage/types.js";
import { WireFormats } from "../../src/mls/framing/types.js";
import { writeMlsMessage } from "../../src/mls/group/codec.js";
import { signGroupInfo } from "../../src/mls/group/groupInfo.js";
import { decodeMlsMessage } from "../../src/mls/group/mlsMessage.js";
import {
  RecordingTransport,
  SUITE1,
  clientId,
  dec,
  enc,
  group,
  member,
  receive,
  send,
  type Member,
} from "./helpers.js";

async function rejects(p: Promise<unknown>, code: Code, rule?: RegExp): Promise<MlsKeypackagesError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call must reject").toBeInstanceOf(MlsKeypackagesError);
  const e = err as MlsKeypackagesError;
  expect({ code: e.code, message: e.message }).toMatchObject({ code });
  if (rule !== undefined) expect(String(e.details.rule)).toMatch(rule);
  return e;
}

/** alice created `id` and added bob; the GroupInfo of that commit bundle. */
async function aliceAndBob(name: string) {
  const id = enc(name);
  const alice = await member(1);
  const bob = await member(2);
  await group(id, alice, bob);
  return { id, alice, bob, groupInfo: alice.transport.last().groupInfo };
}

async function ids(m: Member, id: Uint8Array): Promise<string[]> {
  return (await m.cc.transaction((tx) => tx.getClientIds(id))).map(String).sort();
}

/** `gi` (an MLSMessage(GroupInfo)) with its extensions changed by `edit`, re-signed by alice. */
async function resigned(
  gi: Uint8Array,
  alice: Member,
  edit: (extensions: { extensionType: number; extensionData: Uint8Array }[]) => typeof extensions,
): Promise<Uint8Array> {
  const m = decodeMlsMessage(gi, ErrorCode.InvalidGroupInfo);
  if (m.wireFormat !== WireFormats.mls_group_info) throw new Error("not a GroupInfo");
  const row = await alice.database.keystore.get("credentials", alice.cred.id);
  if (row === undefined) throw new Error("no credential row");
  const { signature: _s, ...tbs } = m.groupInfo;
  const extensions = edit([...m.groupInfo.extensions]);
  const signed = await signGroupInfo(
    await ciphersuiteImpl(m.groupInfo.groupContext.ciphersuite),
    { ...tbs, extensions },
    row.signaturePrivateKey,
  );
  return encode({ wireFormat: WireFormats.mls_group_info, groupInfo: signed }, writeMlsMessage);
}

describe("joinByExternalCommit", () => {
  it("joins from a commit bundle's GroupInfo; the members process the commit and everybody talks", async () => {
    const { id, alice, bob, groupInfo } = await aliceAndBob("external-join");
    const carol = await member(3);
    const joined = await carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred));
    expect(joined.conversationId).toEqual(id);
    // the commit went through carol's transport with the new epoch's GroupInfo
    const bundle = carol.transport.last();
    expect(bundle.commit).toEqual(joined.commit);
    expect(bundle.welcome).toBeUndefined();
    expect(await carol.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(2n);

    for (const m of [alice, bob]) {
      const r = await receive(m, id, joined.commit);
      expect(r).toMatchObject({ kind: "commit", hasEpochChanged: true, isActive: true, epoch: 2n });
      expect(r.senderClientId?.toString()).toBe(carol.clientId.toString());
    }
    const everyone = [alice, bob, carol].map((m) => m.clientId.toString()).sort();
    for (const m of [alice, bob, carol]) expect(await ids(m, id)).toEqual(everyone);
    for (const from of [alice, bob, carol]) {
      const msg = await send(from, id, `from ${from.clientId.toString()}`);
      for (const to of [alice, bob, carol])
        if (to !== from)
          expect(dec((await receive(to, id, msg)).message)).toBe(`from ${from.clientId.toString()}`);
    }

    // the joiner commits like any member; a second external joiner uses carol's GroupInfo
    await carol.cc.transaction((tx) => tx.updateKeyingMaterial(id));
    for (const m of [alice, bob]) await receive(m, id, carol.transport.last().commit);
    const dave = await member(4);
    const second = await dave.cc.transaction((tx) =>
      tx.joinByExternalCommit(carol.transport.last().groupInfo, dave.cred),
    );
    for (const m of [alice, bob, carol]) await receive(m, id, second.commit);
    expect(dec((await receive(alice, id, await send(dave, id, "dave here"))).message)).toBe("dave here");
    expect(dec((await receive(dave, id, await send(bob, id, "hi dave"))).message)).toBe("hi dave");
  });

  it("the transport answers retry or abort: nothing is stored", async () => {
    const { id, groupInfo } = await aliceAndBob("external-retry");
    const carol = await member(3);
    carol.transport.responses.push("retry", { abort: { reason: "no" } });
    await rejects(
      carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred)),
      ErrorCode.TransportRetry,
    );
    await rejects(
      carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred)),
      ErrorCode.MessageRejected,
    );
    expect(await carol.cc.transaction((tx) => tx.conversationExists(id))).toBe(false);
    expect((await carol.database.counts()).conversations ?? 0).toBe(0);
    // then accepted
    await carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred));
    expect(await carol.cc.transaction((tx) => tx.conversationExists(id))).toBe(true);
  });

  it("no transport: TransportMissing before any work", async () => {
    const { groupInfo } = await aliceAndBob("external-no-transport");
    const carol = await member(3, undefined, { transport: false });
    await rejects(
      carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred)),
      ErrorCode.TransportMissing,
    );
  });

  it("an existing conversation: ConversationAlreadyExists, nothing sent", async () => {
    const { bob, groupInfo } = await aliceAndBob("external-exists");
    const sent = bob.transport.bundles.length;
    await rejects(
      bob.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, bob.cred)),
      ErrorCode.ConversationAlreadyExists,
    );
    expect(bob.transport.bundles).toHaveLength(sent);
  });

  describe("a GroupInfo we cannot join from is InvalidGroupInfo with its rule; nothing stored or sent", () => {
    const cases: [string, RegExp, (gi: Uint8Array, alice: Member) => Promise<Uint8Array>][] = [
      [
        "signature that does not verify (§12.4.3.2)",
        /§12\.4\.3\.2 group_info_signature/,
        async (gi) => {
          const bad = Uint8Array.from(gi);
          bad[bad.length - 1] = (bad.at(-1) as number) ^ 1; // last byte of the signature
          return bad;
        },
      ],
      [
        "no external_pub extension (§12.4.3.2)",
        /§12\.4\.3\.2 external_pub/,
        (gi, alice) =>
          resigned(gi, alice, (exts) => exts.filter((e) => e.extensionType !== ExtensionTypes.external_pub)),
      ],
      [
        "no ratchet_tree extension (§12.4.3.3)",
        /§12\.4\.3\.3 ratchet_tree/,
        (gi, alice) =>
          resigned(gi, alice, (exts) => exts.filter((e) => e.extensionType !== ExtensionTypes.ratchet_tree)),
      ],
      ["trailing bytes (§2.1)", /§2\.1 trailing/, async (gi) => Uint8Array.from([...gi, 0])],
      ["a Welcome instead: not a GroupInfo (§2.1)", /§2\.1/, async () => Uint8Array.from([0, 1, 0, 3, 0])],
    ];
    it.each(cases)("%s", async (_name, rule, forge) => {
      const { id, alice, groupInfo } = await aliceAndBob(`external-bad-${_name.slice(0, 12)}`);
      const carol = await member(3);
      const forged = await forge(groupInfo, alice);
      await rejects(
        carol.cc.transaction((tx) => tx.joinByExternalCommit(forged, carol.cred)),
        ErrorCode.InvalidGroupInfo,
        rule,
      );
      expect(carol.transport.bundles).toHaveLength(0);
      expect(await carol.cc.transaction((tx) => tx.conversationExists(id))).toBe(false);
      // the genuine one joins
      await carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred));
    });

    it("a credential of another cipher suite (§12.4.3.2)", async () => {
      const { groupInfo } = await aliceAndBob("external-suite");
      const carol = await member(3, Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256);
      await rejects(
        carol.cc.transaction((tx) => tx.joinByExternalCommit(groupInfo, carol.cred)),
        ErrorCode.InvalidGroupInfo,
        /§12\.4\.3\.2 ciphersuite/,
      );
    });

    it("not bytes", async () => {
      const carol = await member(3);
      await rejects(
        carol.cc.transaction((tx) => tx.joinByExternalCommit("x" as unknown as Uint8Array, carol.cred)),
        ErrorCode.InvalidGroupInfo,
      );
    });
  });

  it("a tree leaf the authentication service refuses: CredentialRejected, nothing stored", async () => {
    const { id, groupInfo } = await aliceAndBob("external-as");
    const database = await Database.inMemory();
    const strict = await CoreCrypto.open(database, {
      authenticationService: {
        validate: (input) =>
          input.context === "tree" ? { ok: false, reason: "not on my list" } : { ok: true },
      },
    });
    const transport = new RecordingTransport();
    strict.provideTransport(transport);
    const cred = await strict.transaction((tx) => tx.addCredential(Credential.basic(SUITE1, clientId(3))));
    await rejects(
      strict.transaction((tx) => tx.joinByExternalCommit(groupInfo, cred)),
      ErrorCode.CredentialRejected,
    );
    expect(transport.bundles).toHaveLength(0);
    expect(await strict.transaction((tx) => tx.conversationExists(id))).toBe(false);
  });
});
