import {
  assertCiphersuite,
  signatureSchemeOf,
  type Ciphersuite,
  type SignatureScheme,
} from "../mls/ciphersuite.js";
import { encode } from "../mls/codec/index.js";
import { writeCredential } from "../mls/credential/codec.js";
import { CredentialTypes } from "../mls/credential/types.js";
import { generateSignatureKeyPair } from "../mls/signatureKeys.js";
import type { ClientId } from "./clientId.js";
import { CredentialType } from "./credentialType.js";

const inspect = Symbol.for("nodejs.util.inspect.custom");

/**
 * A credential with its signature key pair, in memory only. Attach it to a
 * database with `tx.addCredential(credential)`, which returns a `CredentialRef`.
 */
export class Credential {
  readonly ciphersuite: Ciphersuite;
  readonly clientId: ClientId;
  readonly type: CredentialType;
  /** Signature public key. */
  readonly publicKey: Uint8Array;
  /** TLS-encoded MLS Credential. */
  readonly encoded: Uint8Array;
  readonly #signaturePrivateKey: Uint8Array;

  private constructor(
    ciphersuite: Ciphersuite,
    clientId: ClientId,
    type: CredentialType,
    encoded: Uint8Array,
    publicKey: Uint8Array,
    signaturePrivateKey: Uint8Array,
  ) {
    this.ciphersuite = ciphersuite;
    this.clientId = clientId;
    this.type = type;
    this.encoded = encoded;
    this.publicKey = publicKey;
    this.#signaturePrivateKey = signaturePrivateKey;
  }

  /** A Basic credential for `clientId` with a fresh signature key pair of the suite's scheme. */
  static basic(ciphersuite: Ciphersuite, clientId: ClientId): Credential {
    const suite = assertCiphersuite(ciphersuite);
    const keys = generateSignatureKeyPair(signatureSchemeOf(suite));
    const basic = { credentialType: CredentialTypes.basic, identity: clientId.bytes() } as const;
    const encoded = encode(basic, writeCredential);
    return new Credential(suite, clientId, CredentialType.Basic, encoded, keys.publicKey, keys.privateKey);
  }

  signatureScheme(): SignatureScheme {
    return signatureSchemeOf(this.ciphersuite);
  }

  /** @internal the private key, for storage only. */
  signaturePrivateKey(): Uint8Array {
    return this.#signaturePrivateKey;
  }

  toString(): string {
    return `Credential(${CredentialType[this.type]}, suite ${this.ciphersuite}, ${this.clientId.toString()})`;
  }

  [inspect](): string {
    return this.toString();
  }
}
