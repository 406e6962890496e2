/**
 * Fast TLS encodings (RFC 9420 §2.1) of the ratchet tree (§12.4.3.3), its tree hash (§7.8) and
 * ts-mls 1.6.4's group state, byte for byte what ts-mls's encoders produce
 * (test/mls/fast-encode.test.ts compares them).
 *
 * ts-mls re-encodes every node of the tree whenever it encodes a tree (GroupInfo, state, tree
 * hash), through chains of closures. Tree nodes are immutable values in ts-mls (every change
 * copies the tree and makes new node objects), so the encoding of each LeafNode / ParentNode
 * is computed once here and kept by object (WeakMap): the encoding of a tree is then a
 * concatenation, and an epoch change only encodes the nodes it changed.
 */
import type { GroupContext, Hash, LeafNode, ParentNode, RatchetTree } from "ts-mls";
import type { GroupState } from "ts-mls/clientState.js";
import { encode } from "ts-mls/codec/tlsEncoder.js";
import { groupActiveStateEncoder } from "ts-mls/groupActiveState.js";
import { encodeGroupContext } from "ts-mls/groupContext.js";
import { encodeLeafNode } from "ts-mls/leafNode.js";
import { encodeParentNode } from "ts-mls/parentNode.js";
import type { SecretTree } from "ts-mls/secretTree.js";
import { isLeaf, left, right, rootFromNodeWidth, type NodeIndex } from "ts-mls/treemath.js";
import { unappliedProposalsEncoder } from "ts-mls/unappliedProposals.js";
import type { SyncDigestHash } from "./crypto/suites.js";
import { memo } from "./memo.js";
import { encodeVarint } from "./tls.js";

const nodeBytes = new WeakMap<LeafNode | ParentNode, Uint8Array>();

/** ts-mls `encodeLeafNode`, once per leaf object. */
function leafNodeBytes(leaf: LeafNode): Uint8Array {
  return memo(nodeBytes, leaf, encodeLeafNode);
}

/** ts-mls `encodeParentNode`, once per parent node object. */
function parentNodeBytes(parent: ParentNode): Uint8Array {
  return memo(nodeBytes, parent, encodeParentNode);
}

/** Collects byte strings and writes them out once. */
class Writer {
  readonly parts: Uint8Array[] = [];
  length = 0;

  bytes(b: Uint8Array): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }

  u8(n: number): this {
    return this.bytes(Uint8Array.of(n));
  }

  u32(n: number): this {
    return this.bytes(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
  }

  u64(n: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n);
    return this.bytes(b);
  }

  varint(n: number): this {
    if (n < 0x40) return this.u8(n);
    return this.bytes(encodeVarint(n));
  }

  /** `opaque data<V>` */
  data(b: Uint8Array): this {
    return this.varint(b.length).bytes(b);
  }

  /** `T items<V>`: `f` writes the items into a nested writer. */
  vector(f: (w: Writer) => void): this {
    const inner = new Writer();
    f(inner);
    this.varint(inner.length);
    for (const p of inner.parts) this.bytes(p);
    return this;
  }

  done(): Uint8Array {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

const LEAF = Uint8Array.of(1, 1); // optional present, NodeType leaf
const PARENT = Uint8Array.of(1, 2); // optional present, NodeType parent
const BLANK = Uint8Array.of(0);

function writeTree(w: Writer, tree: RatchetTree): void {
  let last = tree.length - 1;
  while (last >= 0 && tree[last] === undefined) last--; // ts-mls stripBlankNodes
  w.vector((v) => {
    for (let i = 0; i <= last; i++) {
      const n = tree[i];
      if (n === undefined) v.bytes(BLANK);
      else if (n.nodeType === "leaf") v.bytes(LEAF).bytes(leafNodeBytes(n.leaf));
      else v.bytes(PARENT).bytes(parentNodeBytes(n.parent));
    }
  });
}

/** ts-mls `encodeRatchetTree`. */
export function encodeTree(tree: RatchetTree): Uint8Array {
  const w = new Writer();
  writeTree(w, tree);
  return w.done();
}

/**
 * ts-mls `treeHashRoot` (§7.8 TreeHashInput), with the cached node encodings. With a
 * synchronous digest (node:crypto), the hash of every subtree is kept per tree, and a subtree
 * whose nodes are the very same objects as in `base` (the tree this one was made from) takes
 * `base`'s hash: an Add changes one leaf and its direct path, so a commit hashes O(log n)
 * nodes instead of all of them. Node indices are positions in a full tree (§7.1), so a
 * subtree's TreeHashInput, leaf indices included, is the same in both trees.
 */
export async function treeHashRoot(tree: RatchetTree, h: Hash, base?: RatchetTree): Promise<Uint8Array> {
  const digestSync = (h as Partial<SyncDigestHash>).digestSync;
  if (typeof digestSync === "function") {
    return treeHashRootSync(tree, h, (data) => digestSync.call(h, data), base);
  }
  const hashOf = async (index: NodeIndex): Promise<Uint8Array> => {
    const n = tree[index];
    if (isLeaf(index)) return h.digest(leafHashInput(index, n));
    const [l, r] = await Promise.all([hashOf(left(index)), hashOf(right(index))]);
    return h.digest(parentHashInput(n, l, r));
  };
  return hashOf(rootFromNodeWidth(tree.length));
}

/** Subtree hashes by node index, per tree (trees are immutable values, see above) and hash. */
const subtreeHashes = new WeakMap<RatchetTree, { hash: Hash; hashes: Uint8Array[] }>();

function treeHashRootSync(
  tree: RatchetTree,
  hash: Hash,
  digest: (data: Uint8Array) => Uint8Array,
  base: RatchetTree | undefined,
): Uint8Array {
  const entry = base === undefined ? undefined : subtreeHashes.get(base);
  const known = entry?.hash === hash ? entry.hashes : undefined;
  const hashes = new Array<Uint8Array>(tree.length);
  /** Fills `hashes[index]`; true when the subtree is unchanged from `base` (hash reused). */
  const visit = (index: NodeIndex): boolean => {
    const n = tree[index];
    let same: boolean;
    if (isLeaf(index)) {
      same = known?.[index] !== undefined && sameNode(n, base?.[index]);
      hashes[index] = same ? (known?.[index] as Uint8Array) : digest(leafHashInput(index, n));
      return same;
    }
    const l = left(index);
    const r = right(index);
    const sameLeft = visit(l);
    const sameRight = visit(r);
    same = sameLeft && sameRight && known?.[index] !== undefined && sameNode(n, base?.[index]);
    hashes[index] = same
      ? (known?.[index] as Uint8Array)
      : digest(parentHashInput(n, hashes[l] as Uint8Array, hashes[r] as Uint8Array));
    return same;
  };
  const rootIndex = rootFromNodeWidth(tree.length);
  visit(rootIndex);
  subtreeHashes.set(tree, { hash, hashes });
  return hashes[rootIndex] as Uint8Array;
}

/** The same node: both blank, or the same LeafNode / ParentNode object. */
function sameNode(a: RatchetTree[number], b: RatchetTree[number]): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.nodeType === "leaf") return b.nodeType === "leaf" && a.leaf === b.leaf;
  return b.nodeType === "parent" && a.parent === b.parent;
}

