/**
 * The session's authentication service (RFC 9420 §5.3.1): asked about every credential the
 * session accepts — key packages it adds, every leaf of a tree it joins, and the added, updated
 * and committer leaves of commits and proposals it receives. A refusal is `CredentialRejected`
 * naming the member and the reason, and changes nothing. `getClientIds` lists every member.
 */
import { describe, expect, it } from "vitest";
import {
  CoreCrypto,
  Credential,
  Database,
  ErrorCode,
  Keypackage,
  MlsKeypackagesError,
  defaultAuthenticationService,
  type AuthenticationInput,
  type AuthenticationResult,
  type AuthenticationService,
  type ErrorCode as Code,
} from "../../src/index.js";
import { TestClock } from "../helpers/session.js";
import {
  RecordingTransport,
  SUITE1,
  clientId,
  dec,
  enc,
  keypackage,
  member,
  receive,
  send,
  type Member,
} from "./helpers.js";
import { Hostile, asTs, refsOf, tsKeyPackage, tsSuite } from "./negativeCraft.js";

/** An authentication service that records what it is asked and refuses what `refuse` names. */
class RecordingService implements AuthenticationService {
  readonly calls: AuthenticationInput[] = [];
  constructor(
    readonly refuse: (input: AuthenticationInput) => string | undefined = () => undefined,
    readonly asynchronous = false,
  ) {}
  validate(input: AuthenticationInput): AuthenticationResult | Promise<AuthenticationResult> {
    this.calls.push(input);
    const reason = this.refuse(input);
    const result: AuthenticationResult = reason === undefined ? { ok: true } : { ok: false, reason };
    return this.asynchronous ? Promise.resolve(result) : result;
  }
  /** (context, identity) of every call, identities as text. */
  seen(): [string, string][] {
    return this.calls.map((c) => [c.context, identityOf(c)]);
  }
}

function identityOf(input: AuthenticationInput): string {
  return input.credential.credentialType === 1 ? dec(input.credential.identity) : "x509";
}

/** Like `member()`, with an authentication service. */
async function memberWith(n: number, authenticationService: AuthenticationService): Promise<Member> {
  const clock = new TestClock(Date.now());
  const database = await Database.inMemory();
  const cc = await CoreCrypto.open(database, { clock: clock.now, authenticationService });
  const id = clientId(n);
  const cred = await cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE1, id)));
  const transport = new RecordingTransport();
  cc.provideTransport(transport);
  return { cc, database, cred, clientId: id, transport, clock };
}

async function rejected(
  p: Promise<unknown>,
  code: Code = ErrorCode.CredentialRejected,
): Promise<MlsKeypackagesError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call must reject").toBeInstanceOf(MlsKeypackagesError);
  const e = err as MlsKeypackagesError;
  expect(e.code).toBe(code);
  expect(String(e.details.rule)).toMatch(/§5\.3\.1/);
  return e;
}

async function rawState(m: Member, id: Uint8Array): Promise<Uint8Array | undefined> {
  const rows = await m.database.keystore.all("conversations");
  return rows.find((r) => Buffer.from(r.id).equals(Buffer.from(id)))?.state;
}

/** A ts-mls member ("peer") created `id` and added `us`, who joined. */
async function withPeer(us: Member, name: string, peerIdentity = "peer") {
  const cs = await tsSuite(SUITE1);
  const id = enc(name);
  const peer = await Hostile.create(id, cs, await tsKeyPackage(cs, { identity: peerIdentity }));
  const { welcome } = await peer.add(asTs(await keypackage(us)));
  await us.cc.transaction((tx) => tx.processWelcomeMessage(welcome as Uint8Array));
  return { cs, id, peer };
}

async function unchangedAndWorking(
  us: Member,
  id: Uint8Array,
  peer: Hostile,
  before: Uint8Array | undefined,
) {
  expect(await rawState(us, id)).toEqual(before);
  expect(dec(await peer.receive(await send(us, id, "still here")))).toBe("still here");
  expect(dec((await receive(us, id, await peer.send("and back"))).message)).toBe("and back");
}

