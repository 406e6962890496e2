/**
 * The group-level extensions of RFC 9420 (§17.3) and their data:
 *
 *   §12.1.8.1  struct { SignaturePublicKey signature_key; Credential credential; } ExternalSender;
 *              ExternalSender external_senders<V>;        // ONE extension holding the vector
 *   §12.4.3.2  struct { HPKEPublicKey external_pub; } ExternalPub;   // HPKEPublicKey = opaque<V>
 *   §12.4.3.3  optional<Node> ratchet_tree<V>;
 *
 * (`SignaturePublicKey` and `HPKEPublicKey` are `opaque <V>`, so both keys carry a length.)
 */
import { decodeExact, Writer, type Reader } from "../codec/index.js";
import { readCredential, writeCredential } from "../credential/codec.js";
import type { Credential } from "../credential/types.js";
import { ExtensionTypes, type Extension } from "../keypackage/types.js";
import { readRatchetTreeRemembered } from "../tree/nodeEncoding.js";
import type { RatchetTree } from "../tree/types.js";

/** §12.1.8.1 ExternalSender. */
export interface ExternalSender {
  readonly signatureKey: Uint8Array;
  readonly credential: Credential;
}

function readExternalSender(r: Reader): ExternalSender {
  const signatureKey = r.vec();
  return { signatureKey, credential: readCredential(r) };
}

function writeExternalSender(w: Writer, s: ExternalSender): void {
  w.vec(s.signatureKey);
  writeCredential(w, s.credential);
}

/** The extension of `type` in `extensions`, if any. */
export function findExtension(extensions: readonly Extension[], type: number): Extension | undefined {
  return extensions.find((e) => e.extensionType === type);
}

/** §12.1.8.1 the external senders of a GroupContext (none without the extension). Throws DecodeError when malformed. */
export function readExternalSenders(extensions: readonly Extension[]): ExternalSender[] {
  const ext = findExtension(extensions, ExtensionTypes.external_senders);
  if (ext === undefined) return [];
  return decodeExact(ext.extensionData, (r) => r.vecOf(readExternalSender));
}

/** §12.1.8.1 the external_senders extension holding `senders`. */
export function externalSendersExtension(senders: readonly ExternalSender[]): Extension {
  const w = new Writer(256);
  w.vecOf(senders, writeExternalSender);
  return { extensionType: ExtensionTypes.external_senders, extensionData: w.finish() };
}

/** §12.4.3.2 the external_pub extension: the external public key with its length prefix. */
export function externalPubExtension(publicKey: Uint8Array): Extension {
  return {
    extensionType: ExtensionTypes.external_pub,
    extensionData: new Writer(publicKey.length + 4).vec(publicKey).finish(),
  };
}

/** §12.4.3.2 the key in an external_pub extension's data. Throws DecodeError when malformed. */
export function readExternalPub(data: Uint8Array): Uint8Array {
  return decodeExact(data, (r) => r.vec());
}

/** §12.4.3.3 the ratchet_tree extension holding the encoded tree. */
export function ratchetTreeExtension(encodedTree: Uint8Array): Extension {
  return { extensionType: ExtensionTypes.ratchet_tree, extensionData: encodedTree };
}

/**
 * §12.4.3.3 the tree in a ratchet_tree extension's data (its nodes' encodings remembered, see
 * tree/nodeEncoding.ts). Throws DecodeError when malformed.
 */
export function readRatchetTreeExtension(data: Uint8Array): RatchetTree {
  return decodeExact(data, readRatchetTreeRemembered);
}
