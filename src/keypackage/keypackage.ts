import { InvalidKeypackageError } from "../errors.js";
import { ClientId } from "../credential/clientId.js";
import { CredentialType } from "../credential/credentialType.js";
import { hashOf, isCiphersuite, SUPPORTED_CIPHERSUITES, type Ciphersuite } from "../mls/ciphersuite.js";
import type { AuthenticationService } from "../mls/credential/authentication.js";
import { keyPackageRefSync } from "../mls/hash.js";
import { parseKeyPackage } from "../mls/keypackage/parse.js";
import { ExtensionTypes, type KeyPackage } from "../mls/keypackage/types.js";
import { verifyKeyPackage, type VerifiedKeyPackage } from "../mls/keypackage/validate.js";
import { KeypackageRef } from "./keypackageRef.js";
import { KEYPACKAGE_MAX_SPAN, type Lifetime } from "./lifetime.js";

/** The credential inside a key package's leaf node. */
export type KeypackageCredential =
  | { type: CredentialType.Basic; identity: Uint8Array; clientId: ClientId }
  | { type: CredentialType.X509; certificates: Uint8Array[] };

/** Leaf capabilities as code points (versions by name, as CoreCrypto shows them). */
export interface KeypackageCapabilities {
  versions: string[];
  ciphersuites: number[];
  extensions: number[];
  proposals: number[];
  credentials: number[];
}

const VERSION_NAMES: Readonly<Record<number, string>> = { 1: "mls10" };

/**
 * A KeyPackage (RFC 9420 §10): ours or anybody's. Immutable; `serialize()` returns
 * exactly the bytes it was made from.
 */
export class Keypackage {
  readonly #bytes: Uint8Array;
  /** Parsed lazily for packages we generated (most callers only serialize them). */
  #parsed: KeyPackage | undefined;
  #verified: VerifiedKeyPackage | undefined;
  readonly #ciphersuite: number;
  readonly #clock: () => Date;
  #ref: KeypackageRef | undefined;

  private constructor(bytes: Uint8Array, kp: KeyPackage | KeypackageRef, clock: () => Date) {
    this.#bytes = bytes;
    this.#clock = clock;
    if (kp instanceof KeypackageRef) {
      this.#ref = kp;
      this.#ciphersuite = kp.ciphersuite();
    } else {
      this.#parsed = kp;
      this.#ciphersuite = kp.ciphersuite;
    }
  }