describe("the default authentication service refuses an empty Basic identity", () => {
  it("in a key package we add: CredentialRejected naming it, nothing sent", async () => {
    const a = await member(1);
    const id = enc("empty-add");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const cs = await tsSuite(SUITE1);
    const kp = Keypackage.deserialize((await tsKeyPackage(cs, { identity: "" })).bytes);
    const err = await rejected(a.cc.transaction((tx) => tx.addClientsToConversation(id, [kp])));
    expect(err.details).toMatchObject({ index: 0, context: "keypackage" });
    expect(String(err.details.reason)).toMatch(/empty/);
    expect(a.transport.bundles).toHaveLength(0);
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(0n);
    expect(await a.cc.transaction((tx) => tx.getClientIds(id))).toHaveLength(1);
  });

  it("in a commit we receive: CredentialRejected naming the leaf, conversation unchanged", async () => {
    const us = await member(1);
    const { id, peer, cs } = await withPeer(us, "empty-commit");
    const { commit } = await peer.commit(
      [{ proposalType: "add", add: { keyPackage: (await tsKeyPackage(cs, { identity: "" })).kp } }],
      { apply: false },
    );
    const before = await rawState(us, id);
    const err = await rejected(receive(us, id, commit));
    expect(err.details).toMatchObject({ leafIndex: 2, context: "keypackage" });
    await unchangedAndWorking(us, id, peer, before);
    expect((await us.cc.transaction((tx) => tx.getClientIds(id))).map(String)).toEqual([
      "peer",
      us.clientId.toString(),
    ]);
  });

  it("in the tree of a Welcome: CredentialRejected, the key package kept and usable", async () => {
    const us = await member(1);
    const cs = await tsSuite(SUITE1);
    const kp = await keypackage(us);
    const id = enc("empty-tree");
    const nobody = await Hostile.create(id, cs, await tsKeyPackage(cs, { identity: "" }));
    const welcome = (await nobody.add(asTs(kp))).welcome as Uint8Array;
    const refs = await refsOf(us);
    const err = await rejected(us.cc.transaction((tx) => tx.processWelcomeMessage(welcome)));
    expect(err.details).toMatchObject({ leafIndex: 0, context: "tree" });
    expect(await refsOf(us)).toEqual(refs);
    expect(await us.cc.transaction((tx) => tx.conversationExists(id))).toBe(false);
    // the same key package then joins a group whose members are all named
    const other = enc("named");
    const peer = await Hostile.create(other, cs);
    const good = (await peer.add(asTs(kp))).welcome as Uint8Array;
    expect(await us.cc.transaction((tx) => tx.processWelcomeMessage(good))).toEqual(other);
  });

  it("is the exported default, and refuses an empty X.509 chain too", async () => {
    const ok = await defaultAuthenticationService.validate({
      credential: { credentialType: 1, identity: enc("x") },
      signatureKey: new Uint8Array(32),
      ciphersuite: 1,
      context: "tree",
    });
    expect(ok).toEqual({ ok: true });
    const empty = await defaultAuthenticationService.validate({
      credential: { credentialType: 2, certificates: [] },
      signatureKey: new Uint8Array(32),
      ciphersuite: 1,
      context: "tree",
    });
    expect(empty.ok).toBe(false);
  });
});

