/**
 * RFC 9420 §12.4.3.1, a joiner's path secret: "Identify the lowest common ancestor of the leaf
 * node my_leaf and of the node of the member with leaf index GroupInfo.signer. Set the private
 * key for this node to the private key derived from the path_secret. For each parent of the
 * common ancestor, up to the root of the tree, derive a new path secret, and set the private
 * keys for the node to the private key derived from the path secret. The private key MUST be
 * the private key that corresponds to the public key in the node."
 *
 * The path secrets run along the committer's filtered direct path (§7.4): nodes skipped there
 * are blank in the tree the joiner receives.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { bytesEqual } from "../crypto/bytes.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { commonAncestor, leafToNode } from "../tree/math.js";
import { filteredDirectPath, getParentNode } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { nodeKeyPair, pathSecretChain } from "./pathSecrets.js";

export const JOINER_PATH_SECRET_RULE = "§12.4.3.1 path_secret";

function fail(message: string, node?: number): never {
  throw new MlsRuleError(
    ErrorCode.InvalidWelcome,
    JOINER_PATH_SECRET_RULE,
    message,
    node === undefined ? {} : { node },
  );
}

/**
 * Derives the joiner's private keys from the Welcome's `path_secret` and checks each derived
 * public key against the tree. Returns them by node index. Throws
 * MlsRuleError(InvalidWelcome, "§12.4.3.1 path_secret") when a key differs, a node on the way is
 * blank, or the common ancestor is not on the committer's filtered direct path.
 */
export async function joinerPathKeys(
  cs: CiphersuiteImpl,
  tree: RatchetTree,
  joinerLeafIndex: number,
  signerLeafIndex: number,
  pathSecret: Uint8Array,
): Promise<Map<number, Uint8Array>> {
  if (joinerLeafIndex === signerLeafIndex) fail("the GroupInfo signer is the joiner");
  const path = filteredDirectPath(tree, signerLeafIndex);
  const ancestor = commonAncestor(leafToNode(joinerLeafIndex), leafToNode(signerLeafIndex));
  const at = path.indexOf(ancestor);
  if (at < 0)
    fail(`the common ancestor ${ancestor} is not on the committer's filtered direct path`, ancestor);
  const nodes = path.slice(at);
  const chain = await pathSecretChain(pathSecret, nodes.length, cs.kdf);
  chain.next.fill(0);
  const keys = new Map<number, Uint8Array>();
  try {
    for (const [i, x] of nodes.entries()) {
      const node = getParentNode(tree, x);
      if (node === undefined) fail(`node ${x} on the path is blank`, x);
      const kp = await nodeKeyPair(chain.secrets[i] as Uint8Array, cs);
      keys.set(x, kp.privateKey);
      // §12.4.3.1: the derived key pair is the node's.
      if (!bytesEqual(kp.publicKey, node.encryptionKey))
        fail(`the key derived for node ${x} is not the tree's`, x);
    }
  } catch (e) {
    for (const k of keys.values()) k.fill(0);
    throw e;
  } finally {
    for (const s of chain.secrets.slice(1)) s.fill(0);
  }
  return keys;
}
