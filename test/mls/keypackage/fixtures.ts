/** Valid key packages to break one field at a time (node:crypto provider, our builder). */
import { encode } from "../../../src/mls/codec/index.js";
import { writeCredential } from "../../../src/mls/credential/codec.js";
import type { Credential } from "../../../src/mls/credential/types.js";
import { signWithLabel } from "../../../src/mls/crypto/labels.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { ciphersuiteImpl } from "../../../src/mls/crypto/select.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { buildKeyPackage } from "../../../src/mls/keypackage/build.js";
import { writeKeyPackage, writeKeyPackageTbs, writeLeafNodeTbs } from "../../../src/mls/keypackage/codec.js";
import { parseKeyPackage } from "../../../src/mls/keypackage/parse.js";
import type { KeyPackage, LeafNode } from "../../../src/mls/keypackage/types.js";

/** 2026-11-27T12:00:00Z, in seconds. */
export const NOW_S = 1_795_780_800;
export const NOW = new Date(NOW_S * 1000);
export const NOT_BEFORE = NOW_S - 3600;
export const NOT_AFTER = NOW_S + 84 * 24 * 3600;

export const node = (suite: number): Promise<CiphersuiteImpl> => ciphersuiteImpl(suite, nodeCryptoProvider);

export interface Fixture {
  readonly cs: CiphersuiteImpl;
  readonly suite: number;
  readonly signKey: Uint8Array;
  readonly kp: KeyPackage;
  readonly bytes: Uint8Array;
}

export const basic = (identity: string): Credential => ({
  credentialType: 1,
  identity: new TextEncoder().encode(identity),
});

/** A valid package of `suite` with a fresh signature key. */
export async function validPackage(
  suite = 1,
  opts: { lastResort?: boolean; credential?: Credential; notBefore?: number; notAfter?: number } = {},
): Promise<Fixture> {
  const cs = await node(suite);
  const { signKey, publicKey } = await cs.signature.keygen();
  const built = await buildKeyPackage(cs, {
    ciphersuite: suite,
    credential: encode(opts.credential ?? basic("alice@example.com"), writeCredential),
    signaturePublicKey: publicKey,
    signaturePrivateKey: signKey,
    notBefore: opts.notBefore ?? NOT_BEFORE,
    notAfter: opts.notAfter ?? NOT_AFTER,
    lastResort: opts.lastResort ?? false,
  });
  return { cs, suite, signKey, kp: parseKeyPackage(built.bytes), bytes: built.bytes };
}

/** `kp` with its signatures made again: the leaf's when `leaf`, then always the package's. */
export async function resign(f: Fixture, kp: KeyPackage, leaf: boolean): Promise<KeyPackage> {
  let leafNode: LeafNode = kp.leafNode;
  if (leaf) {
    const tbs = encode(leafNode, (w, l) => writeLeafNodeTbs(w, l));
    leafNode = { ...leafNode, signature: await signWithLabel(f.signKey, "LeafNodeTBS", tbs, f.cs.signature) };
  }
  const unsigned = { ...kp, leafNode };
  const tbs = encode(unsigned, writeKeyPackageTbs);
  return { ...unsigned, signature: await signWithLabel(f.signKey, "KeyPackageTBS", tbs, f.cs.signature) };
}

/** `f.kp` with `change` applied to its leaf node, both signatures made again. */
export function withLeaf(f: Fixture, change: (leaf: LeafNode) => LeafNode): Promise<KeyPackage> {
  return resign(f, { ...f.kp, leafNode: change(f.kp.leafNode) }, true);
}

export const encodeKeyPackage = (kp: KeyPackage): Uint8Array => encode(kp, writeKeyPackage);
