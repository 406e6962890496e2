/**
 * Engine adapter for key packages (RFC 9420 §10): build, encode, decode, sign checks.
 * Everything ts-mls-specific about key packages stays in this file.
 */
import type { Capabilities, Extension, KeyPackage as MlsKeyPackage, Signature } from "ts-mls";
import {
  getCiphersuiteNameFromId,
  type CiphersuiteId,
  type CiphersuiteName,
} from "ts-mls/crypto/ciphersuite.js";
import { encodeCapabilities } from "ts-mls/capabilities.js";
import { encodeExtension, extensionTypeToNumber } from "ts-mls/extension.js";
import { verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { SUPPORTED_CIPHERSUITES, hashOf, type Ciphersuite } from "./ciphersuite.js";
import { fastDecodeKeyPackage } from "./fastDecode.js";
import { refHash, refHashInputOf } from "./hash.js";
import { suiteImpl } from "./suite.js";
import { concatBytes, encodeVarBytes, encodeVarint } from "./tls.js";

export type { MlsKeyPackage };

/** RFC 9420 §17.3: the `last_resort` key package extension type. */
export const LAST_RESORT_EXTENSION_TYPE = 0x000a;

const CREDENTIAL_TYPE_IDS: Record<string, number> = { basic: 1, x509: 2 };
const SUITE_NAMES: CiphersuiteName[] = SUPPORTED_CIPHERSUITES.map((s) =>
  getCiphersuiteNameFromId(s as CiphersuiteId),
);

/** Leaf capabilities, identical in kind to CoreCrypto's (plus the suites we add). */
export function leafCapabilities(lastResort: boolean): Capabilities {
  return {
    versions: ["mls10"],
    ciphersuites: SUITE_NAMES,
    extensions: lastResort ? [LAST_RESORT_EXTENSION_TYPE] : [],
    proposals: [],
    credentials: ["basic", "x509"],
  };
}

export interface BuildKeypackageInput {
  ciphersuite: Ciphersuite;
  /** TLS-encoded MLS Credential. */
  credential: Uint8Array;
  signaturePublicKey: Uint8Array;
  signaturePrivateKey: Uint8Array;
  /** Seconds since the epoch. */
  notBefore: number;
  notAfter: number;
  lastResort: boolean;
}

export interface BuiltKeypackage {
  bytes: Uint8Array;
  ref: Uint8Array;
  initPublicKey: Uint8Array;
  initPrivateKey: Uint8Array;
  encryptionPublicKey: Uint8Array;
  encryptionPrivateKey: Uint8Array;
}

/**
 * Build and sign a key package (RFC 9420 §10). The structure parts that never change for a
 * credential (capabilities, extensions) are encoded once with the engine's encoders; the per-package
 * parts (keys, lifetime, signatures) are assembled here, which avoids re-encoding the whole
 * structure three times per package. `test/mls/keypackage-encoding.test.ts` checks the bytes
 * against ts-mls's own encoder and signer.
 */
export async function buildKeypackage(input: BuildKeypackageInput): Promise<BuiltKeypackage> {
  const cs = await suiteImpl(input.ciphersuite);
  const init = await cs.hpke.generateKeyPair();
  const leaf = await cs.hpke.generateKeyPair();
  const initPublicKey = await cs.hpke.exportPublicKey(init.publicKey);
  const encryptionPublicKey = await cs.hpke.exportPublicKey(leaf.publicKey);
  const parts = staticParts(input.lastResort);
  // LeafNodeTBS for leaf_node_source = key_package (RFC 9420 §7.2): no group_id / leaf_index.
  const leafTbs = concatBytes([
    encodeVarBytes(encryptionPublicKey),
    encodeVarBytes(input.signaturePublicKey),
    input.credential,
    parts.capabilities,
    LEAF_NODE_SOURCE_KEY_PACKAGE,
    encodeLifetime(input.notBefore, input.notAfter),
    EMPTY_VECTOR, // leaf extensions
  ]);
  const leafSignature = await cs.signature.sign(input.signaturePrivateKey, signContent(LEAF_LABEL, leafTbs));
  const kpTbs = concatBytes([
    MLS10,
    Uint8Array.of(input.ciphersuite >> 8, input.ciphersuite & 0xff),
    encodeVarBytes(initPublicKey),
    leafTbs,
    encodeVarBytes(leafSignature),
    parts.extensions,
  ]);
  const kpSignature = await cs.signature.sign(
    input.signaturePrivateKey,
    signContent(KEYPACKAGE_LABEL, kpTbs),
  );
  const bytes = concatBytes([kpTbs, encodeVarBytes(kpSignature)]);
  return {
    bytes,
    // RFC 9420 §5.2 with the provider's (native) hash; `keypackageRefOf` is the synchronous twin.
    ref: await cs.hash.digest(refHashInput(bytes)),
    initPublicKey,
    initPrivateKey: await cs.hpke.exportPrivateKey(init.privateKey),
    encryptionPublicKey,
    encryptionPrivateKey: await cs.hpke.exportPrivateKey(leaf.privateKey),
  };
}

const textEncoder = new TextEncoder();
const MLS10 = Uint8Array.of(0x00, 0x01); // ProtocolVersion mls10
const LEAF_NODE_SOURCE_KEY_PACKAGE = Uint8Array.of(0x01);
const EMPTY_VECTOR = Uint8Array.of(0x00);
const LEAF_LABEL = encodeVarBytes(textEncoder.encode("MLS 1.0 LeafNodeTBS"));
const KEYPACKAGE_LABEL = encodeVarBytes(textEncoder.encode("MLS 1.0 KeyPackageTBS"));

/** RFC 9420 §5.1.2 SignContent: label<V> ‖ content<V> (the label already encoded). */
function signContent(encodedLabel: Uint8Array, content: Uint8Array): Uint8Array {
  return concatBytes([encodedLabel, encodeVarBytes(content)]);
}

/** Lifetime extension (RFC 9420 §7.2): two uint64, seconds. */
function encodeLifetime(notBefore: number, notAfter: number): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(notBefore));
  view.setBigUint64(8, BigInt(notAfter));
  return out;
}

