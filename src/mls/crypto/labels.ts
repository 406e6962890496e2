/**
 * The labeled operations of RFC 9420 on top of a cipher suite:
 *
 * - §5.1.2 `SignWithLabel` / `VerifyWithLabel` over `SignContent`
 * - §5.1.3 `EncryptWithLabel` / `DecryptWithLabel` with `EncryptContext`
 * - §5.2 `RefHash`, `MakeKeyPackageRef`, `MakeProposalRef`
 * - §8 `ExpandWithLabel`, `DeriveSecret`; §9 `DeriveTreeSecret`
 *
 * Every label is encoded once (`opaque label<V>` with the "MLS 1.0 " prefix where the RFC adds
 * it). Arguments follow the RFC's order, the primitive last. The `…Sync` twins run on a
 * provider's synchronous primitives (node:crypto; see `SyncExpandKdf` and friends in types.ts).
 * @module
 */
import { Writer } from "../codec/writer.js";
import { memo } from "../memo.js";
import { ownSignatureCheckOf } from "./types.js";
import type {
  Hash,
  Hpke,
  Kdf,
  PrivateKey,
  PublicKey,
  Signature,
  SyncDigestHash,
  SyncExpandKdf,
  SyncSignature,
} from "./types.js";

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Label encodings, each computed once
// ---------------------------------------------------------------------------

const prefixed = new Map<string, Uint8Array>();
const bare = new Map<string, Uint8Array>();

function encodeOpaque(text: string): Uint8Array {
  const w = new Writer(text.length + 4);
  w.vec(encoder.encode(text));
  return w.finish();
}

/** `opaque label<V> = "MLS 1.0 " + Label`, encoded (§5.1.2, §5.1.3, §8). */
export function mlsLabel(label: string): Uint8Array {
  return memo(prefixed, label, () => encodeOpaque(`MLS 1.0 ${label}`));
}

/** `opaque label<V>` as given (§5.2 RefHash labels already carry "MLS 1.0 "). */
function refLabel(label: string): Uint8Array {
  return memo(bare, label, encodeOpaque);
}

// ---------------------------------------------------------------------------
// §5.1.2 SignWithLabel / VerifyWithLabel
// ---------------------------------------------------------------------------

/**
 * §5.1.2 `struct { opaque label<V>; opaque content<V>; } SignContent;` with
 * label = "MLS 1.0 " + Label: the bytes actually signed.
 */
export function signContent(label: string, content: Uint8Array): Uint8Array {
  const l = mlsLabel(label);
  const w = new Writer(l.length + content.length + 4);
  w.raw(l).vec(content);
  return w.finish();
}

/** §5.1.2 SignWithLabel(SignatureKey, Label, Content) = Signature.Sign(SignatureKey, SignContent). */
export function signWithLabel(
  signKey: Uint8Array,
  label: string,
  content: Uint8Array,
  signature: Signature,
): Promise<Uint8Array> {
  return signature.sign(signKey, signContent(label, content));
}

/** §5.1.2 VerifyWithLabel: Signature.Verify(VerificationKey, SignContent, SignatureValue). */
export function verifyWithLabel(
  publicKey: Uint8Array,
  label: string,
  content: Uint8Array,
  signatureValue: Uint8Array,
  signature: Signature,
): Promise<boolean> {
  return signature.verify(publicKey, signContent(label, content), signatureValue);
}

/** `signWithLabel` on a synchronous signer. */
export function signWithLabelSync(
  signKey: Uint8Array,
  label: string,
  content: Uint8Array,
  signature: SyncSignature,
): Uint8Array {
  return signature.signSync(signKey, signContent(label, content));
}

/**
 * `verifyWithLabel` of a signature made by a key we hold (`signKey`, e.g. our own leaf or key
 * package met again when joining): the provider's cheaper `verifyOwnSync` when it has one.
 * Same result as `verifyWithLabel(publicKey, …)`.
 */
export async function verifyOwnWithLabel(
  signKey: Uint8Array,
  publicKey: Uint8Array,
  label: string,
  content: Uint8Array,
  signatureValue: Uint8Array,
  signature: Signature,
): Promise<boolean> {
  const own = ownSignatureCheckOf(signature);
  if (own === undefined) return verifyWithLabel(publicKey, label, content, signatureValue, signature);
  return own.verifyOwnSync(signKey, publicKey, signContent(label, content), signatureValue);
}

/** `verifyWithLabel` on a synchronous verifier. */
export function verifyWithLabelSync(
  publicKey: Uint8Array,
  label: string,
  content: Uint8Array,
  signatureValue: Uint8Array,
  signature: SyncSignature,
): boolean {
  return signature.verifySync(publicKey, signContent(label, content), signatureValue);
}

// ---------------------------------------------------------------------------
// §5.1.3 EncryptWithLabel / DecryptWithLabel
// ---------------------------------------------------------------------------

/** §5.1.3 `struct { opaque label<V>; opaque context<V>; } EncryptContext;`, label prefixed. */
export function encryptContext(label: string, context: Uint8Array): Uint8Array {
  const l = mlsLabel(label);
  const w = new Writer(l.length + context.length + 4);
  w.raw(l).vec(context);
  return w.finish();
}

/** §5.1.3 EncryptWithLabel = SealBase(PublicKey, EncryptContext, "", Plaintext). */
export function encryptWithLabel(
  publicKey: PublicKey,
  label: string,
  context: Uint8Array,
  plaintext: Uint8Array,
  hpke: Hpke,
): Promise<{ ct: Uint8Array; enc: Uint8Array }> {
  return hpke.seal(publicKey, plaintext, encryptContext(label, context), EMPTY);
}

