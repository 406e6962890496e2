/**
 * TLS codecs (RFC 9420 §2.1) of joining and the message envelope:
 *
 * - §12.4.3 `GroupInfo { GroupContext group_context; Extension extensions<V>; MAC confirmation_tag;
 *   uint32 signer; opaque signature<V>; }` and `GroupInfoTBS` (all but the signature)
 * - §12.4.3.1 `GroupSecrets { opaque joiner_secret<V>; optional<PathSecret> path_secret;
 *   PreSharedKeyID psks<V>; }` with `PathSecret { opaque path_secret<V>; }`
 * - §12.4.3.1 `EncryptedGroupSecrets { KeyPackageRef new_member; HPKECiphertext encrypted_group_secrets; }`
 * - §12.4.3.1 `Welcome { CipherSuite cipher_suite; EncryptedGroupSecrets secrets<V>; opaque encrypted_group_info<V>; }`
 * - §6 `MLSMessage { ProtocolVersion version = mls10; WireFormat wire_format; select { … } }`
 *
 * `readMlsMessage` refuses a version other than mls10 ("§6 version") and a wire format outside §6
 * ("§2.1 unknown enum value"). Byte fields decode as views into the input.
 */
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import {
  readPrivateMessage,
  readPublicMessage,
  writePrivateMessage,
  writePublicMessage,
} from "../framing/codec.js";
import { WireFormats } from "../framing/types.js";
import { readExtensions, readKeyPackage, writeExtensions, writeKeyPackage } from "../keypackage/codec.js";
import { MLS10 } from "../keypackage/types.js";
import {
  readGroupContext,
  readPreSharedKeyId,
  writeGroupContext,
  writePreSharedKeyId,
} from "../keyschedule/codec.js";
import { readHpkeCiphertext, writeHpkeCiphertext } from "../treekem/codec.js";
import type { EncryptedGroupSecrets, GroupInfo, GroupSecrets, MlsMessage, Welcome } from "./types.js";

/** §12.4.3 GroupInfoTBS: the GroupInfo without its signature. */
export function writeGroupInfoTbs(w: Writer, gi: GroupInfo): void {
  writeGroupContext(w, gi.groupContext);
  writeExtensions(w, gi.extensions);
  w.vec(gi.confirmationTag).u32(gi.signer);
}

/** §12.4.3 GroupInfo. */
export function writeGroupInfo(w: Writer, gi: GroupInfo): void {
  writeGroupInfoTbs(w, gi);
  w.vec(gi.signature);
}

/** §12.4.3 GroupInfo. */
export function readGroupInfo(r: Reader): GroupInfo {
  const groupContext = readGroupContext(r);
  const extensions = readExtensions(r);
  const confirmationTag = r.vec();
  const signer = r.u32();
  return { groupContext, extensions, confirmationTag, signer, signature: r.vec() };
}

const readPathSecret = (r: Reader): Uint8Array => r.vec();
const writePathSecret = (w: Writer, s: Uint8Array): void => {
  w.vec(s);
};

/** §12.4.3.1 GroupSecrets. */
export function writeGroupSecrets(w: Writer, gs: GroupSecrets): void {
  w.vec(gs.joinerSecret).optional(gs.pathSecret, writePathSecret).vecOf(gs.psks, writePreSharedKeyId);
}

/** §12.4.3.1 GroupSecrets. */
export function readGroupSecrets(r: Reader): GroupSecrets {
  const joinerSecret = r.vec();
  const pathSecret = r.optional(readPathSecret);
  return { joinerSecret, pathSecret, psks: r.vecOf(readPreSharedKeyId) };
}

/** §12.4.3.1 EncryptedGroupSecrets. */
export function writeEncryptedGroupSecrets(w: Writer, e: EncryptedGroupSecrets): void {
  w.vec(e.newMember);
  writeHpkeCiphertext(w, e.encryptedGroupSecrets);
}

/** §12.4.3.1 EncryptedGroupSecrets. */
export function readEncryptedGroupSecrets(r: Reader): EncryptedGroupSecrets {
  const newMember = r.vec();
  return { newMember, encryptedGroupSecrets: readHpkeCiphertext(r) };
}

/** §12.4.3.1 Welcome. */
export function writeWelcome(w: Writer, wel: Welcome): void {
  w.u16(wel.ciphersuite).vecOf(wel.secrets, writeEncryptedGroupSecrets).vec(wel.encryptedGroupInfo);
}

/** §12.4.3.1 Welcome. */
export function readWelcome(r: Reader): Welcome {
  const ciphersuite = r.u16();
  const secrets = r.vecOf(readEncryptedGroupSecrets);
  return { ciphersuite, secrets, encryptedGroupInfo: r.vec() };
}

/** §6 MLSMessage (version mls10). */
export function writeMlsMessage(w: Writer, m: MlsMessage): void {
  w.u16(MLS10).u16(m.wireFormat);
  switch (m.wireFormat) {
    case WireFormats.mls_public_message:
      writePublicMessage(w, m.publicMessage);
      break;
    case WireFormats.mls_private_message:
      writePrivateMessage(w, m.privateMessage);
      break;
    case WireFormats.mls_welcome:
      writeWelcome(w, m.welcome);
      break;
    case WireFormats.mls_group_info:
      writeGroupInfo(w, m.groupInfo);
      break;
    case WireFormats.mls_key_package:
      writeKeyPackage(w, m.keyPackage);
      break;
    default:
      throw new TypeError(`unknown wire format ${String((m as { wireFormat: unknown }).wireFormat)}`);
  }
}

/** §6 MLSMessage: version mls10 and one of the five wire formats of §6. */
export function readMlsMessage(r: Reader): MlsMessage {
  const version = r.u16();
  // §6: MLSMessage.version is mls10; this engine speaks no other version.
  if (version !== MLS10) throw new DecodeError("§6 version", `MLSMessage version ${version}, expected mls10`);
  const wireFormat = r.u16();
  switch (wireFormat) {
    case WireFormats.mls_public_message:
      return { wireFormat, publicMessage: readPublicMessage(r) };
    case WireFormats.mls_private_message:
      return { wireFormat, privateMessage: readPrivateMessage(r) };
    case WireFormats.mls_welcome:
      return { wireFormat, welcome: readWelcome(r) };
    case WireFormats.mls_group_info:
      return { wireFormat, groupInfo: readGroupInfo(r) };
    case WireFormats.mls_key_package:
      return { wireFormat, keyPackage: readKeyPackage(r) };
    default:
      // §2.1: a WireFormat with no case in the select cannot be skipped.
      throw new DecodeError("§2.1 unknown enum value", `wire format ${wireFormat}`);
  }
}
