import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import {
  isCiphersuite,
  signatureSchemeOf,
  type Ciphersuite,
  type SignatureScheme,
} from "../mls/ciphersuite.js";
import { hash } from "../mls/hash.js";
import { DecodeError, Reader, Writer } from "../mls/codec/index.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { toHex } from "../keystore/staging.js";
import { ClientId } from "./clientId.js";
import { CredentialType } from "./credentialType.js";

const FORMAT_VERSION = 1;

/**
 * A compact, stable reference to a credential stored in a database. It holds only
 * public data, can be serialized and parsed back, and stays valid across
 * transactions and reopenings (it is derived from the signature public key).
 */
export class CredentialRef {
  readonly #clientId: ClientId;
  readonly #ciphersuite: Ciphersuite;
  readonly #type: CredentialType;
  readonly #publicKey: Uint8Array;
  readonly #publicKeyHash: Uint8Array;
  #id: string | undefined;

  /** @internal use `tx.addCredential` or `CredentialRef.deserialize`. */
  constructor(clientId: ClientId, ciphersuite: Ciphersuite, type: CredentialType, publicKey: Uint8Array) {
    this.#clientId = clientId;
    this.#ciphersuite = ciphersuite;
    this.#type = type;
    this.#publicKey = Uint8Array.from(publicKey);
    this.#publicKeyHash = hash("SHA-256", publicKey);
  }

  clientId(): ClientId {
    return this.#clientId;
  }

  ciphersuite(): Ciphersuite {
    return this.#ciphersuite;
  }

  signatureScheme(): SignatureScheme {
    return signatureSchemeOf(this.#ciphersuite);
  }

  type(): CredentialType {
    return this.#type;
  }

  publicKey(): Uint8Array {
    return Uint8Array.from(this.#publicKey);
  }

  /** SHA-256 of the signature public key. */
  publicKeyHash(): Uint8Array {
    return Uint8Array.from(this.#publicKeyHash);
  }

  /** @internal the keystore row id. */
  get id(): string {
    return (this.#id ??= toHex(this.#publicKeyHash));
  }

  equals(other: CredentialRef): boolean {
    return this.#ciphersuite === other.#ciphersuite && bytesEqual(this.#publicKey, other.#publicKey);
  }

  /** Stable binary form: version, suite, type, client id, public key. */
  serialize(): Uint8Array {
    const clientId = this.#clientId.bytes();
    return new Writer(8 + clientId.length + this.#publicKey.length)
      .u8(FORMAT_VERSION)
      .u16(this.#ciphersuite)
      .u8(this.#type)
      .vec(clientId)
      .vec(this.#publicKey)
      .finish();
  }

  static deserialize(bytes: Uint8Array): CredentialRef {
    const fail = (why: string): never => {
      throw new MlsKeypackagesError(
        ErrorCode.InvalidCredentialRef,
        `invalid serialized credential ref: ${why}`,
      );
    };
    if (bytes.length < 4 || bytes[0] !== FORMAT_VERSION) fail("unknown format");
    const suite = ((bytes[1] as number) << 8) | (bytes[2] as number);
    const type = bytes[3] as number;
    if (!isCiphersuite(suite)) fail("unknown cipher suite");
    if (type !== CredentialType.Basic && type !== CredentialType.X509) fail("unknown credential type");
    // The rest is TLS presentation language (RFC 9420 §2.1): opaque client_id<V>; opaque public_key<V>.
    let clientId: Uint8Array = new Uint8Array(0);
    let publicKey: Uint8Array = new Uint8Array(0);
    try {
      const r = new Reader(bytes, 4);
      clientId = r.vec().slice();
      publicKey = r.vec().slice();
      r.finish();
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      fail(e.rule === "§2.1 trailing bytes" ? "trailing bytes" : "truncated or malformed");
    }
    if (clientId.length === 0 || publicKey.length === 0) fail("empty field");
    return new CredentialRef(new ClientId(clientId), suite as Ciphersuite, type as CredentialType, publicKey);
  }

  toString(): string {
    return `CredentialRef(${CredentialType[this.#type]}, suite ${this.#ciphersuite}, ${this.#clientId.toString()}, ${this.id.slice(0, 16)}…)`;
  }
}
