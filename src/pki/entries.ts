/**
 * Decoding of the PKI environment's entries (src/pki/environment.ts stores them): trust anchors
 * and intermediates must be CA certificates (RFC 5280 §4.2.1.9 cA), CRLs must decode.
 */
import * as x509 from "@peculiar/x509";
import { ErrorCode, MlsRuleError } from "../errors.js";
import { bytesToHex } from "../mls/crypto/bytes.js";
import { hash } from "../mls/hash.js";
import { derObjects, owned, parseCertificate, parseCrl, type PemOrDer } from "./certificate.js";
import type { PkiEntry, PkiEntryKind } from "./environment.js";

/** A stored entry described (subject or issuer, validity). */
export function describePkiEntry(kind: PkiEntryKind, der: Uint8Array): PkiEntry {
  const id = bytesToHex(hash("SHA-256", der));
  if (kind === "crl") {
    const crl = new x509.X509Crl(owned(der));
    return { kind, id, der, name: crl.issuer, notBefore: crl.thisUpdate, notAfter: crl.nextUpdate };
  }
  const cert = new x509.X509Certificate(owned(der));
  return { kind, id, der, name: cert.subject, notBefore: cert.notBefore, notAfter: cert.notAfter };
}

/**
 * Every PEM block or DER object of `input`, checked. Errors: `InvalidCertificate` (`x509_parse`,
 * `x509_not_ca`).
 */
export function parsePkiEntries(kind: PkiEntryKind, input: PemOrDer | readonly PemOrDer[]): PkiEntry[] {
  let ders: Uint8Array[];
  try {
    ders = derObjects(input);
  } catch (e) {
    throw new MlsRuleError(ErrorCode.InvalidCertificate, "x509_parse", `not PEM or DER`, {}, { cause: e });
  }
  const entries = ders.map((der) => {
    try {
      if (kind === "crl") parseCrl(der);
      else {
        const cert = parseCertificate(der).x509;
        if (cert.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
          throw new MlsRuleError(
            ErrorCode.InvalidCertificate,
            "x509_not_ca",
            `${cert.subject} is not a CA certificate (basicConstraints cA)`,
          );
        }
      }
      return describePkiEntry(kind, der);
    } catch (e) {
      if (e instanceof MlsRuleError) throw e;
      throw new MlsRuleError(
        ErrorCode.InvalidCertificate,
        "x509_parse",
        `not a DER ${kind === "crl" ? "CRL" : "certificate"}`,
        {},
        { cause: e },
      );
    }
  });
  return entries;
}
