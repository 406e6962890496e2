/**
 * RFC 9420 §8 key schedule: from the previous epoch's init_secret, the commit_secret and the
 * psk_secret, bound to the new GroupContext, to the secrets of the new epoch (table 4).
 *
 *                  init_secret_[n-1]
 *                         |
 *   commit_secret --> KDF.Extract
 *                         |
 *                 ExpandWithLabel(., "joiner", GroupContext_[n], KDF.Nh) = joiner_secret
 *                         |
 *     psk_secret --> KDF.Extract = member
 *                         |--> DeriveSecret(., "welcome") = welcome_secret
 *                 ExpandWithLabel(., "epoch", GroupContext_[n], KDF.Nh) = epoch_secret
 *                         |--> DeriveSecret(., <label>) = <secret>
 *
 * The epoch's secrets are derived together (one synchronous HMAC each on node:crypto) so that
 * epoch_secret can be zeroed at once: keeping it to derive later would let a state compromise
 * recompute encryption_secret, against the §9.2 deletion schedule. What a member does not
 * always need is derived on demand from what it keeps: welcome_secret (`welcomeSecret`, from
 * joiner_secret and psk_secret, only for a Welcome), the external key pair
 * (`externalKeyPair`), exporter outputs (`mlsExporter`) and the secret tree (secretTree.ts).
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { encode } from "../codec/index.js";
import { writeGroupContext } from "./codec.js";
import { labeledKdf, type Maybe } from "./kdf.js";
import type { GroupContext } from "./types.js";

/** The secrets of one epoch (§8 table 4), plus the next epoch's init_secret. */
export interface EpochSecrets {
  readonly senderDataSecret: Uint8Array;
  readonly encryptionSecret: Uint8Array;
  readonly exporterSecret: Uint8Array;
  readonly externalSecret: Uint8Array;
  readonly confirmationKey: Uint8Array;
  readonly membershipKey: Uint8Array;
  readonly resumptionPsk: Uint8Array;
  readonly epochAuthenticator: Uint8Array;
  /** init_secret_[n], the input of the next epoch's schedule. */
  readonly initSecret: Uint8Array;
}

/** §8 labels of the secrets derived from epoch_secret, in `EpochSecrets` order. */
const EPOCH_LABELS = [
  ["senderDataSecret", "sender data"],
  ["encryptionSecret", "encryption"],
  ["exporterSecret", "exporter"],
  ["externalSecret", "external"],
  ["confirmationKey", "confirm"],
  ["membershipKey", "membership"],
  ["resumptionPsk", "resumption"],
  ["epochAuthenticator", "authentication"],
  ["initSecret", "init"],
] as const satisfies ReadonlyArray<readonly [keyof EpochSecrets, string]>;

const contexts = new WeakMap<GroupContext, Uint8Array>();

/** The values of `items`: as they are when none is a promise (a synchronous KDF), else awaited. */
function all(items: readonly Maybe<Uint8Array>[]): Maybe<Uint8Array[]> {
  for (const v of items) if (v instanceof Promise) return Promise.all(items);
  return items as Uint8Array[];
}

/** The §8.1 GroupContext encoding (once per immutable GroupContext object). */
export function groupContextBytes(gc: GroupContext): Uint8Array {
  let b = contexts.get(gc);
  if (b === undefined) {
    b = encode(gc, writeGroupContext);
    contexts.set(gc, b);
  }
  return b;
}

/** The all-zero psk_secret / commit_secret of KDF.Nh bytes (§8: no PSK, no path). */
export function zeroSecret(cs: CiphersuiteImpl): Uint8Array {
  return new Uint8Array(cs.kdf.size);
}

/** joiner_secret = ExpandWithLabel(KDF.Extract(init_secret, commit_secret), "joiner", GroupContext_[n], KDF.Nh). */
export async function joinerSecret(
  cs: CiphersuiteImpl,
  initSecret: Uint8Array,
  commitSecret: Uint8Array,
  groupContext: GroupContext,
): Promise<Uint8Array> {
  const k = labeledKdf(cs.kdf);
  const prk = await k.extract(initSecret, commitSecret);
  const out = await k.expandWithLabel(prk, "joiner", groupContextBytes(groupContext), k.nh);
  prk.fill(0);
  return out;
}

/** The "member" secret: KDF.Extract(joiner_secret, psk_secret). */
export function memberSecret(
  cs: CiphersuiteImpl,
  joiner: Uint8Array,
  pskSecret: Uint8Array,
): Promise<Uint8Array> {
  if (pskSecret.length !== cs.kdf.size) throw new TypeError(`psk_secret must be ${cs.kdf.size} bytes`);
  return labeledKdf(cs.kdf).extract(joiner, pskSecret);
}

