import { type Ciphersuite, signatureSchemeOf, type SignatureScheme } from "../mls/ciphersuite.js";
import type { CredentialType } from "../credential/credentialType.js";
import { bytesEqual } from "../mls/tls.js";
import { toHex } from "../keystore/staging.js";
import { isLifetimeValid, type Lifetime } from "./lifetime.js";

/**
 * A light reference to a key package (RFC 9420 §5.2 KeyPackageRef plus metadata),
 * enough to sort, filter and remove packages without loading them.
 */
export class KeypackageRef {
  readonly #hashRef: Uint8Array;
  readonly #ciphersuite: Ciphersuite;
  readonly #credentialType: CredentialType;
  /** Seconds; undefined when the package has no lifetime. */
  readonly #notBefore: number | undefined;
  readonly #notAfter: number | undefined;
  readonly #lastResort: boolean;
  readonly #clock: () => Date;

  /** @internal */
  constructor(init: {
    hashRef: Uint8Array;
    ciphersuite: Ciphersuite;
    credentialType: CredentialType;
    notBefore?: number;
    notAfter?: number;
    lastResort?: boolean;
    clock?: () => Date;
  }) {
    this.#hashRef = init.hashRef;
    this.#ciphersuite = init.ciphersuite;
    this.#credentialType = init.credentialType;
    this.#notBefore = init.notBefore;
    this.#notAfter = init.notAfter;
    this.#lastResort = init.lastResort ?? false;
    this.#clock = init.clock ?? (() => new Date());
  }

  /** The KeyPackageRef bytes (hash of the package under its suite's hash). */
  hashRef(): Uint8Array {
    return Uint8Array.from(this.#hashRef);
  }

  /** Lowercase hex of `hashRef()`. */
  hex(): string {
    return toHex(this.#hashRef);
  }

  ciphersuite(): Ciphersuite {
    return this.#ciphersuite;
  }

  signatureScheme(): SignatureScheme {
    return signatureSchemeOf(this.#ciphersuite);
  }

  credentialType(): CredentialType {
    return this.#credentialType;
  }

  /** Whether the package carries the `last_resort` extension. */
  isLastResort(): boolean {
    return this.#lastResort;
  }

  lifetime(): Lifetime | undefined {
    if (this.#notBefore === undefined || this.#notAfter === undefined) return undefined;
    return { notBefore: new Date(this.#notBefore * 1000), notAfter: new Date(this.#notAfter * 1000) };
  }

  /**
   * True iff `notBefore ≤ now < notAfter` and `notAfter − notBefore` is at most
   * `KEYPACKAGE_DEFAULT_LIFETIME` + 1 h. `now` defaults to the session clock.
   */
  isValid(now?: Date): boolean {
    if (this.#notBefore === undefined || this.#notAfter === undefined) return false;
    return isLifetimeValid(this.#notBefore, this.#notAfter, now ?? this.#clock());
  }

  equals(other: KeypackageRef): boolean {
    return bytesEqual(this.#hashRef, other.#hashRef);
  }

  toString(): string {
    return `KeypackageRef(${this.hex()})`;
  }
}
