/**
 * RFC 9420 §12.4.3.1 joining a group from a Welcome, in three steps with types that cannot be
 * skipped (parse → verify → use):
 *
 * - `parseWelcome`: bytes → `UnverifiedWelcome` (strict decoding; which key packages it is for);
 * - `verifyWelcome`: every check of §12.4.3.1 → `JoinableWelcome`: the GroupSecrets decrypted
 *   with our init key, the PSKs, the GroupInfo decrypted, decoded with no trailing bytes and its
 *   signature verified, the suite matched, the ratchet tree (extension or given) validated (tree
 *   hash, parent hashes, unmerged leaves, every leaf §7.3 with lifetimes at the session clock,
 *   every credential through the authentication service, unique keys), our own leaf found and
 *   our own key package's signatures verified, the path secret's derived public keys checked
 *   against the tree, the key schedule and the confirmation tag;
 * - `joinGroup`: `JoinableWelcome` → `GroupState`.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { decodeExact, encode } from "../codec/index.js";
import type { AuthenticationService } from "../credential/authentication.js";
import { bytesEqual } from "../crypto/bytes.js";
import { decryptWithLabel, makeKeyPackageRef, verifyOwnWithLabel } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { WireFormats } from "../framing/types.js";
import { writeKeyPackage, writeKeyPackageTbs } from "../keypackage/codec.js";
import { ExtensionTypes, MLS10, type KeyPackage, type LeafNode } from "../keypackage/types.js";
import { pskSecret, type PskInput } from "../keyschedule/psk.js";
import {
  epochSecretsFromMember,
  memberSecret,
  welcomeKeyNonce,
  welcomeSecret,
  welcomeSecretFromMember,
  type EpochSecrets,
} from "../keyschedule/schedule.js";
import { verifyConfirmationTag } from "../keyschedule/transcript.js";
import type { GroupContext, PreSharedKeyId } from "../keyschedule/types.js";
import { leafToNode } from "../tree/math.js";
import { encodedLeafNode } from "../tree/nodeEncoding.js";
import { members } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { validateRatchetTree } from "../tree/validate.js";
import { joinerPathKeys } from "../treekem/joiner.js";
import type { PskLookup } from "./applyProposals.js";
import { readGroupInfo, readGroupSecrets } from "./codec.js";
import { decodeAs, fail, recode, renamed } from "../validation/errors.js";
import { enterEpoch } from "./epoch.js";
import { findExtension, readRatchetTreeExtension } from "./extensions.js";
import { verifyGroupInfoSignature } from "./groupInfo.js";
import { decodeMlsMessage } from "./mlsMessage.js";
import type { GroupState } from "./state.js";
import { rememberTreeEncoding } from "./stateEncoding.js";
import type { GroupInfo, GroupSecrets, Welcome } from "./types.js";

const W = ErrorCode.InvalidWelcome;

/** A decoded Welcome, not checked: only `verifyWelcome` turns it into something to join with. */
export interface UnverifiedWelcome {
  readonly welcome: Welcome;
  readonly ciphersuite: number;
  /** §12.4.3.1 the KeyPackageRefs the Welcome carries group secrets for. */
  readonly newMembers: readonly Uint8Array[];
}

/** Decodes an MLSMessage(Welcome) strictly (§2.1); anything else is an InvalidWelcome naming the rule broken. */
export function parseWelcome(bytes: Uint8Array): UnverifiedWelcome {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("expected the Welcome as a Uint8Array");
  const m = decodeMlsMessage(bytes, W, "the Welcome");
  // §6: the MLSMessage is a Welcome.
  if (m.wireFormat !== WireFormats.mls_welcome)
    fail(W, "§6 wire_format", `expected a Welcome, got wire format ${m.wireFormat}`);
  return {
    welcome: m.welcome,
    ciphersuite: m.welcome.ciphersuite,
    newMembers: m.welcome.secrets.map((s) => s.newMember),
  };
}

/** Our key package and the private keys that join with it. Secrets. */
export interface JoinKeys {
  readonly keyPackage: KeyPackage;
  /** Its §5.2 KeyPackageRef, when known (else computed from `keyPackageBytes` or the encoding). */
  readonly keyPackageRef?: Uint8Array;
  readonly keyPackageBytes?: Uint8Array;
  readonly initPrivateKey: Uint8Array;
  readonly encryptionPrivateKey: Uint8Array;
  readonly signaturePrivateKey: Uint8Array;
}

