import { InvalidKeypackageError, type KeypackageRule } from "../errors.js";
import { ClientId } from "../credential/clientId.js";
import { CredentialType } from "../credential/credentialType.js";
import { isCiphersuite, SUPPORTED_CIPHERSUITES, type Ciphersuite } from "../mls/ciphersuite.js";
import {
  LAST_RESORT_EXTENSION_TYPE,
  capabilityIds,
  credentialTypeIdOf,
  decodeKeypackage,
  extensionIds,
  keypackageRefOf,
  suiteIdOf,
  verifyKeypackageSignatures,
  type MlsKeyPackage,
} from "../mls/keypackage.js";
import { bytesEqual } from "../mls/tls.js";
import { KeypackageRef } from "./keypackageRef.js";
import { KEYPACKAGE_MAX_SPAN, type Lifetime } from "./lifetime.js";

/** RFC 9420 §17.3 "default" extension types, which need not appear in capabilities. */
const DEFAULT_EXTENSIONS = new Set([1, 2, 3, 4, 5]);

/** The credential inside a key package's leaf node. */
export type KeypackageCredential =
  | { type: CredentialType.Basic; identity: Uint8Array; clientId: ClientId }
  | { type: CredentialType.X509; certificates: Uint8Array[] };

/**
 * A KeyPackage (RFC 9420 §10): ours or anybody's. Immutable; `serialize()` returns
 * exactly the bytes it was made from.
 */
export class Keypackage {
  readonly #bytes: Uint8Array;
  /** Decoded lazily for packages we generated (most callers only serialize them). */
  #kpDecoded: MlsKeyPackage | undefined;
  readonly #ciphersuite: number;
  readonly #clock: () => Date;
  #ref: KeypackageRef | undefined;

  private constructor(bytes: Uint8Array, kp: MlsKeyPackage | KeypackageRef, clock: () => Date) {
    this.#bytes = bytes;
    this.#clock = clock;
    if (kp instanceof KeypackageRef) {
      this.#ref = kp;
      this.#ciphersuite = kp.ciphersuite();
    } else {
      this.#kpDecoded = kp;
      this.#ciphersuite = suiteIdOf(kp);
    }
  }

  #kp(): MlsKeyPackage {
    if (this.#kpDecoded === undefined) {
      const r = decodeKeypackage(this.#bytes);
      if (!r.ok) throw new InvalidKeypackageError("decode", "not a well-formed TLS KeyPackage");
      this.#kpDecoded = r.keypackage;
    }
    return this.#kpDecoded;
  }

  /** @internal a package we just generated: metadata known, decoding deferred until needed. */
  static fromGenerated(bytes: Uint8Array, ref: KeypackageRef, clock: () => Date): Keypackage {
    return new Keypackage(bytes, ref, clock);
  }

  /**
   * Parse a raw TLS-encoded `KeyPackage` (the bytes of CoreCrypto's `KeyPackage.serialize()`).
   * Throws `InvalidKeypackage` (rule `decode` or `trailing_bytes`). Does not verify: call `verify()`.
   */
  static deserialize(bytes: Uint8Array, options: { clock?: () => Date } = {}): Keypackage {
    if (!(bytes instanceof Uint8Array)) throw new InvalidKeypackageError("decode", "expected a Uint8Array");
    const copy = Uint8Array.from(bytes);
    const r = decodeKeypackage(copy);
    if (!r.ok) {
      throw r.trailing
        ? new InvalidKeypackageError("trailing_bytes", "bytes remain after the KeyPackage")
        : new InvalidKeypackageError("decode", "not a well-formed TLS KeyPackage");
    }
    return new Keypackage(copy, r.keypackage, options.clock ?? (() => new Date()));
  }

  /** @internal */
  static fromDecoded(bytes: Uint8Array, kp: MlsKeyPackage, clock: () => Date): Keypackage {
    return new Keypackage(bytes, kp, clock);
  }

