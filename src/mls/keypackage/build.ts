/**
 * RFC 9420 §10 key package creation: two fresh HPKE key pairs (init key, leaf encryption key),
 * a LeafNode with leaf_node_source = key_package signed with label "LeafNodeTBS" (§7.2), and the
 * KeyPackage signed with label "KeyPackageTBS" (§10), then its KeyPackageRef (§5.2).
 *
 * The parts that never change (capabilities, extensions, the encoded labels) are encoded once;
 * a package is then assembled with its sizes known in advance: one buffer for each signed
 * content and one for the result. On a provider with synchronous primitives (node:crypto) the
 * whole build is synchronous (`buildKeyPackageSync`), with no promise and no key handle.
 */
import { Writer } from "../codec/writer.js";
import { mlsLabel, makeKeyPackageRef, makeKeyPackageRefSync } from "../crypto/labels.js";
import {
  isSyncDigestHash,
  syncKeygenOf,
  syncSignatureOf,
  type CiphersuiteImpl,
  type SyncDigestHash,
  type SyncKeygenHpke,
  type SyncSignature,
} from "../crypto/types.js";
import { writeCapabilities, writeExtensions } from "./codec.js";
import { ExtensionTypes, LeafNodeSources, MLS10, type Capabilities, type Extension } from "./types.js";

/** The `last_resort` key package extension type (RFC 9750; 0x000A, as CoreCrypto writes it). */
export const LAST_RESORT_EXTENSION_TYPE = ExtensionTypes.last_resort;

/** RFC 9420 §17.1 suites we list in capabilities, CoreCrypto's first (as src/mls/ciphersuite.ts). */
const CAPABILITY_CIPHERSUITES: readonly number[] = Object.freeze([1, 2, 3, 7, 5, 4, 6]);

/** §17.5 basic and x509. */
const CAPABILITY_CREDENTIALS: readonly number[] = Object.freeze([1, 2]);

/**
 * Our leaf capabilities (§7.2), as CoreCrypto writes them: mls10, every suite we support, the
 * `last_resort` extension type when the package carries it (§10.1: non-default extensions must
 * be listed), no proposals beyond the defaults, basic and x509 credentials.
 */
export function leafCapabilities(lastResort: boolean): Capabilities {
  return {
    versions: [MLS10],
    ciphersuites: CAPABILITY_CIPHERSUITES,
    extensions: lastResort ? [ExtensionTypes.last_resort] : [],
    proposals: [],
    credentials: CAPABILITY_CREDENTIALS,
  };
}

/** The key package extensions (§10): `last_resort` (empty data) or none. */
export function keyPackageExtensions(lastResort: boolean): Extension[] {
  return lastResort ? [{ extensionType: ExtensionTypes.last_resort, extensionData: new Uint8Array(0) }] : [];
}

export interface BuildKeyPackageInput {
  /** RFC 9420 §17.1 code point; the suite of `cs` given to the builder. */
  readonly ciphersuite: number;
  /** The TLS-encoded §5.3 Credential, written as is. */
  readonly credential: Uint8Array;
  readonly signaturePublicKey: Uint8Array;
  readonly signaturePrivateKey: Uint8Array;
  /** §7.2 Lifetime, seconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Carry the `last_resort` extension (and list it in capabilities). */
  readonly lastResort: boolean;
}

export interface BuiltKeyPackage {
  /** The encoded §10 KeyPackage. */
  bytes: Uint8Array;
  /** §5.2 KeyPackageRef of `bytes`. */
  ref: Uint8Array;
  initPublicKey: Uint8Array;
  /** Secret: the caller stores it and zeroes its copies. */
  initPrivateKey: Uint8Array;
  encryptionPublicKey: Uint8Array;
  /** Secret. */
  encryptionPrivateKey: Uint8Array;
}

/** Parts encoded once per `lastResort` value. */
interface StaticParts {
  readonly capabilities: Uint8Array;
  readonly extensions: Uint8Array;
}

const staticParts = new Map<boolean, StaticParts>();

function partsFor(lastResort: boolean): StaticParts {
  let p = staticParts.get(lastResort);
  if (p === undefined) {
    const caps = new Writer(64);
    writeCapabilities(caps, leafCapabilities(lastResort));
    const exts = new Writer(16);
    writeExtensions(exts, keyPackageExtensions(lastResort));
    p = { capabilities: caps.finish(), extensions: exts.finish() };
    staticParts.set(lastResort, p);
  }
  return p;
}

const LEAF_LABEL = "LeafNodeTBS";
const KEYPACKAGE_LABEL = "KeyPackageTBS";