export interface JoinOptions {
  /** Session clock, seconds since the Unix epoch (§7.3 lifetimes of every leaf). */
  readonly now: bigint;
  readonly authenticationService: AuthenticationService;
  /** The PSKs the Welcome may name (§8.4: external ones at least). */
  readonly psk?: PskLookup;
  /** The ratchet tree, when it is not in the GroupInfo's ratchet_tree extension (§12.4.3.3). */
  readonly ratchetTree?: RatchetTree;
}

/** Only `verifyWelcome` holds this key, so only it can make a `JoinableWelcome`. */
const joinable: unique symbol = Symbol("JoinableWelcome");

/** A Welcome that passed every check of §12.4.3.1: what `joinGroup` builds the state from. */
export interface JoinableWelcome {
  readonly [joinable]: true;
  readonly cs: CiphersuiteImpl;
  readonly groupInfo: GroupInfo;
  readonly context: GroupContext;
  readonly tree: RatchetTree;
  readonly ownLeaf: number;
  readonly privateKeys: ReadonlyMap<number, Uint8Array>;
  readonly signaturePrivateKey: Uint8Array;
  readonly secrets: EpochSecrets;
}

/** §12.4.3.1 our EncryptedGroupSecrets, decrypted with the init key and decoded. */
export async function openGroupSecrets(
  cs: CiphersuiteImpl,
  welcome: Welcome,
  ref: Uint8Array,
  initPrivateKey: Uint8Array,
): Promise<GroupSecrets> {
  const mine = welcome.secrets.find((s) => bytesEqual(s.newMember, ref));
  // §12.4.3.1: the Welcome carries group secrets for our KeyPackageRef.
  if (mine === undefined)
    fail(W, "§12.4.3.1 new_member", "the Welcome has no group secrets for this key package");
  let plain: Uint8Array;
  try {
    const sk = await cs.hpke.importPrivateKey(initPrivateKey);
    const ct = mine.encryptedGroupSecrets;
    plain = await decryptWithLabel(
      sk,
      "Welcome",
      welcome.encryptedGroupInfo,
      ct.kemOutput,
      ct.ciphertext,
      cs.hpke,
    );
  } catch (e) {
    // §12.4.3.1: the group secrets decrypt with our init key (EncryptWithLabel "Welcome").
    throw new MlsRuleError(
      W,
      "§12.4.3.1 group_secrets_decryption",
      "the group secrets do not decrypt",
      {},
      { cause: e },
    );
  }
  return decodeAs(W, "the GroupSecrets", () => decodeExact(plain, readGroupSecrets));
}

/** §8.4 the PSKs of the GroupSecrets, with their values. */
function welcomePsks(
  cs: CiphersuiteImpl,
  ids: readonly PreSharedKeyId[],
  lookup: PskLookup | undefined,
): PskInput[] {
  return ids.map((id, i) => {
    // §8.4: psk_nonce is KDF.Nh bytes.
    if (id.pskNonce.length !== cs.kdf.size)
      fail(W, "§8.4 psk_nonce", `PSK ${i}: psk_nonce of ${id.pskNonce.length} bytes`);
    const psk = lookup?.(id);
    // §12.4.3.1: the joiner holds every PSK the Welcome names.
    if (psk === undefined) fail(W, "§8.4 psk_unknown", `PSK ${i} is not one we hold`);
    return { id, psk };
  });
}

/** §12.4.3.1 the GroupInfo, decrypted with the welcome key and decoded with nothing left over. */
export async function openGroupInfo(
  cs: CiphersuiteImpl,
  welcome: Welcome,
  joinerSecret: Uint8Array,
  psk: Uint8Array,
): Promise<GroupInfo> {
  return openGroupInfoWith(cs, welcome, await welcomeSecret(cs, joinerSecret, psk));
}

