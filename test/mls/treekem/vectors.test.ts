/**
 * treekem.json through src/mls/treekem: each member's private state from its path secrets
 * (§7.4), every UpdatePath applied by every other member (§7.5–§7.6: decrypted path secret,
 * commit secret, tree hash after the merge, §7.9.2 parent hash of the path), and a fresh
 * UpdatePath of ours for the first sender, processed by every other member.
 */
import { expect } from "vitest";
import { decodeExact, encode } from "../../../src/mls/codec/index.js";
import { defaultAuthenticationService } from "../../../src/mls/credential/authentication.js";
import { decryptWithLabel, encryptWithLabel } from "../../../src/mls/crypto/labels.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { writeGroupContext } from "../../../src/mls/keyschedule/codec.js";
import { readRatchetTree } from "../../../src/mls/tree/codec.js";
import { treeHash } from "../../../src/mls/tree/hash.js";
import { commonAncestor, leafToNode } from "../../../src/mls/tree/math.js";
import { encryptionKeyOf, getLeaf, nodeAt, toFullWidth } from "../../../src/mls/tree/tree.js";
import type { RatchetTree } from "../../../src/mls/tree/types.js";
import type { GroupParams } from "../../../src/mls/tree/validate.js";
import { readUpdatePath } from "../../../src/mls/treekem/codec.js";
import { nodeKeyPair } from "../../../src/mls/treekem/pathSecrets.js";
import {
  applyUpdatePath,
  createUpdatePath,
  type ProvisionalContext,
} from "../../../src/mls/treekem/updatePath.js";
import { MAIN_PROVIDERS, bytesToHex, hex, vectorTests } from "../../vectors/helpers.js";

interface TreeKemVector {
  cipher_suite: number;
  group_id: string;
  epoch: number;
  confirmed_transcript_hash: string;
  ratchet_tree: string;
  leaves_private: {
    index: number;
    encryption_priv: string;
    signature_priv: string;
    path_secrets: { node: number; path_secret: string }[];
  }[];
  update_paths: {
    sender: number;
    update_path: string;
    path_secrets: (string | null)[];
    commit_secret: string;
    tree_hash_after: string;
  }[];
}

/** True when `priv` opens what is sealed to `pub` (the HPKE interface has no pub-from-priv). */
async function keysMatch(cs: CiphersuiteImpl, priv: Uint8Array, pub: Uint8Array): Promise<boolean> {
  const msg = Uint8Array.of(1, 2, 3);
  const { ct, enc } = await encryptWithLabel(
    await cs.hpke.importPublicKey(pub),
    "check",
    new Uint8Array(0),
    msg,
    cs.hpke,
  );
  const out = await decryptWithLabel(
    await cs.hpke.importPrivateKey(priv),
    "check",
    new Uint8Array(0),
    enc,
    ct,
    cs.hpke,
  );
  return bytesToHex(out) === bytesToHex(msg);
}

/** Up to `count` members other than `sender`, with their private keys. */
function receivers<T>(states: Map<number, T>, sender: number, count: number): [number, T][] {
  return [...states].filter(([j]) => j !== sender).slice(0, count);
}

/** The private TreeKEM state of each member with private data (vector's leaves_private). */
async function privateStates(
  cs: CiphersuiteImpl,
  v: TreeKemVector,
  tree: RatchetTree,
): Promise<Map<number, Map<number, Uint8Array>>> {
  const states = new Map<number, Map<number, Uint8Array>>();
  for (const lp of v.leaves_private) {
    const leaf = getLeaf(tree, lp.index);
    expect(leaf, `leaf ${lp.index}`).toBeDefined();
    const keys = new Map<number, Uint8Array>([[leafToNode(lp.index), hex(lp.encryption_priv)]]);
    expect(
      await keysMatch(cs, hex(lp.encryption_priv), (leaf as { encryptionKey: Uint8Array }).encryptionKey),
    ).toBe(true);
    for (const ps of lp.path_secrets) {
      const kp = await nodeKeyPair(hex(ps.path_secret), cs);
      const node = nodeAt(tree, ps.node);
      expect(node, `node ${ps.node} of leaf ${lp.index}'s private state`).toBeDefined();
      expect(bytesToHex(encryptionKeyOf(node as NonNullable<typeof node>))).toBe(bytesToHex(kp.publicKey));
      keys.set(ps.node, kp.privateKey);
    }
    states.set(lp.index, keys);
  }
  return states;
}

