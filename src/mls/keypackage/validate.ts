/**
 * RFC 9420 §10.1 key package validation, with the §7.3 leaf node checks it includes and the
 * §5.3.1 credential check through the authentication service. Parse (parse.ts) → verify (here)
 * → use: only a `VerifiedKeyPackage` should reach the code that adds a member.
 *
 * Each check names the rule it enforces; the first rule broken is thrown as an
 * `InvalidKeypackageError` with that rule.
 */
import { InvalidKeypackageError, type KeypackageRule } from "../../errors.js";
import { Writer } from "../codec/writer.js";
import { defaultAuthenticationService, type AuthenticationService } from "../credential/authentication.js";
import { bytesEqual } from "../crypto/bytes.js";
import { mlsLabel } from "../crypto/labels.js";
import { ciphersuiteImpl } from "../crypto/select.js";
import { syncSignatureOf, type CiphersuiteImpl } from "../crypto/types.js";
import { writeKeyPackageTbs, writeLeafNodeTbs } from "./codec.js";
import { LeafNodeSources, MLS10, type Extension, type KeyPackage } from "./types.js";

declare const verified: unique symbol;

/** A key package that passed `verifyKeyPackage` (a type-level mark: parse → verify → use). */
export type VerifiedKeyPackage = KeyPackage & { readonly [verified]: true };

/** RFC 9420 §17.3: extension types 1..5 are "default" and need not be listed in capabilities. */
const DEFAULT_EXTENSION_TYPES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5]);

/** RFC 9420 §17.1 suites. */
const RFC9420_CIPHERSUITES: readonly number[] = [1, 2, 3, 4, 5, 6, 7];

export interface VerifyKeyPackageOptions {
  /** The time the lifetime is checked against (§7.3). */
  readonly now: Date;
  /** §5.3.1: who judges the credential (default: `defaultAuthenticationService`). */
  readonly authenticationService?: AuthenticationService;
  /** Suites accepted (default: RFC 9420's 1..7). */
  readonly supportedCiphersuites?: readonly number[];
  /** §10.1: the group's version and suite, when the package is for a given group. */
  readonly group?: { readonly version: number; readonly ciphersuite: number };
  /** Policy: the longest `not_after − not_before` accepted, in ms (default: no limit). */
  readonly maxLifetimeSpanMs?: number;
  /** The suite implementation (default: the active provider's, `ciphersuiteImpl`). */
  readonly suiteImpl?: (ciphersuite: number) => Promise<CiphersuiteImpl>;
}