// ---------------------------------------------------------------------------
// Byte assembly (RFC 9420 §2.1 encodings written at known offsets)
// ---------------------------------------------------------------------------

function varintSize(n: number): number {
  if (n < 0x40) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x40000000) return 4;
  throw new RangeError("vector too long");
}

function putVarint(buf: Uint8Array, at: number, n: number): number {
  if (n < 0x40) {
    buf[at] = n;
    return at + 1;
  }
  if (n < 0x4000) {
    buf[at] = 0x40 | (n >>> 8);
    buf[at + 1] = n & 0xff;
    return at + 2;
  }
  buf[at] = 0x80 | (n >>> 24);
  buf[at + 1] = (n >>> 16) & 0xff;
  buf[at + 2] = (n >>> 8) & 0xff;
  buf[at + 3] = n & 0xff;
  return at + 4;
}

function putVec(buf: Uint8Array, at: number, b: Uint8Array): number {
  const o = putVarint(buf, at, b.length);
  buf.set(b, o);
  return o + b.length;
}

function putU64(buf: Uint8Array, at: number, seconds: number): number {
  if (!Number.isSafeInteger(seconds) || seconds < 0)
    throw new RangeError(`lifetime out of range: ${seconds}`);
  const hi = Math.floor(seconds / 0x100000000);
  const lo = seconds >>> 0;
  for (let i = 0; i < 4; i++) {
    buf[at + i] = (hi >>> (24 - 8 * i)) & 0xff;
    buf[at + 4 + i] = (lo >>> (24 - 8 * i)) & 0xff;
  }
  return at + 8;
}

const vecSize = (b: Uint8Array): number => varintSize(b.length) + b.length;

/**
 * §5.1.2 SignContent = label<V> ‖ content<V>, with `content` (`contentLen` bytes) written by
 * `write` at the offset it is given. Returns the buffer and where the content starts.
 */
function signContentBuffer(
  label: string,
  contentLen: number,
  write: (buf: Uint8Array, at: number) => number,
): { buf: Uint8Array; start: number } {
  const l = mlsLabel(label);
  const buf = new Uint8Array(l.length + varintSize(contentLen) + contentLen);
  buf.set(l, 0);
  const start = putVarint(buf, l.length, contentLen);
  const end = write(buf, start);
  if (end !== buf.length) throw new Error("key package assembly: size mismatch");
  return { buf, start };
}

/**
 * §7.2 LeafNodeTBS for leaf_node_source = key_package (no group_id / leaf_index), inside its
 * SignContent: encryption_key<V>, signature_key<V>, credential, capabilities, source,
 * lifetime, extensions<V> (none).
 */
function leafSignContent(
  input: BuildKeyPackageInput,
  parts: StaticParts,
  encryptionKey: Uint8Array,
): { buf: Uint8Array; start: number } {
  const len =
    vecSize(encryptionKey) +
    vecSize(input.signaturePublicKey) +
    input.credential.length +
    parts.capabilities.length +
    1 + // leaf_node_source
    16 + // Lifetime
    1; // extensions<V>, empty
  return signContentBuffer(LEAF_LABEL, len, (buf, at) => {
    let o = putVec(buf, at, encryptionKey);
    o = putVec(buf, o, input.signaturePublicKey);
    buf.set(input.credential, o);
    o += input.credential.length;
    buf.set(parts.capabilities, o);
    o += parts.capabilities.length;
    buf[o++] = LeafNodeSources.key_package;
    o = putU64(buf, o, input.notBefore);
    o = putU64(buf, o, input.notAfter);
    buf[o++] = 0; // extensions<V>: empty
    return o;
  });
}

/** §10 KeyPackageTBS inside its SignContent: version, suite, init_key<V>, LeafNode, extensions<V>. */
function keyPackageSignContent(
  input: BuildKeyPackageInput,
  parts: StaticParts,
  initKey: Uint8Array,
  leafTbs: Uint8Array,
  leafSignature: Uint8Array,
): { buf: Uint8Array; start: number } {
  const len = 4 + vecSize(initKey) + leafTbs.length + vecSize(leafSignature) + parts.extensions.length;
  return signContentBuffer(KEYPACKAGE_LABEL, len, (buf, at) => {
    buf[at] = MLS10 >>> 8;
    buf[at + 1] = MLS10 & 0xff;
    buf[at + 2] = (input.ciphersuite >>> 8) & 0xff;
    buf[at + 3] = input.ciphersuite & 0xff;
    let o = putVec(buf, at + 4, initKey);
    buf.set(leafTbs, o);
    o += leafTbs.length;
    o = putVec(buf, o, leafSignature);
    buf.set(parts.extensions, o);
    return o + parts.extensions.length;
  });
}

