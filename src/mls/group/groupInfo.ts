/**
 * RFC 9420 §12.4.3 GroupInfo: made by a committer for the new epoch (for the Welcome and, with
 * `external_pub`, for external joiners), and verified by whoever receives one.
 *
 *   struct { GroupContext group_context; Extension extensions<V>; MAC confirmation_tag;
 *            uint32 signer; } GroupInfoTBS;
 *   signature = SignWithLabel(signer's key, "GroupInfoTBS", GroupInfoTBS)
 */
import type { ErrorCode } from "../../errors.js";
import { encode, Writer } from "../codec/index.js";
import { signWithLabel, verifyWithLabel } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import type { Extension } from "../keypackage/types.js";
import { externalPublicKey } from "../keyschedule/schedule.js";
import type { GroupContext } from "../keyschedule/types.js";
import { getLeaf, leafCount } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { writeGroupInfo, writeGroupInfoTbs } from "./codec.js";
import { fail } from "../validation/errors.js";
import { externalPubExtension, ratchetTreeExtension } from "./extensions.js";
import { encodedRatchetTree } from "./stateEncoding.js";
import type { GroupInfo } from "./types.js";

/** §12.4.3 the encoded GroupInfoTBS of `gi` (its signature excluded). */
export function groupInfoTbs(gi: Omit<GroupInfo, "signature">): Uint8Array {
  let size = 256 + gi.groupContext.groupId.length;
  for (const e of gi.extensions) size += e.extensionData.length + 8;
  const w = new Writer(size);
  writeGroupInfoTbs(w, { ...gi, signature: new Uint8Array(0) });
  return w.finish();
}

/** Encodings of the GroupInfos we signed: GroupInfoTBS || signature<V> (§12.4.3). */
const signedEncodings = new WeakMap<GroupInfo, Uint8Array>();

/** §12.4.3 signs a GroupInfo with the signer's signature key. */
export async function signGroupInfo(
  cs: CiphersuiteImpl,
  tbs: Omit<GroupInfo, "signature">,
  signaturePrivateKey: Uint8Array,
): Promise<GroupInfo> {
  const tbsBytes = groupInfoTbs(tbs);
  const signature = await signWithLabel(signaturePrivateKey, "GroupInfoTBS", tbsBytes, cs.signature);
  const gi: GroupInfo = { ...tbs, signature };
  // GroupInfo is GroupInfoTBS followed by the signature: its encoding without a second pass.
  signedEncodings.set(
    gi,
    new Writer(tbsBytes.length + signature.length + 4).raw(tbsBytes).vec(signature).finish(),
  );
  return gi;
}

/** §12.4.3 the encoded GroupInfo (kept from signing when we signed it). */
export function encodedGroupInfo(gi: GroupInfo): Uint8Array {
  return signedEncodings.get(gi) ?? encode(gi, writeGroupInfo, 1024);
}

/**
 * §12.4.3.1 / §12.4.3.2: the GroupInfo signature verifies under the signer's leaf in `tree`
 * (which must be non-blank). Throws MlsRuleError(`code`, "<section> group_info_signature"),
 * `section` naming where the GroupInfo is checked (§12.4.3.1 joining, §12.4.3.2 external commit).
 */
export async function verifyGroupInfoSignature(
  cs: CiphersuiteImpl,
  gi: GroupInfo,
  tree: RatchetTree,
  code: ErrorCode,
  section: "§12.4.3.1" | "§12.4.3.2",
): Promise<void> {
  // §12.4.3.1: the signer is a member of the tree.
  const signer = gi.signer < leafCount(tree) ? getLeaf(tree, gi.signer) : undefined;
  if (signer === undefined)
    fail(code, `${section} group_info_signer`, `the GroupInfo signer ${gi.signer} is not a member`);
  // §12.4.3: the signature over GroupInfoTBS verifies with the signer's signature key.
  const ok = await verifyWithLabel(
    signer.signatureKey,
    "GroupInfoTBS",
    groupInfoTbs(gi),
    gi.signature,
    cs.signature,
  ).catch(() => false);
  if (!ok) fail(code, `${section} group_info_signature`, "the GroupInfo signature does not verify");
}

/**
 * The GroupInfo of a new epoch as CoreCrypto sends it in a commit bundle: extensions
 * `ratchet_tree` (§12.4.3.3) then `external_pub` (§12.4.3.2: the external key pair's public key,
 * with its length prefix), signed by `signer`.
 */
export async function bundleGroupInfo(
  cs: CiphersuiteImpl,
  input: {
    readonly context: GroupContext;
    readonly tree: RatchetTree;
    readonly confirmationTag: Uint8Array;
    readonly externalSecret: Uint8Array;
    readonly signer: number;
    readonly signaturePrivateKey: Uint8Array;
  },
): Promise<GroupInfo> {
  const extensions: Extension[] = [
    ratchetTreeExtension(encodedRatchetTree(input.tree)),
    externalPubExtension(await externalPublicKey(cs, input.externalSecret)),
  ];
  return signGroupInfo(
    cs,
    { groupContext: input.context, extensions, confirmationTag: input.confirmationTag, signer: input.signer },
    input.signaturePrivateKey,
  );
}
