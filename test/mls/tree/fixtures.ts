/**
 * Test groups built with our own tree and TreeKEM code (suite 1, node:crypto): members with
 * fresh signature and HPKE keys, key_package leaves, adds (§7.7) and commits with an
 * UpdatePath (§7.5), so that negative tests can change one field of a valid tree.
 */
import { encode } from "../../../src/mls/codec/index.js";
import { Writer } from "../../../src/mls/codec/writer.js";
import { defaultAuthenticationService } from "../../../src/mls/credential/authentication.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { signWithLabel } from "../../../src/mls/crypto/labels.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { writeLeafNodeTbs } from "../../../src/mls/keypackage/codec.js";
import type { Extension, LeafNode } from "../../../src/mls/keypackage/types.js";
import { writeGroupContext } from "../../../src/mls/keyschedule/codec.js";
import { leafToNode } from "../../../src/mls/tree/math.js";
import { addLeaf } from "../../../src/mls/tree/tree.js";
import type { RatchetTree } from "../../../src/mls/tree/types.js";
import type { GroupParams } from "../../../src/mls/tree/validate.js";
import {
  applyUpdatePath,
  createUpdatePath,
  type ProvisionalContext,
} from "../../../src/mls/treekem/updatePath.js";
import { impl } from "../../vectors/helpers.js";

export const SUITE = 1;
export const GROUP_ID = new TextEncoder().encode("tree-test-group");

export function suite(): Promise<CiphersuiteImpl> {
  return impl(nodeCryptoProvider, SUITE);
}

export interface Member {
  readonly signaturePrivateKey: Uint8Array;
  readonly signatureKey: Uint8Array;
  readonly encryptionPrivateKey: Uint8Array;
  readonly leaf: LeafNode;
}

export interface MemberOptions {
  readonly identity?: Uint8Array;
  readonly encryptionKey?: { readonly privateKey: Uint8Array; readonly publicKey: Uint8Array };
  readonly signature?: { readonly signKey: Uint8Array; readonly publicKey: Uint8Array };
  readonly notAfter?: bigint;
}

/** A member with a fresh key_package leaf node (§7.2), signed. */
export async function makeMember(cs: CiphersuiteImpl, name: string, o: MemberOptions = {}): Promise<Member> {
  const sig = o.signature ?? (await cs.signature.keygen());
  let enc = o.encryptionKey;
  if (enc === undefined) {
    const kp = await cs.hpke.generateKeyPair();
    enc = {
      privateKey: await cs.hpke.exportPrivateKey(kp.privateKey),
      publicKey: await cs.hpke.exportPublicKey(kp.publicKey),
    };
  }
  const unsigned: LeafNode = {
    encryptionKey: enc.publicKey,
    signatureKey: sig.publicKey,
    credential: { credentialType: 1, identity: o.identity ?? new TextEncoder().encode(name) },
    capabilities: { versions: [1], ciphersuites: [SUITE], extensions: [], proposals: [], credentials: [1] },
    leafNodeSource: 1,
    lifetime: { notBefore: 0n, notAfter: o.notAfter ?? 2n ** 62n },
    parentHash: undefined,
    extensions: [],
    signature: new Uint8Array(0),
  };
  const leaf = await signLeaf(cs, unsigned, sig.signKey);
  return {
    signaturePrivateKey: sig.signKey,
    signatureKey: sig.publicKey,
    encryptionPrivateKey: enc.privateKey,
    leaf,
  };
}

/** Re-signs a leaf node (LeafNodeTBS, with the group context for update/commit leaves). */
export async function signLeaf(
  cs: CiphersuiteImpl,
  leaf: LeafNode,
  key: Uint8Array,
  leafIndex = 0,
): Promise<LeafNode> {
  const w = new Writer(512);
  writeLeafNodeTbs(w, leaf, { groupId: GROUP_ID, leafIndex });
  return { ...leaf, signature: await signWithLabel(key, "LeafNodeTBS", w.finish(), cs.signature) };
}

/** Serialized GroupContext for a tree hash (epoch 1, no extensions). */
export function contextFor(extensions: readonly Extension[] = []): ProvisionalContext {
  return (treeHash) =>
    encode(
      {
        version: 1,
        ciphersuite: SUITE,
        groupId: GROUP_ID,
        epoch: 1n,
        treeHash,
        confirmedTranscriptHash: new Uint8Array(0),
        extensions,
      },
      writeGroupContext,
    );
}

export function groupParams(cs: CiphersuiteImpl, extra: Partial<GroupParams> = {}): GroupParams {
  return {
    cs,
    ciphersuite: SUITE,
    groupId: GROUP_ID,
    extensions: [],
    authenticationService: defaultAuthenticationService,
    ...extra,
  };
}

/** A group's tree with each member's private keys (node index → serialized HPKE key). */
export interface TestGroup {
  tree: RatchetTree;
  readonly members: Member[];
  readonly privateKeys: Map<number, Map<number, Uint8Array>>;
}

/** `n` members: member 0's one-leaf tree, then adds of members 1..n-1 (no path). */
export async function addedGroup(cs: CiphersuiteImpl, n: number): Promise<TestGroup> {
  const members: Member[] = [];
  for (let i = 0; i < n; i++) members.push(await makeMember(cs, `member-${i}`));
  let tree: RatchetTree = [{ nodeType: 1, leaf: (members[0] as Member).leaf }];
  for (const m of members.slice(1)) tree = addLeaf(tree, m.leaf).tree;
  const privateKeys = new Map(members.map((m, i) => [i, new Map([[leafToNode(i), m.encryptionPrivateKey]])]));
  return { tree, members, privateKeys };
}

/** Member `committer` commits an UpdatePath into `g` (its keys and leaf updated in place). */
export async function commitPath(cs: CiphersuiteImpl, g: TestGroup, committer: number): Promise<Uint8Array> {
  const m = g.members[committer] as Member;
  const created = await createUpdatePath({
    cs,
    tree: g.tree,
    leafIndex: committer,
    groupId: GROUP_ID,
    leaf: m.leaf,
    signaturePrivateKey: m.signaturePrivateKey,
    context: contextFor(),
  });
  for (const [j, keys] of g.privateKeys) {
    if (j === committer || g.tree[leafToNode(j)] === undefined) continue;
    const r = await applyUpdatePath({
      cs,
      tree: g.tree,
      senderLeafIndex: committer,
      updatePath: created.updatePath,
      receiverLeafIndex: j,
      privateKeys: keys,
      context: contextFor(),
      group: groupParams(cs),
    });
    g.privateKeys.set(j, r.privateKeys);
  }
  g.privateKeys.set(committer, created.privateKeys);
  g.members[committer] = { ...m, leaf: created.updatePath.leafNode };
  g.tree = created.tree;
  return created.commitSecret;
}
