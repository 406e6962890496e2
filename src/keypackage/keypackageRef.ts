import { type Ciphersuite, signatureSchemeOf, type SignatureScheme } from "../mls/ciphersuite.js";
import type { CredentialType } from "../credential/credentialType.js";
import { fromHex, toHex } from "../keystore/staging.js";
import { isLifetimeValid, type Lifetime } from "./lifetime.js";

/**
 * A light reference to a key package (RFC 9420 §5.2 KeyPackageRef plus metadata),
 * enough to sort, filter and remove packages without loading them.
 */
export class KeypackageRef {
  /** Bytes or lowercase hex: refs listed from storage keep the hex until bytes are asked for. */
  #hashRef: Uint8Array | undefined;
  #hex: string | undefined;
  readonly #ciphersuite: Ciphersuite;
  readonly #credentialType: CredentialType;
  /** Seconds; undefined when the package has no lifetime. */
  readonly #notBefore: number | undefined;
  readonly #notAfter: number | undefined;
  readonly #lastResort: boolean;
  readonly #clock: () => Date;

  /** @internal */
  constructor(init: {
    hashRef: Uint8Array | string;
    ciphersuite: Ciphersuite;
    credentialType: CredentialType;
    notBefore?: number;
    notAfter?: number;
    lastResort?: boolean;
    clock?: () => Date;
  }) {
    if (typeof init.hashRef === "string") this.#hex = init.hashRef;
    else this.#hashRef = init.hashRef;
    this.#ciphersuite = init.ciphersuite;
    this.#credentialType = init.credentialType;
    this.#notBefore = init.notBefore;
    this.#notAfter = init.notAfter;
    this.#lastResort = init.lastResort ?? false;
    this.#clock = init.clock ?? (() => new Date());
  }

  /** The KeyPackageRef bytes (hash of the package under its suite's hash). */
  hashRef(): Uint8Array {
    this.#hashRef ??= fromHex(this.#hex as string);
    return Uint8Array.from(this.#hashRef);
  }

  /** Lowercase hex of `hashRef()`. */
  hex(): string {
    this.#hex ??= toHex(this.#hashRef as Uint8Array);
    return this.#hex;
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
    return this.hex() === other.hex();
  }

  toString(): string {
    return `KeypackageRef(${this.hex()})`;
  }
}