/** welcome_secret = DeriveSecret(member, "welcome"), from the "member" secret (`memberSecret`). */
export async function welcomeSecretFromMember(cs: CiphersuiteImpl, member: Uint8Array): Promise<Uint8Array> {
  return labeledKdf(cs.kdf).deriveSecret(member, "welcome");
}

/** welcome_secret = DeriveSecret(KDF.Extract(joiner_secret, psk_secret), "welcome"). */
export async function welcomeSecret(
  cs: CiphersuiteImpl,
  joiner: Uint8Array,
  pskSecret: Uint8Array,
): Promise<Uint8Array> {
  const member = await memberSecret(cs, joiner, pskSecret);
  const out = await welcomeSecretFromMember(cs, member);
  member.fill(0);
  return out;
}

/**
 * The epoch's secrets from joiner_secret (a joiner, from its GroupSecrets; a member, after
 * `joinerSecret`): epoch_secret = ExpandWithLabel(KDF.Extract(joiner_secret, psk_secret),
 * "epoch", GroupContext_[n], KDF.Nh), then DeriveSecret(epoch_secret, label) for each secret.
 */
export async function epochSecretsFromJoiner(
  cs: CiphersuiteImpl,
  joiner: Uint8Array,
  pskSecret: Uint8Array,
  groupContext: GroupContext,
): Promise<EpochSecrets> {
  return epochSecretsFromMember(cs, await memberSecret(cs, joiner, pskSecret), groupContext);
}

/**
 * The epoch's secrets from the "member" secret (`memberSecret`, which a Welcome's sender and
 * joiner also derive welcome_secret from: computed once), which is zeroed.
 */
export async function epochSecretsFromMember(
  cs: CiphersuiteImpl,
  member: Uint8Array,
  groupContext: GroupContext,
): Promise<EpochSecrets> {
  const k = labeledKdf(cs.kdf);
  const epochSecret = await k.expandWithLabel(member, "epoch", groupContextBytes(groupContext), k.nh);
  member.fill(0);
  return epochSecretsFromEpochSecret(cs, epochSecret);
}

/**
 * DeriveSecret(epoch_secret, <label>) for each secret of the epoch (§8 table 4); `epochSecret`
 * is zeroed. Directly from a fresh random epoch_secret for a new group's epoch 0 (§11).
 */
export async function epochSecretsFromEpochSecret(
  cs: CiphersuiteImpl,
  epochSecret: Uint8Array,
): Promise<EpochSecrets> {
  const k = labeledKdf(cs.kdf);
  const values = await all(EPOCH_LABELS.map(([, label]) => k.deriveSecret(epochSecret, label)));
  epochSecret.fill(0);
  const out: Partial<Record<keyof EpochSecrets, Uint8Array>> = {};
  EPOCH_LABELS.forEach(([name], i) => (out[name] = values[i] as Uint8Array));
  return out as EpochSecrets;
}

/** Inputs of a member's next epoch (§8). */
export interface EpochInput {
  /** init_secret_[n-1]: the previous epoch's, a fresh random one for a new group, or an external init's. */
  readonly initSecret: Uint8Array;
  /** commit_secret: the UpdatePath's, or KDF.Nh zero bytes. */
  readonly commitSecret: Uint8Array;
  /** psk_secret (psk.ts), or KDF.Nh zero bytes. */
  readonly pskSecret: Uint8Array;
  /** GroupContext_[n] of the new epoch. */
  readonly groupContext: GroupContext;
  /** Also derive welcome_secret (a committer that adds members). */
  readonly welcome?: boolean;
}

/**
 * A member's new epoch: joiner_secret (for a Welcome), the epoch's secrets, and welcome_secret
 * when asked for (from the same "member" secret: one KDF.Extract less than `welcomeSecret`).
 */
export async function nextEpochSecrets(
  cs: CiphersuiteImpl,
  input: EpochInput,
): Promise<{
  readonly joinerSecret: Uint8Array;
  readonly secrets: EpochSecrets;
  readonly welcomeSecret: Uint8Array | undefined;
}> {
  const joiner = await joinerSecret(cs, input.initSecret, input.commitSecret, input.groupContext);
  const member = await memberSecret(cs, joiner, input.pskSecret);
  const welcome = input.welcome === true ? await welcomeSecretFromMember(cs, member) : undefined;
  const secrets = await epochSecretsFromMember(cs, member, input.groupContext);
  return { joinerSecret: joiner, secrets, welcomeSecret: welcome };
}