/** `openGroupInfo` with welcome_secret already derived (it is zeroed). */
async function openGroupInfoWith(cs: CiphersuiteImpl, welcome: Welcome, ws: Uint8Array): Promise<GroupInfo> {
  const { key, nonce } = await welcomeKeyNonce(cs, ws);
  ws.fill(0);
  let plain: Uint8Array;
  try {
    plain = await cs.hpke.decryptAead(key, nonce, new Uint8Array(0), welcome.encryptedGroupInfo);
  } catch (e) {
    // §12.4.3.1: the GroupInfo decrypts with welcome_key / welcome_nonce.
    throw new MlsRuleError(
      W,
      "§12.4.3.1 group_info_decryption",
      "the GroupInfo does not decrypt",
      {},
      { cause: e },
    );
  } finally {
    key.fill(0);
  }
  return decodeAs(W, "the GroupInfo", () => decodeExact(plain, readGroupInfo));
}

/** §12.4.3.3 the tree: from the ratchet_tree extension, else the one given out of band. */
function ratchetTreeOf(
  gi: GroupInfo,
  given: RatchetTree | undefined,
): { tree: RatchetTree; bytes?: Uint8Array } {
  const ext = findExtension(gi.extensions, ExtensionTypes.ratchet_tree);
  if (ext !== undefined) {
    return {
      tree: decodeAs(W, "the ratchet_tree extension", () => readRatchetTreeExtension(ext.extensionData)),
      bytes: ext.extensionData,
    };
  }
  // §12.4.3.1: without the extension the joiner must have the tree from elsewhere.
  if (given === undefined) fail(W, "§12.4.3.3 ratchet_tree", "no ratchet_tree extension and no tree given");
  return { tree: given };
}

/** §12.4.3.1: our leaf, the one whose LeafNode is our key package's. */
function findOwnLeaf(tree: RatchetTree, leaf: LeafNode): number {
  for (const m of members(tree)) {
    if (
      !bytesEqual(m.leaf.encryptionKey, leaf.encryptionKey) ||
      !bytesEqual(m.leaf.signatureKey, leaf.signatureKey)
    )
      continue;
    if (bytesEqual(encodedLeafNode(m.leaf), encodedLeafNode(leaf))) return m.leafIndex;
  }
  return fail(W, "§12.4.3.1 own_leaf", "our key package's leaf is not in the tree");
}

/**
 * Our own stored key package's signatures (§10.1), checked before we trust it: the KeyPackage
 * signature here; the LeafNode signature is that of our leaf in the tree, which
 * `validateRatchetTree` verified (`findOwnLeaf` matched the encodings byte for byte, and a
 * key_package leaf's LeafNodeTBS carries no group context: the same message).
 */
async function checkOwnKeyPackage(
  cs: CiphersuiteImpl,
  kp: KeyPackage,
  signaturePrivateKey: Uint8Array,
): Promise<void> {
  // signed with our own key: the same check, run as `verifyOwnWithLabel` (cheaper for EdDSA)
  const ok = await verifyOwnWithLabel(
    signaturePrivateKey,
    kp.leafNode.signatureKey,
    "KeyPackageTBS",
    encode(kp, writeKeyPackageTbs),
    kp.signature,
    cs.signature,
  ).catch(() => false);
  // §10.1: the key package signature of our own package verifies.
  if (!ok) fail(W, "§12.4.3.1 own_key_package", "the signatures of our own key package do not verify");
}

/** §12.4.3.1: every check of a Welcome, for our key package `keys`. */
export async function verifyWelcome(
  cs: CiphersuiteImpl,
  w: UnverifiedWelcome,
  keys: JoinKeys,
  options: JoinOptions,
): Promise<JoinableWelcome> {
  const welcome = w.welcome;
  const kp = keys.keyPackage;
  // §12.4.3.1: the Welcome's suite is our key package's.
  if (welcome.ciphersuite !== kp.ciphersuite)
    fail(
      W,
      "§12.4.3.1 ciphersuite",
      `the Welcome uses suite ${welcome.ciphersuite}, our key package ${kp.ciphersuite}`,
    );
  const ref =
    keys.keyPackageRef ??
    (await makeKeyPackageRef(keys.keyPackageBytes ?? encode(kp, writeKeyPackage), cs.hash));
  const secrets = await openGroupSecrets(cs, welcome, ref, keys.initPrivateKey);
  const psks = welcomePsks(cs, secrets.psks, options.psk);
  const psk = await pskSecret(cs, psks);
  // §8: KDF.Extract(joiner_secret, psk_secret), once for welcome_secret and the epoch secret.
  const member = await memberSecret(cs, secrets.joinerSecret, psk);
  try {
    return await verifyWelcomeWith(cs, welcome, keys, options, secrets, psk, member);
  } finally {
    member.fill(0);
  }
}