  #kp(): KeyPackage {
    this.#parsed ??= parseKeyPackage(this.#bytes);
    return this.#parsed;
  }

  /** @internal a package we just generated: metadata known, parsing deferred until needed. */
  static fromGenerated(bytes: Uint8Array, ref: KeypackageRef, clock: () => Date): Keypackage {
    return new Keypackage(bytes, ref, clock);
  }

  /**
   * Parse a raw TLS-encoded `KeyPackage` (the bytes of CoreCrypto's `KeyPackage.serialize()`).
   * Strict (RFC 9420 §2.1): throws `InvalidKeypackage` with rule `decode`, `trailing_bytes` or
   * `non_minimal_encoding`. Does not verify: call `verify()`.
   */
  static deserialize(bytes: Uint8Array, options: { clock?: () => Date } = {}): Keypackage {
    if (!(bytes instanceof Uint8Array)) throw new InvalidKeypackageError("decode", "expected a Uint8Array");
    const copy = Uint8Array.from(bytes);
    return new Keypackage(copy, parseKeyPackage(copy), options.clock ?? (() => new Date()));
  }

  /** @internal a stored package, already parsed from `bytes`. */
  static fromParsed(bytes: Uint8Array, kp: KeyPackage, clock: () => Date): Keypackage {
    return new Keypackage(bytes, kp, clock);
  }

  serialize(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** The KeyPackageRef (RFC 9420 §5.2) and metadata. Works for foreign packages too. */
  ref(): KeypackageRef {
    if (this.#ref === undefined) {
      const suite = this.ciphersuite();
      if (!isCiphersuite(suite)) {
        throw new InvalidKeypackageError(
          "ciphersuite",
          `unknown cipher suite ${suite}: no hash to compute a ref`,
        );
      }
      const lt = this.#kp().leafNode.lifetime;
      this.#ref = new KeypackageRef({
        hashRef: keyPackageRefSync(hashOf(suite), this.#bytes),
        ciphersuite: suite,
        credentialType: this.credentialType(),
        ...(lt === undefined ? {} : { notBefore: Number(lt.notBefore), notAfter: Number(lt.notAfter) }),
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
    return this.#kp().leafNode.credential.credentialType as number as CredentialType;
  }

  /**
   * The leaf's credential. A Basic credential with an empty identity names no client: it is
   * refused with rule `credential_rejected` (RFC 9420 §5.3.1), as `verify()` refuses it.
   */
  credential(): KeypackageCredential {
    const c = this.#kp().leafNode.credential;
    if (c.credentialType === 1) {
      if (c.identity.length === 0)
        throw new InvalidKeypackageError("credential_rejected", "empty Basic credential identity");
      return {
        type: CredentialType.Basic,
        identity: Uint8Array.from(c.identity),
        clientId: new ClientId(c.identity),
      };
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
    if (lt === undefined)
      throw new InvalidKeypackageError("leaf_node_source", "leaf node source is not key_package");
    return {
      notBefore: new Date(Number(lt.notBefore) * 1000),
      notAfter: new Date(Number(lt.notAfter) * 1000),
    };
  }

  /** HPKE init public key (the Welcome is encrypted to it). */
  initKey(): Uint8Array {
    return Uint8Array.from(this.#kp().initKey);
  }

  /** Leaf node HPKE encryption public key. */
  encryptionKey(): Uint8Array {
    return Uint8Array.from(this.#kp().leafNode.encryptionKey);
  }

  signatureKey(): Uint8Array {
    return Uint8Array.from(this.#kp().leafNode.signatureKey);
  }

  /** Whether the package carries the `last_resort` extension (type 0x000A). */
  isLastResort(): boolean {
    return this.#kp().extensions.some((e) => e.extensionType === ExtensionTypes.last_resort);
  }

  /** Leaf capabilities as numbers (versions by name). */
  capabilities(): KeypackageCapabilities {
    const c = this.#kp().leafNode.capabilities;
    return {
      versions: c.versions.map((v) => VERSION_NAMES[v] ?? String(v)),
      ciphersuites: [...c.ciphersuites],
      extensions: [...c.extensions],
      proposals: [...c.proposals],
      credentials: [...c.credentials],
    };
  }

  /** @internal the parsed structure (RFC 9420 §10), verified or not. */
  get parsed(): KeyPackage {
    return this.#kp();
  }

  /** @internal the structure, once `verify()` has passed (parse → verify → use). */
  get verified(): VerifiedKeyPackage | undefined {
    return this.#verified;
  }

  /**
   * RFC 9420 §10.1 validation (src/mls/keypackage/validate.ts): version, supported suite,
   * leaf source, both signatures, init key ≠ encryption key, the credential accepted by the
   * authentication service (§5.3.1; by default an empty Basic identity is refused), version,
   * suite, credential type and extensions listed in capabilities, and a current lifetime whose
   * span is at most 84 days + 1 h. Throws `InvalidKeypackage` naming the first rule broken.
   */
  async verify(options: { now?: Date; authenticationService?: AuthenticationService } = {}): Promise<void> {
    this.#verified = undefined;
    const verified = await verifyKeyPackage(this.#kp(), {
      now: options.now ?? this.#clock(),
      supportedCiphersuites: SUPPORTED_CIPHERSUITES,
      maxLifetimeSpanMs: KEYPACKAGE_MAX_SPAN,
      ...(options.authenticationService === undefined
        ? {}
        : { authenticationService: options.authenticationService }),
    });
    this.#verified = verified;
  }
}