function fail(rule: KeypackageRule, message: string): never {
  throw new InvalidKeypackageError(rule, message);
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, "0")}`;

/** §5.1.2 SignContent of `label` around the TBS that `write` produces. */
function signContentOf(label: string, write: (w: Writer) => void): Uint8Array {
  const l = mlsLabel(label);
  const w = new Writer(512);
  w.raw(l).vecWith(write);
  return w.finish();
}

/**
 * The two messages a key package's signatures cover (§5.1.2 SignContent): label
 * "LeafNodeTBS" around the §7.2 LeafNodeTBS (key_package source: no group context), and
 * "KeyPackageTBS" around the §10 KeyPackageTBS.
 */
export function keyPackageSignContents(kp: KeyPackage): {
  readonly leaf: Uint8Array;
  readonly keyPackage: Uint8Array;
} {
  return {
    leaf: signContentOf("LeafNodeTBS", (w) => writeLeafNodeTbs(w, kp.leafNode)),
    keyPackage: signContentOf("KeyPackageTBS", (w) => writeKeyPackageTbs(w, kp)),
  };
}

async function verifySignature(
  cs: CiphersuiteImpl,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const sync = syncSignatureOf(cs.signature);
  try {
    return sync !== undefined
      ? sync.verifySync(publicKey, message, signature)
      : await cs.signature.verify(publicKey, message, signature);
  } catch {
    return false; // a malformed key is a signature that does not verify
  }
}

/** §7.2: extensions (of the leaf or the package) that are not default must be in capabilities. */
function checkExtensionsListed(exts: readonly Extension[], listed: readonly number[], where: string): void {
  for (const e of exts) {
    // §7.2 / §10.1: a non-default extension type the leaf does not list in capabilities.extensions.
    if (!DEFAULT_EXTENSION_TYPES.has(e.extensionType) && !listed.includes(e.extensionType))
      fail(
        "extensions_not_in_capabilities",
        `${where} extension ${hex4(e.extensionType)} not in capabilities`,
      );
  }
}

/**
 * Verify a parsed key package (RFC 9420 §10.1). Throws `InvalidKeypackageError` naming the
 * first rule broken; resolves to the same object, marked verified.
 */
export async function verifyKeyPackage(
  kp: KeyPackage,
  options: VerifyKeyPackageOptions,
): Promise<VerifiedKeyPackage> {
  const leaf = kp.leafNode;

  // §10.1: the protocol version is one we speak (and the group's, when given).
  if (kp.version !== MLS10) fail("version", `protocol version ${kp.version} is not mls10`);
  if (options.group !== undefined && kp.version !== options.group.version)
    fail("version", `protocol version ${kp.version} is not the group's ${options.group.version}`);

  // §10.1: the cipher suite is supported (and the group's, when given).
  const supported = options.supportedCiphersuites ?? RFC9420_CIPHERSUITES;
  if (!supported.includes(kp.ciphersuite))
    fail("ciphersuite", `cipher suite ${kp.ciphersuite} is not supported`);
  if (options.group !== undefined && kp.ciphersuite !== options.group.ciphersuite)
    fail("ciphersuite", `cipher suite ${kp.ciphersuite} is not the group's ${options.group.ciphersuite}`);

  // §7.3 (via §10.1): in a KeyPackage, leaf_node_source is key_package (which carries the lifetime).
  if (leaf.leafNodeSource !== LeafNodeSources.key_package || leaf.lifetime === undefined)
    fail("leaf_node_source", `leaf node source ${leaf.leafNodeSource} is not key_package`);
  const lifetime = leaf.lifetime;

  const cs = await (options.suiteImpl ?? ciphersuiteImpl)(kp.ciphersuite);
  const signed = keyPackageSignContents(kp);

  // Both signatures are checked concurrently (a WebCrypto engine overlaps them); failures are
  // reported in this order.
  const [leafOk, packageOk] = await Promise.all([
    verifySignature(cs, leaf.signatureKey, signed.leaf, leaf.signature),
    verifySignature(cs, leaf.signatureKey, signed.keyPackage, kp.signature),
  ]);
  // §7.3 (via §10.1): the LeafNode signature verifies under leaf_node.signature_key.
  if (!leafOk) fail("leaf_signature", "the leaf node signature does not verify");
  // §10.1: the KeyPackage signature verifies under leaf_node.signature_key.
  if (!packageOk) fail("keypackage_signature", "the key package signature does not verify");

  // §10.1: leaf_node.encryption_key differs from init_key.
  if (bytesEqual(kp.initKey, leaf.encryptionKey))
    fail("init_key_equals_encryption_key", "init_key equals the leaf encryption_key");

  // §5.3.1 (via §7.3): the authentication service accepts the credential for this signature key.
  const as = options.authenticationService ?? defaultAuthenticationService;
  const verdict = await as.validate({
    credential: leaf.credential,
    signatureKey: leaf.signatureKey,
    ciphersuite: kp.ciphersuite,
    context: "keypackage",
  });
  if (!verdict.ok)
    fail("credential_rejected", `the authentication service refused the credential: ${verdict.reason}`);

  const caps = leaf.capabilities;
  // §7.2: capabilities list the version the package is for.
  if (!caps.versions.includes(kp.version))
    fail("version_not_in_capabilities", "mls10 missing from capabilities");
  // §7.2: capabilities list the package's own cipher suite.
  if (!caps.ciphersuites.includes(kp.ciphersuite))
    fail("ciphersuite_not_in_capabilities", `own suite ${kp.ciphersuite} missing from capabilities`);
  // §7.2: the credential type of the leaf is listed in capabilities.credentials.
  if (!caps.credentials.includes(leaf.credential.credentialType))
    fail(
      "credential_not_in_capabilities",
      `own credential type ${leaf.credential.credentialType} missing from capabilities`,
    );
  // §7.3 / §10.1: every non-default extension of the leaf and of the package is in capabilities.extensions.
  checkExtensionsListed(leaf.extensions, caps.extensions, "leaf node");
  checkExtensionsListed(kp.extensions, caps.extensions, "key package");

  // §7.3: the current time is within the lifetime [not_before, not_after).
  const now = options.now.getTime();
  const notBefore = Number(lifetime.notBefore) * 1000;
  const notAfter = Number(lifetime.notAfter) * 1000;
  if (now < notBefore) fail("lifetime_not_yet_valid", `not valid before ${isoOrRaw(notBefore)}`);
  if (now >= notAfter) fail("lifetime_expired", `expired at ${isoOrRaw(notAfter)}`);
  // Policy (not RFC 9420): the span is bounded, so a stolen package cannot be used forever.
  if (options.maxLifetimeSpanMs !== undefined && notAfter - notBefore > options.maxLifetimeSpanMs)
    fail(
      "lifetime_too_long",
      `lifetime span ${notAfter - notBefore} ms exceeds ${options.maxLifetimeSpanMs} ms`,
    );

  return kp as VerifiedKeyPackage;
}

function isoOrRaw(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms / 1000} s` : d.toISOString();
}