const staticCache = new Map<boolean, { capabilities: Uint8Array; extensions: Uint8Array }>();

/** Capabilities and key package extensions, encoded once by the engine. */
function staticParts(lastResort: boolean): { capabilities: Uint8Array; extensions: Uint8Array } {
  let parts = staticCache.get(lastResort);
  if (parts === undefined) {
    const extensions: Extension[] = lastResort
      ? [{ extensionType: LAST_RESORT_EXTENSION_TYPE, extensionData: new Uint8Array(0) }]
      : [];
    parts = {
      capabilities: encodeCapabilities(leafCapabilities(lastResort)),
      extensions: concatBytes([
        encodeVarint(extensions.reduce((n, e) => n + encodeExtension(e).length, 0)),
        ...extensions.map(encodeExtension),
      ]),
    };
    staticCache.set(lastResort, parts);
  }
  return parts;
}

const KEYPACKAGE_REF_LABEL = "MLS 1.0 KeyPackage Reference";

/** RFC 9420 §5.2: KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage). */
export function keypackageRefOf(ciphersuite: Ciphersuite, encoded: Uint8Array): Uint8Array {
  return refHash(hashOf(ciphersuite), KEYPACKAGE_REF_LABEL, encoded);
}

function refHashInput(encoded: Uint8Array): Uint8Array {
  return refHashInputOf(KEYPACKAGE_REF_LABEL, encoded);
}

export type DecodeResult = { ok: true; keypackage: MlsKeyPackage } | { ok: false; trailing: boolean };

/** Decode a TLS `KeyPackage`; the whole input must be consumed. */
export function decodeKeypackage(bytes: Uint8Array): DecodeResult {
  let r: [MlsKeyPackage, number] | undefined;
  try {
    r = fastDecodeKeyPackage(bytes, 0); // = ts-mls decodeKeyPackage, faster (see fastDecode.ts)
  } catch {
    r = undefined;
  }
  if (r === undefined) return { ok: false, trailing: false };
  if (r[1] !== bytes.length) return { ok: false, trailing: true };
  return { ok: true, keypackage: r[0] };
}

/** Cipher suite code point of a decoded package (unknown suites keep their number). */
export function suiteIdOf(kp: MlsKeyPackage): number {
  const id = (SUITE_IDS as Record<string, number>)[kp.cipherSuite];
  return id ?? Number(kp.cipherSuite);
}

const SUITE_IDS: Partial<Record<CiphersuiteName, number>> = Object.fromEntries(
  [1, 2, 3, 4, 5, 6, 7].map((id) => [getCiphersuiteNameFromId(id as CiphersuiteId), id]),
);

export function credentialTypeIdOf(kp: MlsKeyPackage): number {
  return (
    CREDENTIAL_TYPE_IDS[kp.leafNode.credential.credentialType] ??
    Number(kp.leafNode.credential.credentialType)
  );
}

export function extensionIds(exts: readonly Extension[]): number[] {
  return exts.map((e) => extensionTypeToNumber(e.extensionType));
}

export function capabilityIds(kp: MlsKeyPackage): {
  versions: string[];
  ciphersuites: number[];
  extensions: number[];
  proposals: number[];
  credentials: number[];
} {
  const c = kp.leafNode.capabilities;
  return {
    versions: [...c.versions],
    ciphersuites: c.ciphersuites.map((n) => (SUITE_IDS as Record<string, number>)[n] ?? Number(n)),
    extensions: [...c.extensions],
    proposals: [...c.proposals],
    credentials: c.credentials.map((t) => CREDENTIAL_TYPE_IDS[t] ?? Number(t)),
  };
}

/** RFC 9420 §10.1: leaf node signature (label "LeafNodeTBS") and key package signature ("KeyPackageTBS"). */
export async function verifyKeypackageSignatures(
  ciphersuite: Ciphersuite,
  kp: MlsKeyPackage,
): Promise<{ leaf: boolean; keypackage: boolean }> {
  const cs = await suiteImpl(ciphersuite);
  const safe = async (f: () => Promise<boolean>): Promise<boolean> => {
    try {
      return await f();
    } catch {
      return false;
    }
  };
  const verified: SignatureTriple[] = [];
  const recording: Signature = {
    ...cs.signature,
    verify: async (publicKey, message, signature) => {
      const ok = await cs.signature.verify(publicKey, message, signature);
      if (ok) verified.push([publicKey, message, signature]);
      return ok;
    },
  };
  const leaf = await safe(() => verifyLeafNodeSignatureKeyPackage(kp.leafNode, recording));
  const keypackage = await safe(() => verifyKeyPackage(kp, recording));
  if (leaf && keypackage) verifiedSignatures.set(kp, verified);
  return { leaf, keypackage };
}

/** (public key, signed message with its label, signature), as handed to `Signature.verify`. */
export type SignatureTriple = [publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array];

/**
 * The two signature checks that `verifyKeypackageSignatures` last found valid for a decoded
 * package (exactly the calls ts-mls's own verification makes), so that the group adapter can
 * recognise them instead of re-encoding the package to learn them.
 */
export const verifiedSignatures = new WeakMap<MlsKeyPackage, readonly SignatureTriple[]>();
