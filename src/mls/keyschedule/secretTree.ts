/**
 * RFC 9420 §9 secret tree, derived lazily: only the nodes on the path from the deepest secret
 * still held down to a leaf in use are derived, when that leaf first sends or is first read.
 *
 *   tree_node_[root]_secret = encryption_secret
 *   left(x)  = ExpandWithLabel(tree_node_[x]_secret, "tree", "left",  KDF.Nh)
 *   right(x) = ExpandWithLabel(tree_node_[x]_secret, "tree", "right", KDF.Nh)
 *   handshake/application_ratchet_secret_[N]_[0] = ExpandWithLabel(leaf secret, "handshake"/"application", "", KDF.Nh)
 *   ratchet_key_[N]_[j]    = DeriveTreeSecret(ratchet_secret_[N]_[j], "key",    j, AEAD.Nk)
 *   ratchet_nonce_[N]_[j]  = DeriveTreeSecret(ratchet_secret_[N]_[j], "nonce",  j, AEAD.Nn)
 *   ratchet_secret_[N]_[j+1] = DeriveTreeSecret(ratchet_secret_[N]_[j], "secret", j, KDF.Nh)
 *
 * §9.2 deletion schedule: a node's secret is dropped (and zeroed) once its children are
 * derived, a leaf's once its two ratchets are, a ratchet secret once the next one is, and a
 * key/nonce once consumed. Keys of skipped generations are kept for out-of-order messages, at
 * most `maxSkippedKeys` per ratchet, for generations at most `maxForwardGenerations` ahead.
 *
 * Stage, then merge: `keyAndNonce` / `nextKeyAndNonce` change nothing and return a
 * `StagedKey`; `merge(staged)` returns the tree with that key consumed, and retires this tree
 * (its replaced secrets are zeroed; any further use is an InternalError), so a message that
 * fails to decrypt or verify consumes nothing.
 */
import type { CiphersuiteImpl } from "../crypto/types.js";
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import { left, level, right, root as rootOf } from "../tree/math.js";
import { labeledKdf, type LabeledKdf } from "./kdf.js";

/** §6 ContentType application: the application ratchet; proposal and commit use the handshake ratchet. */
const APPLICATION = 1;
const LEFT = new TextEncoder().encode("left");
const RIGHT = new TextEncoder().encode("right");

export type RatchetKind = "handshake" | "application";

/** The ratchet of a content type (§9.1: application data vs. proposals and commits). */
export function ratchetKind(contentType: number): RatchetKind {
  return contentType === APPLICATION ? "application" : "handshake";
}

export interface SecretTreeOptions {
  /** Furthest generation ahead of the ratchet accepted on receive (default 1000). */
  readonly maxForwardGenerations?: number;
  /** Keys of skipped generations kept per ratchet for out-of-order messages (default 32). */
  readonly maxSkippedKeys?: number;
}

export const DEFAULT_MAX_FORWARD_GENERATIONS = 1000;
export const DEFAULT_MAX_SKIPPED_KEYS = 32;

/** A key and nonce of one generation (§9.1). */
export interface KeyNonce {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
}

/** One §9.1 ratchet: its secret at `generation` (the next unused one) and skipped generations' keys. */
interface Ratchet {
  readonly generation: number;
  readonly secret: Uint8Array;
  /** Generation → key/nonce, ascending by generation (insertion order). */
  readonly skipped: ReadonlyMap<number, KeyNonce>;
}

interface LeafRatchets {
  readonly handshake: Ratchet;
  readonly application: Ratchet;
}

/** A key derived but not consumed yet: `SecretTree.merge` consumes it. */
export interface StagedKey extends KeyNonce {
  readonly leaf: number;
  readonly kind: RatchetKind;
  readonly generation: number;
  /** @internal the tree it was staged from and what merging changes. */
  readonly staged: {
    readonly from: SecretTree;
    /** Node secrets derived on the way to the leaf (off-path children), when the leaf was new. */
    readonly newNodes: ReadonlyArray<readonly [number, Uint8Array]>;
    /** The ancestor whose secret those were derived from (dropped on merge), or -1. */
    readonly usedNode: number;
    /** The leaf's ratchets after the merge. */
    readonly ratchets: LeafRatchets;
  };
}

// ------------------------------------------------------------------------------------ the tree