/**
 * Every update path by every member on node:crypto; on WebCrypto (slow P-384/P-521/X448 HPKE),
 * each update path by one member, the vectors being the same.
 */
vectorTests<TreeKemVector>("treekem.json", MAIN_PROVIDERS.slice(0, 1), (v, cs) => runCase(v, cs, Infinity));
vectorTests<TreeKemVector>("treekem.json", MAIN_PROVIDERS.slice(1), (v, cs) => runCase(v, cs, 1));

async function runCase(v: TreeKemVector, cs: CiphersuiteImpl, receiversPerPath: number): Promise<void> {
  const tree = toFullWidth(decodeExact(hex(v.ratchet_tree), readRatchetTree));
  const groupId = hex(v.group_id);
  const context: ProvisionalContext = (th) =>
    encode(
      {
        version: 1,
        ciphersuite: v.cipher_suite,
        groupId,
        epoch: BigInt(v.epoch),
        treeHash: th,
        confirmedTranscriptHash: hex(v.confirmed_transcript_hash),
        extensions: [],
      },
      writeGroupContext,
    );
  const group: GroupParams = {
    cs,
    ciphersuite: v.cipher_suite,
    groupId,
    extensions: [],
    authenticationService: defaultAuthenticationService,
  };
  const states = await privateStates(cs, v, tree);
  for (const [k, up] of v.update_paths.entries()) {
    const updatePath = decodeExact(hex(up.update_path), readUpdatePath);
    for (const [j, privateKeys] of receivers(states, up.sender, receiversPerPath)) {
      const r = await applyUpdatePath({
        cs,
        tree,
        senderLeafIndex: up.sender,
        updatePath,
        receiverLeafIndex: j,
        privateKeys,
        context,
        group,
      });
      const secret = r.pathSecrets.get(commonAncestor(leafToNode(j), leafToNode(up.sender)));
      expect(secret && bytesToHex(secret), `path secret of leaf ${j}`).toBe(up.path_secrets[j]);
      expect(bytesToHex(r.commitSecret)).toBe(up.commit_secret);
      expect(bytesToHex(r.treeHash)).toBe(up.tree_hash_after);
      expect(bytesToHex(await treeHash(r.tree, cs.hash))).toBe(up.tree_hash_after);
    }
    // Our own UpdatePath for the first sender, processed by every other member (one per case:
    // the P-384/P-521 suites make each HPKE operation costly).
    if (k > 0) continue;
    const sender = v.leaves_private.find((l) => l.index === up.sender);
    const old = getLeaf(tree, up.sender);
    if (sender === undefined || old === undefined) throw new Error(`no private data for sender ${up.sender}`);
    const created = await createUpdatePath({
      cs,
      tree,
      leafIndex: up.sender,
      groupId,
      leaf: old,
      signaturePrivateKey: hex(sender.signature_priv),
      context,
    });
    for (const [j, privateKeys] of receivers(states, up.sender, receiversPerPath)) {
      const r = await applyUpdatePath({
        cs,
        tree,
        senderLeafIndex: up.sender,
        updatePath: created.updatePath,
        receiverLeafIndex: j,
        privateKeys,
        context,
        group,
      });
      expect(bytesToHex(r.commitSecret)).toBe(bytesToHex(created.commitSecret));
      expect(bytesToHex(r.treeHash)).toBe(bytesToHex(created.treeHash));
    }
  }
}