/** LeafNodeHashInput in TreeHashInput (§7.8). */
function leafHashInput(index: NodeIndex, n: RatchetTree[number]): Uint8Array {
  if (n?.nodeType === "parent") throw new Error("Somehow found parent node in leaf position");
  const w = new Writer().u8(1).u32(index / 2);
  if (n === undefined) w.u8(0);
  else w.u8(1).bytes(leafNodeBytes(n.leaf));
  return w.done();
}

/** ParentNodeHashInput in TreeHashInput (§7.8). */
function parentHashInput(n: RatchetTree[number], l: Uint8Array, r: Uint8Array): Uint8Array {
  if (n?.nodeType === "leaf") throw new Error("Somehow found leaf node in parent position");
  const w = new Writer().u8(2);
  if (n === undefined) w.u8(0);
  else w.u8(1).bytes(parentNodeBytes(n.parent));
  return w.data(l).data(r).done();
}

function writeGenerationSecret(w: Writer, g: SecretTree[number]["handshake"]): void {
  w.data(g.secret).u32(g.generation);
  w.vector((v) => {
    for (const [k, s] of Object.entries(g.unusedGenerations)) v.u32(Number(k)).data(s);
  });
}

function writeSecretTree(w: Writer, t: SecretTree): void {
  w.vector((v) => {
    for (const node of t) {
      writeGenerationSecret(v, node.handshake);
      writeGenerationSecret(v, node.application);
    }
  });
}

const contexts = new WeakMap<GroupContext, Uint8Array>();

/** ts-mls `encodeGroupContext`, once per context object. */
export function groupContextBytes(gc: GroupContext): Uint8Array {
  return memo(contexts, gc, encodeGroupContext);
}

const EMPTY = new Uint8Array(0);
const ACTIVE = encode(groupActiveStateEncoder)({ kind: "active" });
const NO_PROPOSALS = encode(unappliedProposalsEncoder)({});

/** ts-mls `encodeGroupStateWithoutTree`. */
export function encodeStateWithoutTree(state: GroupState): Uint8Array {
  const w = new Writer();
  w.bytes(groupContextBytes(state.groupContext));
  const ks = state.keySchedule;
  for (const s of [
    EMPTY,
    ks.senderDataSecret,
    EMPTY,
    ks.exporterSecret,
    ks.externalSecret,
    ks.confirmationKey,
    ks.membershipKey,
    ks.resumptionPsk,
    ks.epochAuthenticator,
    ks.initSecret,
  ])
    w.data(s);
  writeSecretTree(w, state.secretTree);
  w.u32(state.privatePath.leafIndex);
  w.vector((v) => {
    for (const [k, key] of Object.entries(state.privatePath.privateKeys)) v.u32(Number(k)).data(key);
  });
  w.data(state.signaturePrivateKey);
  w.bytes(
    Object.keys(state.unappliedProposals).length === 0
      ? NO_PROPOSALS
      : encode(unappliedProposalsEncoder)(state.unappliedProposals),
  );
  w.data(state.confirmationTag);
  w.vector((v) => {
    for (const [epoch, d] of state.historicalReceiverData) {
      v.u64(epoch).data(d.resumptionPsk);
      writeSecretTree(v, d.secretTree);
      writeTree(v, d.ratchetTree);
      v.data(d.senderDataSecret).bytes(groupContextBytes(d.groupContext));
    }
  });
  w.bytes(
    state.groupActiveState.kind === "active"
      ? ACTIVE
      : encode(groupActiveStateEncoder)(state.groupActiveState),
  );
  return w.done();
}
