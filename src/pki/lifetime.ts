/**
 * Key packages of X.509 credentials never outlive their certificate: `not_after` (RFC 9420 §7.2
 * Lifetime) is capped at the leaf certificate's notAfter (RFC 5280 §4.1.2.5), and no package is
 * made while the certificate is not yet valid or already expired at the session clock.
 * `not_before` keeps the usual clock-skew margin.
 */
import { ErrorCode, MlsRuleError } from "../errors.js";
import { decodeExact } from "../mls/codec/index.js";
import { readCredential } from "../mls/credential/codec.js";
import { CredentialTypes } from "../mls/credential/types.js";
import { x509Backend } from "./backend.js";

/** The leaf certificate's validity of a TLS-encoded X.509 credential; undefined for other types. */
export function credentialCertificateWindow(
  encodedCredential: Uint8Array,
): { notBefore: Date; notAfter: Date } | undefined {
  // §5.3 Credential starts with its uint16 credential_type: other types need no decoding.
  if (
    encodedCredential.length >= 2 &&
    ((encodedCredential[0] as number) << 8) + (encodedCredential[1] as number) !== CredentialTypes.x509
  )
    return undefined;
  const credential = decodeExact(encodedCredential, readCredential);
  if (credential.credentialType !== CredentialTypes.x509) return undefined;
  const leaf = credential.certificates[0];
  if (leaf === undefined) {
    throw new MlsRuleError(
      ErrorCode.InvalidCertificate,
      "x509_empty_chain",
      "the X.509 credential has no certificate",
    );
  }
  return x509Backend().certificateWindow(leaf);
}

/** The lifetime (seconds) of a key package of this credential made at `now`. */
export function capLifetimeToCertificate(
  encodedCredential: Uint8Array,
  lifetime: { notBefore: number; notAfter: number },
  now: Date,
): { notBefore: number; notAfter: number } {
  const window = credentialCertificateWindow(encodedCredential);
  if (window === undefined) return lifetime;
  if (now.getTime() < window.notBefore.getTime()) {
    throw new MlsRuleError(
      ErrorCode.InvalidCertificate,
      "x509_not_yet_valid",
      `the certificate is not valid before ${window.notBefore.toISOString()} (session clock ${now.toISOString()})`,
      { notBefore: window.notBefore.toISOString() },
    );
  }
  if (now.getTime() >= window.notAfter.getTime()) {
    throw new MlsRuleError(
      ErrorCode.InvalidCertificate,
      "x509_expired",
      `the certificate expired at ${window.notAfter.toISOString()} (session clock ${now.toISOString()})`,
      { notAfter: window.notAfter.toISOString() },
    );
  }
  return {
    notBefore: lifetime.notBefore,
    notAfter: Math.min(lifetime.notAfter, Math.floor(window.notAfter.getTime() / 1000)),
  };
}