/** §5.1.3 DecryptWithLabel = OpenBase(KEMOutput, PrivateKey, EncryptContext, "", Ciphertext). */
export function decryptWithLabel(
  privateKey: PrivateKey,
  label: string,
  context: Uint8Array,
  kemOutput: Uint8Array,
  ciphertext: Uint8Array,
  hpke: Hpke,
): Promise<Uint8Array> {
  return hpke.open(privateKey, kemOutput, ciphertext, encryptContext(label, context), EMPTY);
}

// ---------------------------------------------------------------------------
// §8 ExpandWithLabel, DeriveSecret; §9 DeriveTreeSecret
// ---------------------------------------------------------------------------

/**
 * §8 `struct { uint16 length; opaque label<V>; opaque context<V>; } KDFLabel;`, label
 * prefixed with "MLS 1.0 ".
 */
export function kdfLabel(label: string, context: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 0xffff)
    throw new RangeError(`ExpandWithLabel length out of range: ${length}`);
  const l = mlsLabel(label);
  const w = new Writer(2 + l.length + context.length + 4);
  w.u16(length).raw(l).vec(context);
  return w.finish();
}

/** §8 ExpandWithLabel(Secret, Label, Context, Length) = KDF.Expand(Secret, KDFLabel, Length). */
export function expandWithLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
  kdf: Kdf,
): Promise<Uint8Array> {
  return kdf.expand(secret, kdfLabel(label, context, length), length);
}

/** §8 DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", KDF.Nh). */
export function deriveSecret(secret: Uint8Array, label: string, kdf: Kdf): Promise<Uint8Array> {
  return expandWithLabel(secret, label, EMPTY, kdf.size, kdf);
}

/** §9 generation as the `uint32` context of DeriveTreeSecret. */
function generationContext(generation: number): Uint8Array {
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xffffffff)
    throw new RangeError(`generation out of range: ${generation}`);
  return new Writer(4).u32(generation).finish();
}

/** §9 DeriveTreeSecret(Secret, Label, Generation, Length) = ExpandWithLabel(Secret, Label, uint32 Generation, Length). */
export function deriveTreeSecret(
  secret: Uint8Array,
  label: string,
  generation: number,
  length: number,
  kdf: Kdf,
): Promise<Uint8Array> {
  return expandWithLabel(secret, label, generationContext(generation), length, kdf);
}

/** `expandWithLabel` on a synchronous KDF. */
export function expandWithLabelSync(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
  kdf: SyncExpandKdf,
): Uint8Array {
  return kdf.expandSync(secret, kdfLabel(label, context, length), length);
}

/** `deriveSecret` on a synchronous KDF. */
export function deriveSecretSync(secret: Uint8Array, label: string, kdf: SyncExpandKdf): Uint8Array {
  return expandWithLabelSync(secret, label, EMPTY, kdf.size, kdf);
}

/** `deriveTreeSecret` on a synchronous KDF. */
export function deriveTreeSecretSync(
  secret: Uint8Array,
  label: string,
  generation: number,
  length: number,
  kdf: SyncExpandKdf,
): Uint8Array {
  return expandWithLabelSync(secret, label, generationContext(generation), length, kdf);
}

// ---------------------------------------------------------------------------
// §5.2 RefHash, KeyPackageRef, ProposalRef
// ---------------------------------------------------------------------------

/** §5.2 `struct { opaque label<V>; opaque value<V>; } RefHashInput;` (label used as given). */
export function refHashInput(label: string, value: Uint8Array): Uint8Array {
  const l = refLabel(label);
  const w = new Writer(l.length + value.length + 4);
  w.raw(l).vec(value);
  return w.finish();
}

/** §5.2 RefHash(label, value) = Hash(RefHashInput). */
export function refHash(label: string, value: Uint8Array, hash: Hash): Promise<Uint8Array> {
  return hash.digest(refHashInput(label, value));
}

/** `refHash` on a synchronous hash. */
export function refHashSync(label: string, value: Uint8Array, hash: SyncDigestHash): Uint8Array {
  return hash.digestSync(refHashInput(label, value));
}

/** §5.2 label of KeyPackageRef. */
export const KEYPACKAGE_REF_LABEL = "MLS 1.0 KeyPackage Reference";
/** §5.2 label of ProposalRef. */
export const PROPOSAL_REF_LABEL = "MLS 1.0 Proposal Reference";

/** §5.2 MakeKeyPackageRef(value) = RefHash("MLS 1.0 KeyPackage Reference", value), value = the encoded KeyPackage. */
export function makeKeyPackageRef(encodedKeyPackage: Uint8Array, hash: Hash): Promise<Uint8Array> {
  return refHash(KEYPACKAGE_REF_LABEL, encodedKeyPackage, hash);
}

/** `makeKeyPackageRef` on a synchronous hash. */
export function makeKeyPackageRefSync(encodedKeyPackage: Uint8Array, hash: SyncDigestHash): Uint8Array {
  return refHashSync(KEYPACKAGE_REF_LABEL, encodedKeyPackage, hash);
}

/** §5.2 MakeProposalRef(value) = RefHash("MLS 1.0 Proposal Reference", value), value = the encoded AuthenticatedContent. */
export function makeProposalRef(encodedAuthenticatedContent: Uint8Array, hash: Hash): Promise<Uint8Array> {
  return refHash(PROPOSAL_REF_LABEL, encodedAuthenticatedContent, hash);
}

/** `makeProposalRef` on a synchronous hash. */
export function makeProposalRefSync(
  encodedAuthenticatedContent: Uint8Array,
  hash: SyncDigestHash,
): Uint8Array {
  return refHashSync(PROPOSAL_REF_LABEL, encodedAuthenticatedContent, hash);
}
