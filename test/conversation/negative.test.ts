/**
 * Hostile input at the public API (RFC 9420 rules a member or a delivery service can break).
 * Each case crafts one violation and checks: the typed error, its `details.rule` (the RFC
 * section), and that nothing changed — same epoch and members, the conversation still works,
 * no key package consumed, and the correct input still accepted afterwards.
 */
import { describe, expect, it } from "vitest";
import type { Proposal } from "ts-mls";
import type { RatchetTree } from "ts-mls/ratchetTree.js";
import { ErrorCode, MlsKeypackagesError, type ErrorCode as Code } from "../../src/index.js";
import { SUITE1, dec, enc, keypackage, member, receive, send, type Member } from "./helpers.js";
import {
  Hostile,
  asTs,
  openWelcome,
  refsOf,
  resignCommitLeaf,
  sealWelcome,
  signedGroupInfo,
  treeOf,
  tsKeyPackage,
  tsKeyPackageWithEncryptionKey,
  tsSuite,
  withTree,
} from "./negativeCraft.js";

async function rejects(p: Promise<unknown>, code: Code, rule: RegExp): Promise<MlsKeypackagesError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call must reject").toBeInstanceOf(MlsKeypackagesError);
  const e = err as MlsKeypackagesError;
  expect({ code: e.code, message: e.message }).toMatchObject({ code });
  expect(String(e.details.rule)).toMatch(rule);
  return e;
}

async function rawState(m: Member, id: Uint8Array): Promise<Uint8Array | undefined> {
  const rows = await m.database.keystore.all("conversations");
  return rows.find((r) => Buffer.from(r.id).equals(Buffer.from(id)))?.state;
}

/** A ts-mls member `peer` created `id` and added our `us`, who joined. */
async function hostileGroup(name: string) {
  const cs = await tsSuite(SUITE1);
  const id = enc(name);
  const peer = await Hostile.create(id, cs);
  const us = await member(1);
  const { welcome } = await peer.add(asTs(await keypackage(us)));
  await us.cc.transaction((tx) => tx.processWelcomeMessage(welcome as Uint8Array));
  return { cs, id, peer, us };
}

/** Snapshot of what must not change when a message is rejected. */
async function snapshot(us: Member, id: Uint8Array) {
  return {
    epoch: await us.cc.transaction((tx) => tx.conversationEpoch(id)),
    members: (await us.cc.transaction((tx) => tx.getClientIds(id))).map(String),
    state: await rawState(us, id),
  };
}

/** Unchanged, and still talking with the peer both ways. */
async function stillWorks(
  us: Member,
  id: Uint8Array,
  peer: Hostile,
  before: Awaited<ReturnType<typeof snapshot>>,
) {
  expect(await snapshot(us, id)).toEqual(before);
  expect(dec(await peer.receive(await send(us, id, "still here")))).toBe("still here");
  expect(dec((await receive(us, id, await peer.send("and back"))).message)).toBe("and back");
}

// ── Welcome ─────────────────────────────────────────────────────────────────

/** A victim with a key package `kp`, a hostile creator who made `welcome` for it. */
async function welcomeFor(name: string, options: { withPath?: boolean } = {}) {
  const cs = await tsSuite(SUITE1);
  const id = enc(name);
  const peer = await Hostile.create(id, cs);
  const us = await member(1);
  await keypackage(us); // an unrelated package, which must stay too
  const kp = await keypackage(us);
  if (options.withPath === true) {
    // remove + add in one commit: an UpdatePath, so the Welcome carries a path_secret (§12.4.3.1)
    const x = await tsKeyPackage(cs, { identity: "x" });
    const y = await tsKeyPackage(cs, { identity: "y" });
    await peer.add(x.kp, y.kp);
    const r = await peer.commit([
      { proposalType: "remove", remove: { removed: 1 } },
      { proposalType: "add", add: { keyPackage: asTs(kp) } },
    ]);
    return { cs, id, peer, us, kp, welcome: r.welcome as Uint8Array };
  }
  const { welcome } = await peer.add(asTs(kp));
  return { cs, id, peer, us, kp, welcome: welcome as Uint8Array };
}