/** §12.4.3.1 welcome_key and welcome_nonce: ExpandWithLabel(welcome_secret, "key"/"nonce", "", AEAD.Nk/Nn). */
export async function welcomeKeyNonce(
  cs: CiphersuiteImpl,
  welcome: Uint8Array,
): Promise<{ readonly key: Uint8Array; readonly nonce: Uint8Array }> {
  const k = labeledKdf(cs.kdf);
  const empty = new Uint8Array(0);
  const [key, nonce] = (await all([
    k.expandWithLabel(welcome, "key", empty, cs.hpke.keyLength),
    k.expandWithLabel(welcome, "nonce", empty, cs.hpke.nonceLength),
  ])) as [Uint8Array, Uint8Array];
  return { key, nonce };
}

/**
 * §8.5 MLS-Exporter(Label, Context, Length) =
 *   ExpandWithLabel(DeriveSecret(exporter_secret, Label), "exported", Hash(Context), Length).
 */
export async function mlsExporter(
  cs: CiphersuiteImpl,
  exporterSecret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const k = labeledKdf(cs.kdf);
  const [derived, hash] = await Promise.all([k.deriveSecret(exporterSecret, label), cs.hash.digest(context)]);
  const out = await k.expandWithLabel(derived, "exported", hash, length);
  derived.fill(0);
  return out;
}

/** §12.4.3.2 external_pub: the public key of KEM.DeriveKeyPair(external_secret) (no private key exported). */
export async function externalPublicKey(
  cs: CiphersuiteImpl,
  externalSecret: Uint8Array,
): Promise<Uint8Array> {
  const kp = await cs.hpke.deriveKeyPair(externalSecret);
  return cs.hpke.exportPublicKey(kp.publicKey);
}

/** §8 external key pair: KEM.DeriveKeyPair(external_secret); its public key is the external_pub extension. */
export async function externalKeyPair(
  cs: CiphersuiteImpl,
  externalSecret: Uint8Array,
): Promise<{ readonly publicKey: Uint8Array; readonly privateKey: Uint8Array }> {
  const kp = await cs.hpke.deriveKeyPair(externalSecret);
  const [publicKey, privateKey] = await Promise.all([
    cs.hpke.exportPublicKey(kp.publicKey),
    cs.hpke.exportPrivateKey(kp.privateKey),
  ]);
  return { publicKey, privateKey };
}

/** §8.3 HPKE exporter context of an external init. */
const EXTERNAL_INIT_LABEL = new TextEncoder().encode("MLS 1.0 external init secret");
const EMPTY_INFO = new Uint8Array(0);

/**
 * §8.3 external init, joiner side: kem_output, context = SetupBaseS(external_pub, "");
 * init_secret = context.export("MLS 1.0 external init secret", KDF.Nh). The kem_output goes in
 * the ExternalInit proposal; init_secret replaces the previous epoch's in `nextEpochSecrets`.
 */
export async function externalInitExport(
  cs: CiphersuiteImpl,
  externalPub: Uint8Array,
): Promise<{ readonly kemOutput: Uint8Array; readonly initSecret: Uint8Array }> {
  const pub = await cs.hpke.importPublicKey(externalPub);
  const { enc, secret } = await cs.hpke.exportSecret(pub, EXTERNAL_INIT_LABEL, cs.kdf.size, EMPTY_INFO);
  return { kemOutput: enc, initSecret: secret };
}

/**
 * §8.3 external init, member side: context = SetupBaseR(kem_output, external_priv, "");
 * init_secret = context.export("MLS 1.0 external init secret", KDF.Nh), where external_priv is
 * the private key of the previous epoch's `externalKeyPair`.
 */
export async function externalInitImport(
  cs: CiphersuiteImpl,
  externalPriv: Uint8Array,
  kemOutput: Uint8Array,
): Promise<Uint8Array> {
  const priv = await cs.hpke.importPrivateKey(externalPriv);
  try {
    return await cs.hpke.importSecret(priv, EXTERNAL_INIT_LABEL, kemOutput, cs.kdf.size, EMPTY_INFO);
  } catch (e) {
    // §8.3: kem_output must be a valid KEM encapsulation for the external key pair.
    throw new MlsRuleError(
      ErrorCode.InvalidCommit,
      "§8.3 kem_output",
      "the ExternalInit kem_output is not valid",
      {},
      { cause: e },
    );
  }
}