export class SecretTree {
  readonly leafCount: number;
  readonly #cs: CiphersuiteImpl;
  readonly #kdf: LabeledKdf;
  readonly #maxForward: number;
  readonly #maxSkipped: number;
  /** Secrets of tree nodes not yet split (§9.2), by node index. */
  readonly #nodes: ReadonlyMap<number, Uint8Array>;
  /** Ratchets of the leaves in use, by leaf index. */
  readonly #leaves: ReadonlyMap<number, LeafRatchets>;
  #retired = false;

  private constructor(
    cs: CiphersuiteImpl,
    leafCount: number,
    nodes: ReadonlyMap<number, Uint8Array>,
    leaves: ReadonlyMap<number, LeafRatchets>,
    maxForward: number,
    maxSkipped: number,
  ) {
    this.#cs = cs;
    this.#kdf = labeledKdf(cs.kdf);
    this.leafCount = leafCount;
    this.#nodes = nodes;
    this.#leaves = leaves;
    this.#maxForward = maxForward;
    this.#maxSkipped = maxSkipped;
  }

  /** The secret tree of an epoch with `leafCount` leaves, rooted at (a copy of) encryption_secret. */
  static create(
    cs: CiphersuiteImpl,
    leafCount: number,
    encryptionSecret: Uint8Array,
    options: SecretTreeOptions = {},
  ): SecretTree {
    if (!Number.isSafeInteger(leafCount) || leafCount < 1) throw new TypeError(`bad leaf count ${leafCount}`);
    if (encryptionSecret.length !== cs.kdf.size)
      throw new TypeError(`encryption_secret must be ${cs.kdf.size} bytes`);
    const { maxForward, maxSkipped } = limits(options);
    const nodes = new Map([[rootOf(leafCount), new Uint8Array(encryptionSecret)]]);
    return new SecretTree(cs, leafCount, nodes, new Map(), maxForward, maxSkipped);
  }

  /** @internal a tree read back by `readSecretTreeState`. */
  static fromParts(
    cs: CiphersuiteImpl,
    leafCount: number,
    nodes: ReadonlyMap<number, Uint8Array>,
    leaves: ReadonlyMap<number, LeafRatchets>,
    options: SecretTreeOptions = {},
  ): SecretTree {
    const { maxForward, maxSkipped } = limits(options);
    return new SecretTree(cs, leafCount, nodes, leaves, maxForward, maxSkipped);
  }

  #live(): void {
    if (this.#retired)
      throw new MlsRuleError(
        ErrorCode.InternalError,
        "§9.2 retired_tree",
        "this secret tree was merged into a newer one",
      );
  }

