/**
 * `mls-keypackages/x509`: X.509 credentials (RFC 9420 §5.3, RFC 5280) with pkijs and
 * @peculiar/x509. Importing it once registers the X.509 backend the main entry uses
 * (`Credential.x509`, the PKI environment, certificate validation in the authentication
 * service); the main entry stays free of the certificate libraries.
 *
 *     import "mls-keypackages/x509";
 */
import { registerX509Support, type X509Backend } from "./backend.js";
import { rawPrivateKey, toPem } from "./certificate.js";
import { certificateWindow, readCredentialChain } from "./chain.js";
import { describePkiEntry, parsePkiEntries } from "./entries.js";
import { clientIdOfChain } from "./identity.js";
import { validateCertificateChain } from "./validate.js";

/** The backend this module registers. */
export const x509Support: X509Backend = {
  readCredentialChain,
  rawPrivateKey,
  certificateWindow,
  clientIdOfChain,
  validateCertificateChain,
  toPem,
  parsePkiEntries,
  describePkiEntry,
};

registerX509Support(x509Support);

export { registerX509Support, x509Backend, x509BackendOrUndefined } from "./backend.js";
export type { X509Backend, X509CredentialChain } from "./backend.js";
export { validateCertificateChain } from "./validate.js";
export type { X509Rule, X509Status, X509TrustStore, X509ValidationResult } from "./validate.js";
export { extractIdentity, IdentityError } from "./identity.js";
export type { CertificateIdentity } from "./identity.js";
export { toPem } from "./certificate.js";
export type { PemOrDer } from "./certificate.js";
export {
  wireClientIdUri,
  wireHandleUri,
  parseWireClientIdUri,
  parseWireHandleUri,
  clientIdFromWireUri,
} from "./wireUri.js";
export { createDevCa, devKeyAlgorithmFor } from "./devCa.js";
export type {
  DevCa,
  DevCaOptions,
  DevCertificate,
  DevCrl,
  DevDeviceCertificate,
  DevDeviceOptions,
  DevKeyAlgorithm,
  DevKeyUsage,
} from "./devCa.js";