/** The hostile Welcome was refused and changed nothing; the genuine one then joins. */
async function joinsAfterwards(w: Awaited<ReturnType<typeof welcomeFor>>, refs: string[]) {
  expect(await refsOf(w.us)).toEqual(refs);
  expect(await w.us.cc.transaction((tx) => tx.conversationExists(w.id))).toBe(false);
  expect(await w.us.cc.transaction((tx) => tx.processWelcomeMessage(w.welcome))).toEqual(w.id);
  expect((await refsOf(w.us)).length).toBe(refs.length - 1);
  expect(dec(await w.peer.receive(await send(w.us, w.id, "joined")))).toBe("joined");
}

describe("a hostile Welcome is refused, and no key package is lost", () => {
  it("path_secret that does not match the tree (§12.4.3.1)", async () => {
    const w = await welcomeFor("path-secret", { withPath: true });
    const opened = await openWelcome(w.welcome, w.us, w.kp);
    expect(opened.groupSecrets.pathSecret).toBeDefined();
    const forged = await sealWelcome(opened, {
      groupSecrets: { ...opened.groupSecrets, pathSecret: w.cs.rng.randomBytes(w.cs.kdf.size) },
    });
    const refs = await refsOf(w.us);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(forged)),
      ErrorCode.InvalidWelcome,
      /§12\.4\.3\.1/,
    );
    await joinsAfterwards(w, refs);
  });

  it("GroupInfo with trailing bytes (§2.1)", async () => {
    const w = await welcomeFor("gi-trailing");
    const opened = await openWelcome(w.welcome, w.us, w.kp);
    const forged = await sealWelcome(opened, {
      groupInfoBytes: Uint8Array.from([...opened.groupInfoBytes, 0]),
    });
    const refs = await refsOf(w.us);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(forged)),
      ErrorCode.InvalidWelcome,
      /§2\.1/,
    );
    await joinsAfterwards(w, refs);
  });

  it("GroupInfo signature that does not verify (§12.4.3.1)", async () => {
    const w = await welcomeFor("gi-signature");
    const opened = await openWelcome(w.welcome, w.us, w.kp);
    const bytes = Uint8Array.from(opened.groupInfoBytes);
    bytes[bytes.length - 1] = (bytes.at(-1) as number) ^ 1; // last byte of the signature
    const forged = await sealWelcome(opened, { groupInfoBytes: bytes });
    const refs = await refsOf(w.us);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(forged)),
      ErrorCode.InvalidWelcome,
      /§12\.4\.3\.1/,
    );
    await joinsAfterwards(w, refs);
  });

  it("tree_hash of the GroupContext that is not the tree's (§12.4.3.1, re-signed)", async () => {
    const w = await welcomeFor("tree-hash");
    const opened = await openWelcome(w.welcome, w.us, w.kp);
    const gi = opened.groupInfo;
    const forged = await sealWelcome(opened, {
      groupInfoBytes: await signedGroupInfo(
        { ...gi, groupContext: { ...gi.groupContext, treeHash: w.cs.rng.randomBytes(32) } },
        w.peer.signaturePrivateKey,
        w.cs,
      ),
    });
    const refs = await refsOf(w.us);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(forged)),
      ErrorCode.InvalidWelcome,
      /§12\.4\.3\.1.*tree_hash|§7\.8/,
    );
    await joinsAfterwards(w, refs);
  });

  it("confirmation_tag that does not match the key schedule (§12.4.3.1, re-signed)", async () => {
    const w = await welcomeFor("confirmation");
    const opened = await openWelcome(w.welcome, w.us, w.kp);
    const gi = opened.groupInfo;
    const forged = await sealWelcome(opened, {
      groupInfoBytes: await signedGroupInfo(
        { ...gi, confirmationTag: w.cs.rng.randomBytes(gi.confirmationTag.length) },
        w.peer.signaturePrivateKey,
        w.cs,
      ),
    });
    const refs = await refsOf(w.us);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(forged)),
      ErrorCode.InvalidWelcome,
      /§12\.4\.3\.1.*confirmation/,
    );
    await joinsAfterwards(w, refs);
  });

  /**
   * A Welcome whose tree the hostile creator edited with `edit` (tree hash, confirmation tag and
   * signature made to match), for a tree [peer, parent node 1, x, blank, us] where node 1 comes
   * from x's own UpdatePath: x's leaf is then on node 1's parent-hash chain (§7.9.2, through its
   * parent_hash field) but in no sibling subtree it hashes, so editing x's leaf breaks §7.3 only.
   */
  async function editedTree(name: string, edit: TreeEdit) {
    const cs = await tsSuite(SUITE1);
    const id = enc(name);
    const peer = await Hostile.create(id, cs);
    const xKp = await tsKeyPackage(cs, { identity: "x" });
    const x = await Hostile.join((await peer.add(xKp.kp)).welcome as Uint8Array, cs, xKp);
    await peer.receive((await x.commit([])).commit); // x's UpdatePath: node 1 becomes a parent node
    const us = await member(1);
    const kp = await keypackage(us);
    const welcome = (await peer.add(asTs(kp))).welcome as Uint8Array;
    const opened = await openWelcome(welcome, us, kp);
    const tree = treeOf(opened.groupInfo);
    await edit(tree, {
      cs,
      groupId: id,
      peerKey: peer.signaturePrivateKey,
      xKey: xKp.priv.signaturePrivateKey,
    });
    const forged = await sealWelcome(opened, {
      groupInfoBytes: await withTree(opened, tree, peer.signaturePrivateKey),
    });
    return { w: { cs, id, peer, us, kp, welcome }, forged, refs: await refsOf(us) };
  }

  function parentAt(tree: RatchetTree, i: number) {
    const n = tree[i];
    if (n?.nodeType !== "parent") throw new Error(`expected a parent node at ${i}`);
    return n;
  }

  function leafAt(tree: RatchetTree, i: number) {
    const n = tree[i];
    if (n?.nodeType !== "leaf") throw new Error(`expected a leaf at ${i}`);
    return n;
  }

  /** What an edit may re-sign with: the group id, and the signature keys of peer (leaf 0) and x (leaf 1). */
  interface EditKeys {
    cs: Awaited<ReturnType<typeof tsSuite>>;
    groupId: Uint8Array;
    peerKey: Uint8Array;
    xKey: Uint8Array;
  }
  type TreeEdit = (tree: RatchetTree, keys: EditKeys) => void | Promise<void>;

  const treeCases: [string, RegExp, TreeEdit][] = [
    [
      "unmerged_leaves listing a leaf that is not below the node (§7.9.1)",
      /§7\.9\.1/,
      (tree) => {
        // leaf 2 (us) is not below node 1 (leaves 0 and 1)
        const n = parentAt(tree, 1);
        tree[1] = { ...n, parent: { ...n.parent, unmergedLeaves: [2] } };
      },
    ],
    [
      "parent_hash of a parent node that its child does not commit to (§7.9.2)",
      /§7\.9\.2/,
      (tree) => {
        const n = parentAt(tree, 1);
        tree[1] = { ...n, parent: { ...n.parent, parentHash: new Uint8Array(32).fill(7) } };
      },
    ],
    [
      "two leaves with one signature key (§7.3)",
      /§7\.3 duplicate_signature_key/,
      async (tree, k) => {
        // x's leaf takes peer's signature key, signed with it so that its signature verifies
        const x = leafAt(tree, 2);
        tree[2] = { ...x, leaf: { ...x.leaf, signaturePublicKey: leafAt(tree, 0).leaf.signaturePublicKey } };
        await resignCommitLeaf(tree, 1, k.groupId, k.peerKey, k.cs);
      },
    ],
    [
      "a leaf with a parent node's encryption key (§7.3)",
      /§7\.3 duplicate_encryption_key/,
      async (tree, k) => {
        const x = leafAt(tree, 2);
        tree[2] = { ...x, leaf: { ...x.leaf, hpkePublicKey: parentAt(tree, 1).parent.hpkePublicKey } };
        await resignCommitLeaf(tree, 1, k.groupId, k.xKey, k.cs);
      },
    ],
    [
      "a leaf whose signature does not verify (§7.3)",
      /§7\.3 leaf_signature/,
      (tree) => {
        const x = leafAt(tree, 2);
        tree[2] = {
          ...x,
          leaf: { ...x.leaf, credential: { credentialType: "basic", identity: enc("not-x") } },
        };
      },
    ],
  ];

  it.each(treeCases)("%s", async (name, rule, edit) => {
    const { w, forged, refs } = await editedTree(`tree-${name.slice(0, 20)}`, edit);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(forged)),
      ErrorCode.InvalidWelcome,
      rule,
    );
    await joinsAfterwards(w, refs);
  });

  it("a leaf of the tree expired at the session clock's time (§7.3)", async () => {
    const w = await welcomeFor("expired-tree");
    const refs = await refsOf(w.us);
    // the creator's leaf is valid for one day; ours for longer (default lifetime)
    w.us.clock.advance(2 * 86_400_000);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(w.welcome)),
      ErrorCode.InvalidWelcome,
      /§7\.3/,
    );
    w.us.clock.advance(-2 * 86_400_000);
    await joinsAfterwards(w, refs);
  });

  it("a leaf of the tree not yet valid at the session clock's time (§7.3)", async () => {
    const w = await welcomeFor("not-yet-tree");
    const refs = await refsOf(w.us);
    // the creator's leaf is valid from one minute ago; ours from one hour ago
    w.us.clock.advance(-30 * 60_000);
    await rejects(
      w.us.cc.transaction((tx) => tx.processWelcomeMessage(w.welcome)),
      ErrorCode.InvalidWelcome,
      /§7\.3/,
    );
    w.us.clock.advance(30 * 60_000);
    await joinsAfterwards(w, refs);
  });
});