  #checkLeaf(leaf: number): void {
    // §9: a sender is a leaf of the tree.
    if (!Number.isInteger(leaf) || leaf < 0 || leaf >= this.leafCount)
      throw new MlsRuleError(
        ErrorCode.InvalidMessage,
        "§9 leaf_index",
        `leaf ${leaf} is outside a tree of ${this.leafCount} leaves`,
      );
  }

  /** The next generation `leaf` sends with in the ratchet of `contentType`. */
  nextGeneration(leaf: number, contentType: number): number {
    this.#live();
    this.#checkLeaf(leaf);
    return this.#leaves.get(leaf)?.[ratchetKind(contentType)].generation ?? 0;
  }

  /** Stages the key/nonce `leaf` sends its next `contentType` message with. */
  async nextKeyAndNonce(leaf: number, contentType: number): Promise<StagedKey> {
    return this.keyAndNonce(leaf, contentType, this.nextGeneration(leaf, contentType));
  }

  /**
   * Stages the key/nonce of `generation` in `leaf`'s ratchet for `contentType`, without changing
   * the tree. Refuses a generation already consumed or dropped ("§9.2 generation_reused") and
   * one too far ahead ("§9.2 generation_window").
   */
  async keyAndNonce(leaf: number, contentType: number, generation: number): Promise<StagedKey> {
    this.#live();
    this.#checkLeaf(leaf);
    if (!Number.isInteger(generation) || generation < 0 || generation > 0xffffffff)
      throw new TypeError(`bad generation ${generation}`);
    const kind = ratchetKind(contentType);
    let newNodes: Array<readonly [number, Uint8Array]> = [];
    let usedNode = -1;
    let leafRatchets = this.#leaves.get(leaf);
    if (leafRatchets === undefined) {
      const derived = await this.#deriveLeaf(leaf);
      newNodes = derived.newNodes;
      usedNode = derived.usedNode;
      leafRatchets = derived.ratchets;
    }
    const ratchet = leafRatchets[kind];

    if (generation < ratchet.generation) {
      const kept = ratchet.skipped.get(generation);
      // §9.2: a consumed key is deleted; a generation seen (or dropped) before is refused.
      if (kept === undefined)
        throw new MlsRuleError(
          ErrorCode.InvalidMessage,
          "§9.2 generation_reused",
          `generation ${generation} of leaf ${leaf} (${kind}) was already consumed or dropped`,
        );
      const skipped = new Map(ratchet.skipped);
      skipped.delete(generation);
      const next: Ratchet = { generation: ratchet.generation, secret: ratchet.secret, skipped };
      return {
        leaf,
        kind,
        generation,
        key: kept.key.slice(),
        nonce: kept.nonce.slice(),
        staged: { from: this, newNodes, usedNode, ratchets: { ...leafRatchets, [kind]: next } },
      };
    }

    // Bounded out-of-order window: at most maxForward generations ahead of the ratchet.
    if (generation - ratchet.generation > this.#maxForward)
      throw new MlsRuleError(
        ErrorCode.InvalidMessage,
        "§9.2 generation_window",
        `generation ${generation} is more than ${this.#maxForward} ahead of ${ratchet.generation} (leaf ${leaf}, ${kind})`,
      );

    const skipped = new Map(ratchet.skipped);
    let secret = ratchet.secret;
    for (let g = ratchet.generation; g < generation; g++) {
      if (generation - g <= this.#maxSkipped) {
        const pKn = this.#keyNonce(secret, g);
        skipped.set(g, pKn instanceof Promise ? await pKn : pKn);
      }
      const pNext = this.#kdf.deriveTreeSecret(secret, "secret", g, this.#kdf.nh);
      const next = pNext instanceof Promise ? await pNext : pNext;
      if (secret !== ratchet.secret) secret.fill(0);
      secret = next;
    }
    const pKn = this.#keyNonce(secret, generation);
    const { key, nonce } = pKn instanceof Promise ? await pKn : pKn;
    const pAfter = this.#kdf.deriveTreeSecret(secret, "secret", generation, this.#kdf.nh);
    const after = pAfter instanceof Promise ? await pAfter : pAfter;
    if (secret !== ratchet.secret) secret.fill(0);
    // Keep the newest maxSkipped skipped keys; zero the others.
    while (skipped.size > this.#maxSkipped) {
      const oldest = skipped.keys().next().value as number;
      const dropped = skipped.get(oldest) as KeyNonce;
      if (!ratchet.skipped.has(oldest)) zeroKeyNonce(dropped);
      skipped.delete(oldest);
    }
    const next: Ratchet = { generation: generation + 1, secret: after, skipped };
    return {
      leaf,
      kind,
      generation,
      key,
      nonce,
      staged: { from: this, newNodes, usedNode, ratchets: { ...leafRatchets, [kind]: next } },
    };
  }

  /** ratchet_key_[N]_[j] and ratchet_nonce_[N]_[j] (§9.1); synchronous when the provider is. */
  #keyNonce(secret: Uint8Array, generation: number): KeyNonce | Promise<KeyNonce> {
    const k = this.#kdf;
    const key = k.deriveTreeSecret(secret, "key", generation, this.#cs.hpke.keyLength);
    const nonce = k.deriveTreeSecret(secret, "nonce", generation, this.#cs.hpke.nonceLength);
    if (key instanceof Promise || nonce instanceof Promise)
      return Promise.all([key, nonce]).then(([key2, nonce2]) => ({ key: key2, nonce: nonce2 }));
    return { key, nonce };
  }

  /** Derives the path from the deepest held ancestor of `leaf` down to its two ratchets. */
  async #deriveLeaf(leaf: number): Promise<{
    newNodes: Array<readonly [number, Uint8Array]>;
    usedNode: number;
    ratchets: LeafRatchets;
  }> {
    const target = 2 * leaf;
    const k = this.#kdf;
    let x = rootOf(this.leafCount);
    // The deepest ancestor whose secret is still held: every node above it was split.
    while (!this.#nodes.has(x)) {
      if (level(x) === 0)
        throw new MlsRuleError(
          ErrorCode.InternalError,
          "§9.2 missing_node",
          `no secret left for leaf ${leaf}`,
        );
      x = target < x ? left(x) : right(x);
    }
    const usedNode = x;
    let secret = this.#nodes.get(x) as Uint8Array;
    const newNodes: Array<readonly [number, Uint8Array]> = [];
    while (x !== target) {
      const l = left(x);
      const r = right(x);
      const pLs = k.expandWithLabel(secret, "tree", LEFT, k.nh);
      const ls = pLs instanceof Promise ? await pLs : pLs;
      const pRs = k.expandWithLabel(secret, "tree", RIGHT, k.nh);
      const rs = pRs instanceof Promise ? await pRs : pRs;
      if (x !== usedNode) secret.fill(0);
      if (target < x) {
        newNodes.push([r, rs]);
        x = l;
        secret = ls;
      } else {
        newNodes.push([l, ls]);
        x = r;
        secret = rs;
      }
    }
    const pHandshake = k.deriveSecret(secret, "handshake");
    const handshake = pHandshake instanceof Promise ? await pHandshake : pHandshake;
    const pApplication = k.deriveSecret(secret, "application");
    const application = pApplication instanceof Promise ? await pApplication : pApplication;
    if (x !== usedNode) secret.fill(0);
    const fresh = (s: Uint8Array): Ratchet => ({ generation: 0, secret: s, skipped: new Map() });
    return { newNodes, usedNode, ratchets: { handshake: fresh(handshake), application: fresh(application) } };
  }

  /**
   * The tree with `staged`'s key consumed. This tree is retired: the secrets the new tree no
   * longer holds (the split ancestor, the replaced ratchet secret, the consumed key) are zeroed.
   */
  merge(staged: StagedKey): SecretTree {
    this.#live();
    const s = staged.staged;
    if (s.from !== this)
      throw new MlsRuleError(
        ErrorCode.InternalError,
        "§9.2 stale_stage",
        "the key was staged from another tree state",
      );
    const nodes = new Map(this.#nodes);
    if (s.usedNode >= 0) {
      nodes.get(s.usedNode)?.fill(0);
      nodes.delete(s.usedNode);
      for (const [i, secret] of s.newNodes) nodes.set(i, secret);
    }
    const leaves = new Map(this.#leaves);
    const before = this.#leaves.get(staged.leaf);
    if (before !== undefined) {
      const old = before[staged.kind];
      const now = s.ratchets[staged.kind];
      if (old.secret !== now.secret) old.secret.fill(0);
      for (const [g, kn] of old.skipped) if (!now.skipped.has(g)) zeroKeyNonce(kn);
    }
    leaves.set(staged.leaf, s.ratchets);
    this.#retired = true;
    return new SecretTree(this.#cs, this.leafCount, nodes, leaves, this.#maxForward, this.#maxSkipped);
  }

  /** Zeroes every secret this tree holds (end of an epoch's retention) and retires it. */
  destroy(): void {
    if (this.#retired) return;
    for (const s of this.#nodes.values()) s.fill(0);
    for (const lr of this.#leaves.values()) {
      for (const r of [lr.handshake, lr.application]) {
        r.secret.fill(0);
        for (const kn of r.skipped.values()) zeroKeyNonce(kn);
      }
    }
    this.#retired = true;
  }

  /** @internal the held state, for `encodeSecretTreeState`. */
  parts(): { nodes: ReadonlyMap<number, Uint8Array>; leaves: ReadonlyMap<number, LeafRatchets> } {
    this.#live();
    return { nodes: this.#nodes, leaves: this.#leaves };
  }
}

function limits(options: SecretTreeOptions): { maxForward: number; maxSkipped: number } {
  const maxForward = options.maxForwardGenerations ?? DEFAULT_MAX_FORWARD_GENERATIONS;
  const maxSkipped = options.maxSkippedKeys ?? DEFAULT_MAX_SKIPPED_KEYS;
  if (!Number.isSafeInteger(maxForward) || maxForward < 0) throw new TypeError("bad maxForwardGenerations");
  if (!Number.isSafeInteger(maxSkipped) || maxSkipped < 0) throw new TypeError("bad maxSkippedKeys");
  return { maxForward, maxSkipped };
}

function zeroKeyNonce(kn: KeyNonce): void {
  kn.key.fill(0);
  kn.nonce.fill(0);
}

// ------------------------------------------------------------------------------------ state

/*
 * The persisted state of a secret tree (our format, TLS presentation language):
 *
 *   struct { uint32 generation; opaque key<V>; opaque nonce<V>; } SkippedKey;
 *   struct { uint32 generation; opaque secret<V>; SkippedKey skipped<V>; } Ratchet;
 *   struct { uint32 leaf; Ratchet handshake; Ratchet application; } LeafRatchets;
 *   struct { uint32 node; opaque secret<V>; } NodeSecret;
 *   struct { uint32 leaf_count; NodeSecret nodes<V>; LeafRatchets leaves<V>; } SecretTreeState;
 *
 * Nodes and leaves ascending by index; skipped keys ascending by generation.
 */

function writeRatchet(w: Writer, r: Ratchet): void {
  w.u32(r.generation).vec(r.secret);
  w.vecOf([...r.skipped], (w2, [g, kn]) => {
    w2.u32(g).vec(kn.key).vec(kn.nonce);
  });
}

/** Writes `tree`'s state (secrets included: the caller stores it encrypted at rest). */
export function encodeSecretTreeState(w: Writer, tree: SecretTree): void {
  const { nodes, leaves } = tree.parts();
  w.u32(tree.leafCount);
  w.vecOf(
    [...nodes].sort((a, b) => a[0] - b[0]),
    (w2, [i, s]) => {
      w2.u32(i).vec(s);
    },
  );
  w.vecOf(
    [...leaves].sort((a, b) => a[0] - b[0]),
    (w2, [leaf, lr]) => {
      w2.u32(leaf);
      writeRatchet(w2, lr.handshake);
      writeRatchet(w2, lr.application);
    },
  );
}

function bad(what: string): DecodeError {
  return new DecodeError("state secret_tree", what);
}

function readSecret(r: Reader, length: number): Uint8Array {
  const s = r.vec();
  if (s.length !== length) throw bad(`a secret of ${s.length} bytes, expected ${length}`);
  return s.slice();
}

function readRatchet(r: Reader, cs: CiphersuiteImpl): Ratchet {
  const generation = r.u32();
  const secret = readSecret(r, cs.kdf.size);
  let last = -1;
  const skipped = new Map<number, KeyNonce>();
  for (const [g, kn] of r.vecOf((r2) => {
    const g2 = r2.u32();
    return [
      g2,
      { key: readSecret(r2, cs.hpke.keyLength), nonce: readSecret(r2, cs.hpke.nonceLength) },
    ] as const;
  })) {
    if (g <= last || g >= generation) throw bad(`skipped generation ${g} out of order`);
    last = g;
    skipped.set(g, kn);
  }
  return { generation, secret, skipped };
}

/** Reads a state written by `encodeSecretTreeState` into a tree of suite `cs`. */
export function readSecretTreeState(
  r: Reader,
  cs: CiphersuiteImpl,
  options: SecretTreeOptions = {},
): SecretTree {
  const leafCount = r.u32();
  if (leafCount < 1) throw bad("no leaves");
  const width = 2 * leafCount - 1;
  const nodes = new Map<number, Uint8Array>();
  for (const [i, s] of r.vecOf((r2) => [r2.u32(), readSecret(r2, cs.kdf.size)] as const)) {
    if (nodes.has(i) || i >= 2 * (rootOf(leafCount) + 1)) throw bad(`node ${i} repeated or outside the tree`);
    nodes.set(i, s);
  }
  const leaves = new Map<number, LeafRatchets>();
  for (const [leaf, lr] of r.vecOf(
    (r2) => [r2.u32(), { handshake: readRatchet(r2, cs), application: readRatchet(r2, cs) }] as const,
  )) {
    if (leaves.has(leaf) || 2 * leaf >= width) throw bad(`leaf ${leaf} repeated or outside the tree`);
    leaves.set(leaf, lr);
  }
  return SecretTree.fromParts(cs, leafCount, nodes, leaves, options);
}
