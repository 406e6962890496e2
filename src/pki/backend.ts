/**
 * The X.509 backend: what the main entry needs of the certificate libraries (pkijs,
 * @peculiar/x509, asn1js), reached only through this registry so that the browser main bundle
 * stays free of them. `mls-keypackages/x509` (src/pki/index.ts) registers the implementation
 * when imported, as `mls-keypackages/sqlite` registers the SQLite keystore.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import type { SignatureScheme } from "../mls/ciphersuite.js";
import type { PemOrDer } from "./certificate.js";
import type { PkiEntry, PkiEntryKind } from "./environment.js";
import type { X509TrustStore, X509ValidationResult } from "./validate.js";

/** A credential's certificate chain as `Credential.x509` needs it (see `readCredentialChain`). */
export interface X509CredentialChain {
  /** DER certificates, leaf first. */
  certificates: Uint8Array[];
  /** Wire client id from the leaf's SAN (`<uuid>:<device hex>@<domain>`). */
  clientId: string;
  /** The leaf key as MLS carries it, and its signature scheme (undefined: not an MLS scheme). */
  publicKey: Uint8Array;
  scheme: SignatureScheme | undefined;
}

/** The X.509 functions the main-path code calls. */
export interface X509Backend {
  /** Decode and order-check a chain, read its client id (`MlsRuleError` `InvalidCertificate`). */
  readCredentialChain(chain: PemOrDer | readonly PemOrDer[]): X509CredentialChain;
  /** Raw private key of `scheme` from PKCS#8 or raw bytes; undefined when of another algorithm. */
  rawPrivateKey(input: PemOrDer, scheme: SignatureScheme): Uint8Array | undefined;
  /** The validity window of a DER certificate (RFC 5280 §4.1.2.5). */
  certificateWindow(der: Uint8Array): { notBefore: Date; notAfter: Date };
  /** The MLS client id bytes a chain's leaf names, or undefined. */
  clientIdOfChain(certificates: readonly Uint8Array[]): Uint8Array | undefined;
  /** RFC 5280 §6 path validation. */
  validateCertificateChain(
    chain: readonly Uint8Array[],
    trust: X509TrustStore,
    at: Date,
  ): Promise<X509ValidationResult>;
  /** PEM text of a DER object. */
  toPem(der: Uint8Array, tag?: string): string;
  /** Decode and check new PKI environment entries (CA certificates, CRLs). */
  parsePkiEntries(kind: PkiEntryKind, input: PemOrDer | readonly PemOrDer[]): PkiEntry[];
  /** Describe a stored PKI environment entry. */
  describePkiEntry(kind: PkiEntryKind, der: Uint8Array): PkiEntry;
}

let registered: X509Backend | undefined;

/** Register the X.509 backend (done by `import "mls-keypackages/x509"`). */
export function registerX509Support(backend: X509Backend): void {
  registered = backend;
}

/** The registered backend; throws `X509SupportNotLoaded` when `mls-keypackages/x509` was not imported. */
export function x509Backend(): X509Backend {
  if (registered === undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.X509SupportNotLoaded,
      'X.509 support is not loaded: import "mls-keypackages/x509" once (it registers itself)',
    );
  }
  return registered;
}

/** The registered backend, or undefined (for callers that degrade without it). */
export function x509BackendOrUndefined(): X509Backend | undefined {
  return registered;
}