  serialize(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** The KeyPackageRef and metadata. Works for foreign packages too. */
  ref(): KeypackageRef {
    if (this.#ref === undefined) {
      const suite = this.ciphersuite();
      if (!isCiphersuite(suite)) {
        throw new InvalidKeypackageError("ciphersuite", `unknown cipher suite ${suite}: no hash to compute a ref`);
      }
      const lt = this.#kp().leafNode.lifetime;
      this.#ref = new KeypackageRef({
        hashRef: keypackageRefOf(suite, this.#bytes),
        ciphersuite: suite,
        credentialType: credentialTypeIdOf(this.#kp()),
        notBefore: Number(lt.notBefore),
        notAfter: Number(lt.notAfter),
        lastResort: this.isLastResort(),
        clock: this.#clock,
      });
    }
    return this.#ref;
  }

  /** Cipher suite code point (may be one we do not support: check `verify()`). */
  ciphersuite(): Ciphersuite {
    return this.#ciphersuite as Ciphersuite;
  }

  credentialType(): CredentialType {
    return credentialTypeIdOf(this.#kp());
  }

  credential(): KeypackageCredential {
    const c = this.#kp().leafNode.credential;
    if (c.credentialType === "basic") {
      return { type: CredentialType.Basic, identity: Uint8Array.from(c.identity), clientId: new ClientId(c.identity) };
    }
    return { type: CredentialType.X509, certificates: c.certificates.map((x) => Uint8Array.from(x)) };
  }

  /** The client id of a Basic credential (undefined for X509). */
  clientId(): ClientId | undefined {
    const c = this.credential();
    return c.type === CredentialType.Basic ? c.clientId : undefined;
  }

  lifetime(): Lifetime {
    const lt = this.#kp().leafNode.lifetime;
    return { notBefore: new Date(Number(lt.notBefore) * 1000), notAfter: new Date(Number(lt.notAfter) * 1000) };
  }

  /** HPKE init public key (the Welcome is encrypted to it). */
  initKey(): Uint8Array {
    return Uint8Array.from(this.#kp().initKey);
  }

  /** Leaf node HPKE encryption public key. */
  encryptionKey(): Uint8Array {
    return Uint8Array.from(this.#kp().leafNode.hpkePublicKey);
  }

  signatureKey(): Uint8Array {
    return Uint8Array.from(this.#kp().leafNode.signaturePublicKey);
  }

  /** Whether the package carries the `last_resort` extension (RFC 9420 §17.3, type 0x000A). */
  isLastResort(): boolean {
    return extensionIds(this.#kp().extensions).includes(LAST_RESORT_EXTENSION_TYPE);
  }

  /** Leaf capabilities as numbers. */
  capabilities(): ReturnType<typeof capabilityIds> {
    return capabilityIds(this.#kp());
  }

  /** @internal the decoded engine object. */
  get decoded(): MlsKeyPackage {
    return this.#kp();
  }

  /**
   * RFC 9420 §10.1 validation: version, supported suite, leaf source, both signatures,
   * init key ≠ encryption key, extensions and credential listed in capabilities, and a
   * current lifetime whose span is at most 84 days + 1 h. Throws `InvalidKeypackage`
   * naming the first rule broken.
   */
  async verify(options: { now?: Date } = {}): Promise<void> {
    const fail = (rule: KeypackageRule, message: string): never => {
      throw new InvalidKeypackageError(rule, message);
    };
    const kp = this.#kp();
    const suite = this.#ciphersuite;
    if (kp.version !== "mls10") fail("version", `protocol version ${String(kp.version)} is not mls10`);
    if (!isCiphersuite(suite) || !SUPPORTED_CIPHERSUITES.includes(suite)) {
      fail("ciphersuite", `cipher suite ${suite} is not supported`);
    }
    if (kp.leafNode.leafNodeSource !== "key_package") fail("leaf_node_source", "leaf node source is not key_package");
    const sigs = await verifyKeypackageSignatures(suite as Ciphersuite, kp);
    if (!sigs.leaf) fail("leaf_signature", "the leaf node signature does not verify");
    if (!sigs.keypackage) fail("keypackage_signature", "the key package signature does not verify");
    if (bytesEqual(kp.initKey, kp.leafNode.hpkePublicKey)) {
      fail("init_key_equals_encryption_key", "init_key equals the leaf encryption_key");
    }
    const caps = capabilityIds(kp);
    if (!caps.versions.includes("mls10")) fail("version_not_in_capabilities", "mls10 missing from capabilities");
    if (!caps.ciphersuites.includes(suite)) fail("ciphersuite_not_in_capabilities", "own suite missing from capabilities");
    if (!caps.credentials.includes(this.credentialType())) {
      fail("credential_not_in_capabilities", "own credential type missing from capabilities");
    }
    for (const ext of [...extensionIds(kp.extensions), ...extensionIds(kp.leafNode.extensions)]) {
      if (!DEFAULT_EXTENSIONS.has(ext) && !caps.extensions.includes(ext)) {
        fail("extensions_not_in_capabilities", `extension 0x${ext.toString(16).padStart(4, "0")} not in capabilities`);
      }
    }
    const now = (options.now ?? this.#clock()).getTime();
    const nb = Number(kp.leafNode.lifetime.notBefore) * 1000;
    const na = Number(kp.leafNode.lifetime.notAfter) * 1000;
    if (now < nb) fail("lifetime_not_yet_valid", `not valid before ${new Date(nb).toISOString()}`);
    if (now >= na) fail("lifetime_expired", `expired at ${new Date(na).toISOString()}`);
    if (na - nb > KEYPACKAGE_MAX_SPAN) fail("lifetime_too_long", `lifetime span exceeds 84 days + 1 h`);
  }
}
