import {
  assertCiphersuite,
  signatureSchemeOf,
  SignatureScheme,
  type Ciphersuite,
} from "../mls/ciphersuite.js";
import { encode } from "../mls/codec/index.js";
import { writeCredential } from "../mls/credential/codec.js";
import { CredentialTypes } from "../mls/credential/types.js";
import { generateSignatureKeyPair, signaturePublicKeyOf } from "../mls/signatureKeys.js";
import { ErrorCode, MlsKeypackagesError, MlsRuleError } from "../errors.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { x509Backend } from "../pki/backend.js";
import type { PemOrDer } from "../pki/certificate.js";
import { ClientId } from "./clientId.js";
import { CredentialType } from "./credentialType.js";

/** What `Credential.x509` takes. */
export interface X509CredentialInput {
  /** The chain, leaf first, each certificate issued by the next: PEM text (one or more blocks) or DER certificates. */
  certificateChain: PemOrDer | readonly PemOrDer[];
  /** The leaf's private key: PKCS#8 (RFC 5958) DER or PEM, or raw (Ed25519 seed / ECDSA scalar). Secret. */
  privateKey: PemOrDer;
}

/** Rules `Credential.x509` checks (`details.rule` of its errors). */
export type X509CredentialRule =
  | "x509_empty_chain"
  | "x509_parse"
  | "x509_chain_order"
  | "x509_signature_scheme"
  | "x509_key_mismatch"
  | "san_client_id";

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
  /** X.509 only: the certificate chain (DER, leaf first). Empty for Basic credentials. */
  readonly certificateChain: readonly Uint8Array[];
  readonly #signaturePrivateKey: Uint8Array;

  private constructor(
    ciphersuite: Ciphersuite,
    clientId: ClientId,
    type: CredentialType,
    encoded: Uint8Array,
    publicKey: Uint8Array,
    signaturePrivateKey: Uint8Array,
    certificateChain: readonly Uint8Array[] = [],
  ) {
    this.certificateChain = Object.freeze(certificateChain.map((c) => Uint8Array.from(c)));
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

  /**
   * An X.509 credential (RFC 9420 §5.3) from a certificate chain and the leaf's private key. The
   * client id is read from the leaf's SAN (Wire's `wireapp://` URI, as CoreCrypto reads it). Errors
   * (`MlsRuleError`, `details.rule`): `InvalidCertificate` when the chain is empty
   * (`x509_empty_chain`), does not decode (`x509_parse`), is out of order (`x509_chain_order`: each
   * certificate must be issued by the next), or names no client id (`san_client_id`);
   * `CertificateKeyMismatch` when the leaf key is not of the suite's signature scheme
   * (`x509_signature_scheme`) or is not the private key's (`x509_key_mismatch`). Validity dates and
   * trust are checked later: by `generateKeypackage` and by the peers' authentication service.
   */
  static x509(ciphersuite: Ciphersuite, input: X509CredentialInput): Credential {
    const suite = assertCiphersuite(ciphersuite);
    const scheme = signatureSchemeOf(suite);
    if (input === null || typeof input !== "object") {
      throw new MlsKeypackagesError(ErrorCode.InvalidArgument, "expected { certificateChain, privateKey }");
    }
    const bad = (rule: X509CredentialRule, message: string, cause?: unknown): never => {
      throw new MlsRuleError(
        ErrorCode.InvalidCertificate,
        rule,
        message,
        {},
        cause === undefined ? undefined : { cause },
      );
    };
    const backend = x509Backend();
    // x509_parse, x509_empty_chain, x509_chain_order, san_client_id (src/pki/chain.ts).
    const read = backend.readCredentialChain(input.certificateChain);
    const ders = read.certificates;
    let clientId: ClientId;
    try {
      clientId = ClientId.parse(read.clientId);
    } catch (e) {
      if (!MlsKeypackagesError.is(e)) throw e;
      return bad("san_client_id", e instanceof Error ? e.message : "no client id in the SAN", e);
    }
    const key = { publicKey: read.publicKey, scheme: read.scheme };
    const mismatch = (rule: X509CredentialRule, message: string, cause?: unknown): never => {
      throw new MlsRuleError(
        ErrorCode.CertificateKeyMismatch,
        rule,
        message,
        {},
        cause === undefined ? undefined : { cause },
      );
    };
    if (key.scheme !== scheme) {
      mismatch(
        "x509_signature_scheme",
        `the leaf key is not a ${SignatureScheme[scheme]} key (suite ${suite})`,
      );
    }
    let privateKey: Uint8Array | undefined;
    let derived: Uint8Array | undefined;
    try {
      privateKey = backend.rawPrivateKey(input.privateKey, scheme);
      if (privateKey !== undefined) derived = signaturePublicKeyOf(scheme, privateKey);
    } catch (e) {
      mismatch("x509_key_mismatch", "the private key does not decode as a key of the suite's scheme", e);
    }
    if (privateKey === undefined)
      mismatch("x509_signature_scheme", `the private key is not a ${SignatureScheme[scheme]} key`);
    if (derived === undefined || !bytesEqual(derived, key.publicKey)) {
      mismatch("x509_key_mismatch", "the private key does not match the leaf certificate's public key");
    }
    const x509 = { credentialType: CredentialTypes.x509, certificates: ders } as const;
    const encoded = encode(x509, writeCredential);
    return new Credential(
      suite,
      clientId,
      CredentialType.X509,
      encoded,
      key.publicKey,
      privateKey as Uint8Array,
      ders,
    );
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
