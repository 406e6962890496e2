/**
 * The RFC 9420 key schedule (§8) and secret tree (§9) as ts-mls 1.6.4 computes them, with the
 * same inputs and outputs (same values, same object shapes), but without its per-call
 * overhead: ts-mls builds every `KDFLabel` with a fresh TextEncoder and a chain of encoder
 * closures, which costs several times the HMAC itself. Labels are encoded once here.
 * test/mls/key-schedule-equivalence.test.ts checks every function against ts-mls's.
 */
import type { GroupContext, Kdf } from "ts-mls";
import type { EpochSecrets, KeySchedule } from "ts-mls/keySchedule.js";
import type { SecretTree, SecretTreeNode } from "ts-mls/secretTree.js";
import { isLeaf, left, nodeWidth, right, root, type NodeIndex } from "ts-mls/treemath.js";
import type { SyncExpandKdf } from "./crypto/suites.js";
import { groupContextBytes } from "./fastEncode.js";
import { memo } from "./memo.js";
import { encodeVarint } from "./tls.js";

const EMPTY = new Uint8Array(0);
const labels = new Map<string, Uint8Array>();

/** `opaque label<V> = "MLS 1.0 " + label`, encoded (RFC 9420 §8 KDFLabel). */
function labelBytes(label: string): Uint8Array {
  return memo(labels, label, () => {
    const text = new TextEncoder().encode(`MLS 1.0 ${label}`);
    if (text.length >= 64) throw new RangeError("label too long");
    const b = new Uint8Array(1 + text.length);
    b[0] = text.length;
    b.set(text, 1);
    return b;
  });
}

/** RFC 9420 §8 KDFLabel { uint16 length; opaque label<V>; opaque context<V>; }, encoded. */
function kdfLabel(label: string, context: Uint8Array, length: number): Uint8Array {
  const l = labelBytes(label);
  const c = encodeVarint(context.length);
  const info = new Uint8Array(2 + l.length + c.length + context.length);
  info[0] = (length >> 8) & 0xff;
  info[1] = length & 0xff;
  info.set(l, 2);
  info.set(c, 2 + l.length);
  info.set(context, 2 + l.length + c.length);
  return info;
}

const secretLabels = new Map<string, Uint8Array>();

/** KDFLabel of DeriveSecret(_, label) for hash size `nh` (empty context), encoded once. */
function secretLabel(label: string, nh: number): Uint8Array {
  return memo(secretLabels, `${nh}:${label}`, () => kdfLabel(label, EMPTY, nh));
}

/** ExpandWithLabel(Secret, Label, Context, Length) = KDF.Expand(Secret, KDFLabel, Length). */
export function expandWithLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
  kdf: Kdf,
): Promise<Uint8Array> {
  return kdf.expand(secret, kdfLabel(label, context, length), length);
}

/** The provider's synchronous HKDF-Expand, when it has one (see `SyncExpandKdf`). */
function syncExpand(kdf: Kdf): SyncExpandKdf["expandSync"] | undefined {
  const k = kdf as Partial<SyncExpandKdf>;
  return typeof k.expandSync === "function" ? k.expandSync.bind(kdf) : undefined;
}

/** DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", KDF.Nh). */
export function deriveSecret(secret: Uint8Array, label: string, kdf: Kdf): Promise<Uint8Array> {
  return expandWithLabel(secret, label, EMPTY, kdf.size, kdf);
}

/** The secrets derived from epoch_secret, in ts-mls's `KeySchedule` order (§8, table 4). */
const EPOCH_LABELS = [
  "init",
  "sender data",
  "exporter",
  "external",
  "confirm",
  "membership",
  "resumption",
  "authentication",
] as const;

/** ts-mls `initializeKeySchedule`: the secrets derived from epoch_secret (§8, table 4). */
export async function initializeKeySchedule(epochSecret: Uint8Array, kdf: Kdf): Promise<KeySchedule> {
  const expand = syncExpand(kdf);
  const [
    initSecret,
    senderDataSecret,
    exporterSecret,
    externalSecret,
    confirmationKey,
    membershipKey,
    resumptionPsk,
    epochAuthenticator,
  ] =
    expand === undefined
      ? await Promise.all(EPOCH_LABELS.map((label) => deriveSecret(epochSecret, label, kdf)))
      : EPOCH_LABELS.map((label) => expand(epochSecret, secretLabel(label, kdf.size), kdf.size));
  return {
    initSecret: initSecret as Uint8Array,
    senderDataSecret: senderDataSecret as Uint8Array,
    exporterSecret: exporterSecret as Uint8Array,
    externalSecret: externalSecret as Uint8Array,
    confirmationKey: confirmationKey as Uint8Array,
    membershipKey: membershipKey as Uint8Array,
    resumptionPsk: resumptionPsk as Uint8Array,
    epochAuthenticator: epochAuthenticator as Uint8Array,
  };
}

/**
 * ts-mls `deriveKeySchedule`: epoch_secret = ExpandWithLabel(Extract(joiner_secret, psk_secret),
 * "epoch", GroupContext, Nh); then the key schedule and encryption_secret.
 */
export async function deriveKeySchedule(
  joinerSecret: Uint8Array,
  pskSecret: Uint8Array,
  groupContext: GroupContext,
  kdf: Kdf,
): Promise<[KeySchedule, Uint8Array]> {
  const extracted = await kdf.extract(joinerSecret, pskSecret);
  return fromExtracted(extracted, groupContext, kdf);
}