async function verifyWelcomeWith(
  cs: CiphersuiteImpl,
  welcome: Welcome,
  keys: JoinKeys,
  options: JoinOptions,
  secrets: GroupSecrets,
  psk: Uint8Array,
  member: Uint8Array,
): Promise<JoinableWelcome> {
  const kp = keys.keyPackage;
  const gi = await openGroupInfoWith(cs, welcome, await welcomeSecretFromMember(cs, member));
  const gc = gi.groupContext;
  // §12.4.3.1: the GroupInfo's suite is our key package's; the version is mls10.
  if (gc.ciphersuite !== kp.ciphersuite)
    fail(
      W,
      "§12.4.3.1 ciphersuite",
      `the GroupInfo uses suite ${gc.ciphersuite}, our key package ${kp.ciphersuite}`,
    );
  if (gc.version !== MLS10) fail(W, "§12.4.3.1 version", `protocol version ${gc.version}`);

  const { tree, bytes } = ratchetTreeOf(gi, options.ratchetTree);
  // §12.4.3.1: the GroupInfo signature verifies under the signer's leaf.
  await verifyGroupInfoSignature(cs, gi, tree, W, "§12.4.3.1");
  // §12.4.3.1: the integrity of the ratchet tree (our own leaf's signature checked by signing
  // again with our key: `verifyOwnWithLabel`, the same result for less).
  try {
    await validateRatchetTree(
      tree,
      gc.treeHash,
      {
        cs,
        ciphersuite: gc.ciphersuite,
        groupId: gc.groupId,
        extensions: gc.extensions,
        authenticationService: options.authenticationService,
        now: options.now,
        code: W,
      },
      { signatureKey: kp.leafNode.signatureKey, signaturePrivateKey: keys.signaturePrivateKey },
    );
  } catch (e) {
    recode(W, e);
  }
  const ownLeaf = findOwnLeaf(tree, kp.leafNode);
  await checkOwnKeyPackage(cs, kp, keys.signaturePrivateKey);

  // §12.4.3.1: the path secret's keys, checked against the tree.
  const privateKeys = new Map<number, Uint8Array>([[leafToNode(ownLeaf), keys.encryptionPrivateKey]]);
  if (secrets.pathSecret !== undefined) {
    const pathKeys = await joinerPathKeys(cs, tree, ownLeaf, gi.signer, secrets.pathSecret);
    for (const [x, k] of pathKeys) privateKeys.set(x, k);
  }
  // §12.4.3.1 / §8: the epoch's secrets, and the confirmation tag they imply.
  const epoch = await epochSecretsFromMember(cs, member, gc);
  secrets.joinerSecret.fill(0);
  psk.fill(0);
  // §12.4.3.1: the confirmation tag is the MAC of the confirmed transcript hash under the new confirmation key.
  await verifyConfirmationTag(
    cs,
    epoch.confirmationKey,
    gc.confirmedTranscriptHash,
    gi.confirmationTag,
    W,
  ).catch((e: unknown) => renamed(e, "§12.4.3.1 confirmation_tag"));
  if (bytes !== undefined) rememberTreeEncoding(tree, bytes);
  return {
    [joinable]: true,
    cs,
    groupInfo: gi,
    context: gc,
    tree,
    ownLeaf,
    privateKeys,
    signaturePrivateKey: keys.signaturePrivateKey,
    secrets: epoch,
  };
}

/** The state of a member that joined from a verified Welcome. */
export function joinGroup(j: JoinableWelcome): Promise<GroupState> {
  return enterEpoch(undefined, {
    cs: j.cs,
    context: j.context,
    tree: j.tree,
    ownLeaf: j.ownLeaf,
    privateKeys: j.privateKeys,
    signaturePrivateKey: j.signaturePrivateKey,
    secrets: j.secrets,
    confirmationTag: j.groupInfo.confirmationTag,
  });
}