describe("an application's authentication service", () => {
  it("is asked about every credential, with its context, suite and signature key", async () => {
    const service = new RecordingService();
    const us = await memberWith(1, service);
    const { id, peer, cs } = await withPeer(us, "contexts");
    // joining: every leaf of the tree
    expect(service.seen()).toEqual([
      ["tree", "peer"],
      ["tree", us.clientId.toString()],
    ]);
    expect(service.calls.every((c) => c.ciphersuite === SUITE1)).toBe(true);
    const peerLeaf = peer.state.ratchetTree[0];
    if (peerLeaf?.nodeType !== "leaf") throw new Error("no peer leaf");
    expect(service.calls[0]?.signatureKey).toEqual(peerLeaf.leaf.signaturePublicKey);

    // a key package we add
    service.calls.length = 0;
    const b = await member(2);
    await us.cc.transaction(async (tx) => tx.addClientsToConversation(id, [await keypackage(b)]));
    await peer.receive(us.transport.last().commit);
    expect(service.seen()).toEqual([["keypackage", b.clientId.toString()]]);

    // a commit with a path from the peer: its new leaf
    service.calls.length = 0;
    await receive(us, id, (await peer.commit([])).commit);
    expect(service.seen()).toEqual([["commit_path", "peer"]]);

    // a proposal to add: its key package (we then commit it)
    service.calls.length = 0;
    const x = await tsKeyPackage(cs, { identity: "x" });
    const proposal = await peer.propose({ proposalType: "add", add: { keyPackage: x.kp } });
    expect((await receive(us, id, proposal)).kind).toBe("proposal");
    expect(service.seen()).toEqual([["keypackage", "x"]]);
    await us.cc.transaction((tx) => tx.commitPendingProposals(id));
    await peer.receive(us.transport.last().commit);

    // an added leaf in a received commit
    service.calls.length = 0;
    const y = await tsKeyPackage(cs, { identity: "y" });
    await receive(us, id, (await peer.add(y.kp)).commit);
    expect(service.seen()).toEqual([["keypackage", "y"]]);
    expect((await us.cc.transaction((tx) => tx.getClientIds(id))).map(String)).toEqual([
      "peer",
      us.clientId.toString(),
      b.clientId.toString(),
      "x",
      "y",
    ]);

    // a proposal to update the peer's leaf
    service.calls.length = 0;
    const update = await peer.updateLeaf();
    expect(
      (await receive(us, id, await peer.propose({ proposalType: "update", update: { leafNode: update } })))
        .kind,
    ).toBe("proposal");
    expect(service.seen()).toEqual([["update", "peer"]]);
  });

  it("a refused member in a received commit: CredentialRejected with leaf, client id, reason", async () => {
    const service = new RecordingService((c) =>
      identityOf(c) === "mallory" ? "not in the directory" : undefined,
    );
    const us = await memberWith(1, service);
    const { id, peer, cs } = await withPeer(us, "refuse-commit");
    const mallory = await tsKeyPackage(cs, { identity: "mallory" });
    const { commit } = await peer.commit([{ proposalType: "add", add: { keyPackage: mallory.kp } }], {
      apply: false,
    });
    const before = await rawState(us, id);
    const err = await rejected(receive(us, id, commit));
    expect(err.details).toMatchObject({
      leafIndex: 2,
      clientId: "mallory",
      context: "keypackage",
      reason: "not in the directory",
    });
    expect(err.message).toMatch(/mallory/);
    await unchangedAndWorking(us, id, peer, before);
  });

  it("a refused key package we add: CredentialRejected naming it, nothing sent (asynchronous service)", async () => {
    const b = await member(2);
    const service = new RecordingService(
      (c) => (identityOf(c) === b.clientId.toString() ? "device revoked" : undefined),
      true,
    );
    const a = await memberWith(1, service);
    const id = enc("refuse-add");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    const ok = await keypackage(await member(3));
    const err = await rejected(
      a.cc.transaction(async (tx) => tx.addClientsToConversation(id, [ok, await keypackage(b)])),
    );
    expect(err.details).toMatchObject({
      index: 1,
      clientId: b.clientId.toString(),
      reason: "device revoked",
    });
    expect(a.transport.bundles).toHaveLength(0);
    expect(await a.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(0n);
  });

  it("a refused member of a Welcome's tree: CredentialRejected, no key package lost", async () => {
    const service = new RecordingService((c) => (identityOf(c) === "peer" ? "unknown user" : undefined));
    const us = await memberWith(1, service);
    const cs = await tsSuite(SUITE1);
    const kp = await keypackage(us);
    const id = enc("refuse-tree");
    const peer = await Hostile.create(id, cs, await tsKeyPackage(cs, { identity: "peer" }));
    const welcome = (await peer.add(asTs(kp))).welcome as Uint8Array;
    const refs = await refsOf(us);
    const err = await rejected(us.cc.transaction((tx) => tx.processWelcomeMessage(welcome)));
    expect(err.details).toMatchObject({
      leafIndex: 0,
      clientId: "peer",
      context: "tree",
      reason: "unknown user",
    });
    expect(await refsOf(us)).toEqual(refs);
    expect(await us.cc.transaction((tx) => tx.conversationExists(id))).toBe(false);
  });

  it("a service that throws, or answers something else than { ok: true }, refuses (fail closed)", async () => {
    const boom = new Error("directory unreachable");
    let mode: "throw" | "garbage" = "throw";
    const service: AuthenticationService = {
      validate: (input) => {
        if (identityOf(input) !== "x") return { ok: true };
        if (mode === "throw") throw boom;
        return { ok: "yes" } as unknown as AuthenticationResult;
      },
    };
    const us = await memberWith(1, service);
    const { id, peer, cs } = await withPeer(us, "fail-closed");
    const x = await tsKeyPackage(cs, { identity: "x" });
    const { commit } = await peer.commit([{ proposalType: "add", add: { keyPackage: x.kp } }], {
      apply: false,
    });
    const e1 = await rejected(receive(us, id, commit));
    expect(String(e1.details.reason)).toMatch(/directory unreachable/);
    expect(e1.cause).toBe(boom);
    mode = "garbage";
    await rejected(receive(us, id, commit));
    expect(await us.cc.transaction((tx) => tx.conversationEpoch(id))).toBe(1n);
  });

  it("CoreCrypto.open refuses something that is not a service", async () => {
    const database = await Database.inMemory();
    await expect(
      CoreCrypto.open(database, { authenticationService: {} as unknown as AuthenticationService }),
    ).rejects.toBeInstanceOf(TypeError);
  });
});

describe("getClientIds lists every member, always", () => {
  it("identities that are not Wire client ids, and an X.509 member (by its signature key)", async () => {
    // An undecodable certificate fails X.509 validation: the policy hands it to the default
    // service (which accepts any non-empty chain) so that the listing fallback can be seen.
    const us = await member(1, undefined, { x509Policy: { enforce: false } });
    const { id, peer, cs } = await withPeer(us, "listing", "just-a-name");
    const x509 = await tsKeyPackage(cs, { certificate: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01) });
    await receive(us, id, (await peer.add(x509.kp)).commit);
    const ids = await us.cc.transaction((tx) => tx.getClientIds(id));
    expect(ids).toHaveLength(3);
    expect(ids.map(String).slice(0, 2)).toEqual(["just-a-name", us.clientId.toString()]);
    const x509Leaf = x509.kp.leafNode.signaturePublicKey;
    expect(ids[2]?.bytes()).toEqual(x509Leaf);
    // the sender of a message is named the same way
    expect((await receive(us, id, await peer.send("hi"))).senderClientId?.toString()).toBe("just-a-name");
    // and the listed id removes that member
    await us.cc.transaction((tx) => tx.removeClientsFromConversation(id, [ids[2] as (typeof ids)[number]]));
    await peer.receive(us.transport.last().commit);
    expect(await us.cc.transaction((tx) => tx.getClientIds(id))).toHaveLength(2);
    expect(peer.state.ratchetTree.filter((n) => n?.nodeType === "leaf")).toHaveLength(2);
  });
});