async function fromExtracted(
  extracted: Uint8Array,
  groupContext: GroupContext,
  kdf: Kdf,
): Promise<[KeySchedule, Uint8Array]> {
  const epochSecret = await expandWithLabel(
    extracted,
    "epoch",
    groupContextBytes(groupContext),
    kdf.size,
    kdf,
  );
  const [encryptionSecret, keySchedule] = await Promise.all([
    deriveSecret(epochSecret, "encryption", kdf),
    initializeKeySchedule(epochSecret, kdf),
  ]);
  epochSecret.fill(0);
  return [keySchedule, encryptionSecret];
}

/**
 * ts-mls `initializeEpoch`: joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret),
 * "joiner", GroupContext, Nh), welcome_secret = DeriveSecret(Extract(joiner_secret, psk_secret),
 * "welcome"), and the epoch's key schedule.
 */
export async function initializeEpoch(
  initSecret: Uint8Array,
  commitSecret: Uint8Array,
  groupContext: GroupContext,
  pskSecret: Uint8Array,
  kdf: Kdf,
): Promise<EpochSecrets> {
  const context = groupContextBytes(groupContext);
  const joinerSecret = await expandWithLabel(
    await kdf.extract(initSecret, commitSecret),
    "joiner",
    context,
    kdf.size,
    kdf,
  );
  const extracted = await kdf.extract(joinerSecret, pskSecret);
  const welcomeSecret = await deriveSecret(extracted, "welcome", kdf);
  const epochSecret = await expandWithLabel(extracted, "epoch", context, kdf.size, kdf);
  const [encryptionSecret, keySchedule] = await Promise.all([
    deriveSecret(epochSecret, "encryption", kdf),
    initializeKeySchedule(epochSecret, kdf),
  ]);
  epochSecret.fill(0);
  extracted.fill(0);
  return { welcomeSecret, joinerSecret, encryptionSecret, keySchedule };
}

const LEFT = new TextEncoder().encode("left");
const RIGHT = new TextEncoder().encode("right");

/** ts-mls `createSecretTree` (§9): tree secrets from the root down, then each node's two ratchets. */
export async function createSecretTree(
  leafWidth: number,
  encryptionSecret: Uint8Array,
  kdf: Kdf,
): Promise<SecretTree> {
  const expand = syncExpand(kdf);
  if (expand !== undefined) return createSecretTreeSync(leafWidth, encryptionSecret, kdf.size, expand);
  const secrets = new Array<Uint8Array>(nodeWidth(leafWidth));
  const rootIndex = root(leafWidth);
  secrets[rootIndex] = encryptionSecret;
  const derive = async (node: NodeIndex): Promise<void> => {
    if (isLeaf(node)) return;
    const l = left(node);
    const r = right(node);
    const parent = secrets[node] as Uint8Array;
    const [ls, rs] = await Promise.all([
      expandWithLabel(parent, "tree", LEFT, kdf.size, kdf),
      expandWithLabel(parent, "tree", RIGHT, kdf.size, kdf),
    ]);
    secrets[l] = ls;
    secrets[r] = rs;
    await Promise.all([derive(l), derive(r)]);
  };
  await derive(rootIndex);
  return Promise.all(
    secrets.map(async (secret): Promise<SecretTreeNode> => {
      const [application, handshake] = await Promise.all([
        deriveSecret(secret, "application", kdf),
        deriveSecret(secret, "handshake", kdf),
      ]);
      return {
        handshake: { secret: handshake, generation: 0, unusedGenerations: {} },
        application: { secret: application, generation: 0, unusedGenerations: {} },
      };
    }),
  );
}

/**
 * `createSecretTree` with a synchronous Expand and each KDFLabel encoded once: the same
 * values in the same shape. A group of n members costs about 6n HMACs here (ts-mls keeps
 * both ratchets of every node), so the per-call overhead matters for large groups.
 */
function createSecretTreeSync(
  leafWidth: number,
  encryptionSecret: Uint8Array,
  nh: number,
  expand: SyncExpandKdf["expandSync"],
): SecretTree {
  const treeLeft = kdfLabel("tree", LEFT, nh);
  const treeRight = kdfLabel("tree", RIGHT, nh);
  const application = secretLabel("application", nh);
  const handshake = secretLabel("handshake", nh);
  const secrets = new Array<Uint8Array>(nodeWidth(leafWidth));
  const rootIndex = root(leafWidth);
  secrets[rootIndex] = encryptionSecret;
  const derive = (node: NodeIndex): void => {
    if (isLeaf(node)) return;
    const parent = secrets[node] as Uint8Array;
    const l = left(node);
    const r = right(node);
    secrets[l] = expand(parent, treeLeft, nh);
    secrets[r] = expand(parent, treeRight, nh);
    derive(l);
    derive(r);
  };
  derive(rootIndex);
  const tree: SecretTree = new Array<SecretTreeNode>(secrets.length);
  for (let i = 0; i < secrets.length; i++) {
    const secret = secrets[i] as Uint8Array;
    tree[i] = {
      handshake: { secret: expand(secret, handshake, nh), generation: 0, unusedGenerations: {} },
      application: { secret: expand(secret, application, nh), generation: 0, unusedGenerations: {} },
    };
  }
  return tree;
}