/** §10 KeyPackage = KeyPackageTBS ‖ signature<V>. */
function keyPackageBytes(tbs: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(tbs.length + vecSize(signature));
  out.set(tbs, 0);
  putVec(out, tbs.length, signature);
  return out;
}

function checkInput(input: BuildKeyPackageInput): void {
  if (!Number.isInteger(input.ciphersuite) || input.ciphersuite < 1 || input.ciphersuite > 0xffff)
    throw new TypeError(`not a cipher suite code point: ${String(input.ciphersuite)}`);
  if (!(input.credential instanceof Uint8Array) || !(input.signaturePublicKey instanceof Uint8Array))
    throw new TypeError("credential and signature key must be Uint8Arrays");
}

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

/** The synchronous primitives a provider must offer for `buildKeyPackageSync`. */
interface SyncPrimitives {
  readonly hpke: SyncKeygenHpke;
  readonly signature: SyncSignature;
  readonly hash: SyncDigestHash;
}

function syncPrimitives(cs: CiphersuiteImpl): SyncPrimitives | undefined {
  const hpke = syncKeygenOf(cs.hpke);
  const signature = syncSignatureOf(cs.signature);
  if (hpke === undefined || signature === undefined || !isSyncDigestHash(cs.hash)) return undefined;
  return { hpke, signature, hash: cs.hash };
}

/**
 * Build and sign a key package synchronously, or return undefined when the provider has no
 * synchronous key generation, signature or digest (WebCrypto): then use `buildKeyPackage`.
 */
export function buildKeyPackageSync(
  cs: CiphersuiteImpl,
  input: BuildKeyPackageInput,
): BuiltKeyPackage | undefined {
  const sync = syncPrimitives(cs);
  if (sync === undefined) return undefined;
  checkInput(input);
  const parts = partsFor(input.lastResort);
  const init = sync.hpke.generateRawKeyPairSync();
  const leaf = sync.hpke.generateRawKeyPairSync();
  const leafContent = leafSignContent(input, parts, leaf.publicKey);
  const leafSignature = sync.signature.signSync(input.signaturePrivateKey, leafContent.buf);
  const kpContent = keyPackageSignContent(
    input,
    parts,
    init.publicKey,
    leafContent.buf.subarray(leafContent.start),
    leafSignature,
  );
  const kpSignature = sync.signature.signSync(input.signaturePrivateKey, kpContent.buf);
  const bytes = keyPackageBytes(kpContent.buf.subarray(kpContent.start), kpSignature);
  return {
    bytes,
    ref: makeKeyPackageRefSync(bytes, sync.hash),
    initPublicKey: init.publicKey,
    initPrivateKey: init.privateKey,
    encryptionPublicKey: leaf.publicKey,
    encryptionPrivateKey: leaf.privateKey,
  };
}

/** Build and sign a key package with any provider (same bytes as `buildKeyPackageSync` for the same keys). */
export async function buildKeyPackage(
  cs: CiphersuiteImpl,
  input: BuildKeyPackageInput,
): Promise<BuiltKeyPackage> {
  const fast = buildKeyPackageSync(cs, input);
  if (fast !== undefined) return fast;
  checkInput(input);
  const parts = partsFor(input.lastResort);
  const [init, leaf] = await Promise.all([cs.hpke.generateKeyPair(), cs.hpke.generateKeyPair()]);
  const [initPublicKey, encryptionPublicKey, initPrivateKey, encryptionPrivateKey] = await Promise.all([
    cs.hpke.exportPublicKey(init.publicKey),
    cs.hpke.exportPublicKey(leaf.publicKey),
    cs.hpke.exportPrivateKey(init.privateKey),
    cs.hpke.exportPrivateKey(leaf.privateKey),
  ]);
  const leafContent = leafSignContent(input, parts, encryptionPublicKey);
  const leafSignature = await cs.signature.sign(input.signaturePrivateKey, leafContent.buf);
  const kpContent = keyPackageSignContent(
    input,
    parts,
    initPublicKey,
    leafContent.buf.subarray(leafContent.start),
    leafSignature,
  );
  const kpSignature = await cs.signature.sign(input.signaturePrivateKey, kpContent.buf);
  const bytes = keyPackageBytes(kpContent.buf.subarray(kpContent.start), kpSignature);
  return {
    bytes,
    ref: await makeKeyPackageRef(bytes, cs.hash),
    initPublicKey,
    initPrivateKey,
    encryptionPublicKey,
    encryptionPrivateKey,
  };
}
