/**
 * RFC 9420 §7.4 path secrets:
 *
 *     path_secret[0]   = DeriveSecret(leaf_secret, "path")
 *     path_secret[n+1] = DeriveSecret(path_secret[n], "path")
 *     node_secret[n]   = DeriveSecret(path_secret[n], "node")
 *     node_priv[n], node_pub[n] = KEM.DeriveKeyPair(node_secret[n])
 *
 * and the commit secret, one step past the root's path secret (§7.4, §8). Key pairs are handed
 * out serialized (RFC 9180 SerializePublicKey / SerializePrivateKey).
 */
import { deriveSecret, deriveSecretSync } from "../crypto/labels.js";
import type { CiphersuiteImpl, Kdf, SyncExpandKdf } from "../crypto/types.js";

/** A derived HPKE key pair, serialized. The caller owns (and zeroes) `privateKey`. */
export interface NodeKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

function derive(secret: Uint8Array, label: string, kdf: Kdf): Promise<Uint8Array> | Uint8Array {
  const k = kdf as Partial<SyncExpandKdf>;
  return typeof k.expandSync === "function"
    ? deriveSecretSync(secret, label, kdf as SyncExpandKdf)
    : deriveSecret(secret, label, kdf);
}

/** §7.4 path_secret[n+1] = DeriveSecret(path_secret[n], "path") (also path_secret[0] from leaf_secret). */
export async function nextPathSecret(pathSecret: Uint8Array, kdf: Kdf): Promise<Uint8Array> {
  return derive(pathSecret, "path", kdf);
}

/** §7.4 node_secret = DeriveSecret(path_secret, "node"), then KEM.DeriveKeyPair(node_secret). */
export async function nodeKeyPair(pathSecret: Uint8Array, cs: CiphersuiteImpl): Promise<NodeKeyPair> {
  const nodeSecret = await derive(pathSecret, "node", cs.kdf);
  try {
    const kp = await cs.hpke.deriveKeyPair(nodeSecret);
    const [privateKey, publicKey] = await Promise.all([
      cs.hpke.exportPrivateKey(kp.privateKey),
      cs.hpke.exportPublicKey(kp.publicKey),
    ]);
    return { privateKey, publicKey };
  } finally {
    nodeSecret.fill(0);
  }
}

/**
 * §7.4 the path secrets of `count` consecutive filtered-direct-path nodes starting from
 * `first` (that of the lowest node), and the secret one step past the last: the commit secret
 * when the last node is the root.
 */
export async function pathSecretChain(
  first: Uint8Array,
  count: number,
  kdf: Kdf,
): Promise<{ readonly secrets: Uint8Array[]; readonly next: Uint8Array }> {
  const secrets: Uint8Array[] = [];
  let s = first;
  for (let i = 0; i < count; i++) {
    secrets.push(s);
    s = await nextPathSecret(s, kdf);
  }
  return { secrets, next: s };
}
