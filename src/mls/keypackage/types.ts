/** RFC 9420 §7.2 LeafNode, §10 KeyPackage, and the pieces they share (§7.2 Capabilities, Lifetime; §13 Extension). */
import type { Credential } from "../credential/types.js";

/** §6 ProtocolVersion: mls10 = 1. */
export const MLS10 = 1;

/** §13 `Extension`; `extensionType` is the §17.3 code point. */
export interface Extension {
  readonly extensionType: number;
  readonly extensionData: Uint8Array;
}

/** §17.3 ExtensionType code points. */
export const ExtensionTypes = {
  application_id: 1,
  ratchet_tree: 2,
  required_capabilities: 3,
  external_pub: 4,
  external_senders: 5,
  /** RFC 9750 (draft-ietf-mls-extensions) last_resort, as CoreCrypto writes it. */
  last_resort: 0x000a,
} as const;

/** §7.2 Capabilities: every list holds code points. */
export interface Capabilities {
  readonly versions: readonly number[];
  readonly ciphersuites: readonly number[];
  readonly extensions: readonly number[];
  readonly proposals: readonly number[];
  readonly credentials: readonly number[];
}

/** §7.2 Lifetime: seconds since the Unix epoch. */
export interface Lifetime {
  readonly notBefore: bigint;
  readonly notAfter: bigint;
}

/** §7.2 LeafNodeSource. */
export const LeafNodeSources = { key_package: 1, update: 2, commit: 3 } as const;
export type LeafNodeSource = 1 | 2 | 3;

/**
 * §7.2 LeafNode. `lifetime` is present iff source = key_package; `parentHash` iff source = commit.
 */
export interface LeafNode {
  readonly encryptionKey: Uint8Array;
  readonly signatureKey: Uint8Array;
  readonly credential: Credential;
  readonly capabilities: Capabilities;
  readonly leafNodeSource: LeafNodeSource;
  readonly lifetime: Lifetime | undefined;
  readonly parentHash: Uint8Array | undefined;
  readonly extensions: readonly Extension[];
  readonly signature: Uint8Array;
}

/** §10 KeyPackage. */
export interface KeyPackage {
  readonly version: number;
  readonly ciphersuite: number;
  readonly initKey: Uint8Array;
  readonly leafNode: LeafNode;
  readonly extensions: readonly Extension[];
  readonly signature: Uint8Array;
}
