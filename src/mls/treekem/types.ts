/** RFC 9420 §7.6 UpdatePath and HPKECiphertext. */
import type { LeafNode } from "../keypackage/types.js";

/** §7.6 HPKECiphertext. */
export interface HpkeCiphertext {
  readonly kemOutput: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** §7.6 UpdatePathNode. */
export interface UpdatePathNode {
  readonly encryptionKey: Uint8Array;
  readonly encryptedPathSecret: readonly HpkeCiphertext[];
}

/** §7.6 UpdatePath. */
export interface UpdatePath {
  readonly leafNode: LeafNode;
  readonly nodes: readonly UpdatePathNode[];
}