// ── commits and messages ────────────────────────────────────────────────────

describe("a hostile commit or message is refused, and the conversation is unchanged", () => {
  it("membership_tag that does not verify (§6.2)", async () => {
    const { id, peer, us } = await hostileGroup("membership");
    const { commit } = await peer.commit([], { apply: false });
    commit[commit.length - 1] = (commit.at(-1) as number) ^ 1; // last byte of membership_tag
    const before = await snapshot(us, id);
    await rejects(receive(us, id, commit), ErrorCode.InvalidMessage, /§6\.2/);
    await stillWorks(us, id, peer, before);
  });

  it("a commit of a past epoch (replayed) and of a future epoch (§6)", async () => {
    const { id, peer, us } = await hostileGroup("epochs");
    const first = await peer.commit([]);
    await receive(us, id, first.commit);
    const before = await snapshot(us, id);
    await rejects(receive(us, id, first.commit), ErrorCode.InvalidMessage, /§6\b.*epoch/);
    // a commit two epochs ahead: the peer commits once more without telling us, then again
    const skipped = await peer.commit([]);
    const ahead = await peer.commit([], { apply: false });
    await rejects(receive(us, id, ahead.commit), ErrorCode.InvalidMessage, /§6\b.*epoch/);
    peer.state = skipped.before; // the peer forgets the skipped epoch
    await stillWorks(us, id, peer, before);
  });

  it("confirmation_tag that does not match (§12.4.2), the commit otherwise well authenticated", async () => {
    const { id, peer, us, cs } = await hostileGroup("confirmation-commit");
    const { commit, before: at } = await peer.commit([], { apply: false });
    const forged = await peer.reauthenticate(
      commit,
      at,
      (content) => ({ content, confirmationTag: cs.rng.randomBytes(32) }),
      { resign: false },
    );
    const before = await snapshot(us, id);
    await rejects(receive(us, id, forged), ErrorCode.InvalidCommit, /§12\.4\.2/);
    await stillWorks(us, id, peer, before);
  });

  it("an added leaf with a member's encryption key (§7.3)", async () => {
    const { id, peer, us, cs } = await hostileGroup("dup-encryption");
    const ourLeaf = peer.state.ratchetTree[2];
    if (ourLeaf?.nodeType !== "leaf") throw new Error("no leaf 1");
    const forged = await tsKeyPackageWithEncryptionKey(cs, ourLeaf.leaf.hpkePublicKey);
    const { commit } = await peer.commit([{ proposalType: "add", add: { keyPackage: forged } }], {
      apply: false,
    });
    const before = await snapshot(us, id);
    await rejects(receive(us, id, commit), ErrorCode.InvalidCommit, /§7\.3/);
    await stillWorks(us, id, peer, before);
  });

  it("two Removes of the same leaf (§12.2)", async () => {
    const { id, peer, us, cs } = await hostileGroup("double-remove");
    const x = await tsKeyPackage(cs, { identity: "x" });
    await receive(us, id, (await peer.add(x.kp)).commit);
    const remove: Proposal = { proposalType: "remove", remove: { removed: 2 } };
    const { commit, before: at } = await peer.commit([remove], { apply: false });
    const forged = await peer.reauthenticate(commit, at, (content) => {
      if (content.contentType !== "commit") throw new Error("not a commit");
      const p = content.commit.proposals;
      return { content: { ...content, commit: { ...content.commit, proposals: [...p, ...p] } } };
    });
    const before = await snapshot(us, id);
    await rejects(receive(us, id, forged), ErrorCode.InvalidCommit, /§12\.2/);
    await stillWorks(us, id, peer, before);
  });

  it("an application message delivered twice: the second is refused (§9.2)", async () => {
    const { id, peer, us } = await hostileGroup("replay");
    const m = await peer.send("once");
    expect(dec((await receive(us, id, m)).message)).toBe("once");
    const before = await snapshot(us, id);
    await rejects(receive(us, id, m), ErrorCode.InvalidMessage, /§9\.2/);
    await stillWorks(us, id, peer, before);
  });

  it("an added key package expired at the session clock's time (§7.3)", async () => {
    const { id, peer, us, cs } = await hostileGroup("expired-add");
    const x = await tsKeyPackage(cs, { identity: "x", notAfter: 3600n });
    const { commit } = await peer.commit([{ proposalType: "add", add: { keyPackage: x.kp } }], {
      apply: false,
    });
    us.clock.advance(2 * 3_600_000);
    const before = await snapshot(us, id);
    await rejects(receive(us, id, commit), ErrorCode.InvalidCommit, /§7\.3/);
    us.clock.advance(-2 * 3_600_000);
    await stillWorks(us, id, peer, before);
    // at a time within its lifetime, the same commit is accepted
    expect((await receive(us, id, commit)).hasEpochChanged).toBe(true);
  });

  it("a PrivateMessage proposal and commit rejected after decryption consume no key (§9.2)", async () => {
    const { id, peer, us, cs } = await hostileGroup("expired-add-private");
    const x = await tsKeyPackage(cs, { identity: "x", notAfter: 3600n });
    const add: Proposal = { proposalType: "add", add: { keyPackage: x.kp } };
    const at = peer.state;
    const proposal = await peer.propose(add, false);
    peer.state = at; // only an input: the commit below uses the same handshake generation
    const { commit } = await peer.commit([add], { publicMessage: false });
    us.clock.advance(2 * 3_600_000);
    const before = await snapshot(us, id);
    await rejects(receive(us, id, proposal), ErrorCode.InvalidMessage, /§7\.3|§10\.1/);
    await rejects(receive(us, id, commit), ErrorCode.InvalidCommit, /§7\.3|§10\.1/);
    expect(await snapshot(us, id)).toEqual(before);
    us.clock.advance(-2 * 3_600_000);
    // the key of that generation was not consumed: the same commit, within x's lifetime, is accepted
    expect((await receive(us, id, commit)).hasEpochChanged).toBe(true);
    expect(dec(await peer.receive(await send(us, id, "next epoch")))).toBe("next epoch");
    expect(dec((await receive(us, id, await peer.send("and back"))).message)).toBe("and back");
  });
});
