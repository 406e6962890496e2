/**
 * The certificate chain of an X.509 credential (RFC 9420 §5.3), as `Credential.x509` takes it:
 * decoded, in order (RFC 5280 §6.1: certificate i is issued by certificate i + 1), with the Wire
 * client id of its leaf's SAN and the leaf's MLS signature key.
 */
import { AuthorityKeyIdentifierExtension, SubjectKeyIdentifierExtension } from "@peculiar/x509";
import { ErrorCode, MlsKeypackagesError, MlsRuleError } from "../errors.js";
import type { X509CredentialChain } from "./backend.js";
import {
  derObjects,
  parseCertificate,
  subjectKey,
  type ParsedCertificate,
  type PemOrDer,
} from "./certificate.js";
import { extractIdentity, IdentityError } from "./identity.js";

function bad(rule: string, message: string, cause?: unknown): never {
  throw new MlsRuleError(
    ErrorCode.InvalidCertificate,
    rule,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Decode `input` (leaf first). Errors (`InvalidCertificate`, `details.rule`): `x509_parse`,
 * `x509_empty_chain`, `x509_chain_order`, `san_client_id`.
 */
export function readCredentialChain(input: PemOrDer | readonly PemOrDer[]): X509CredentialChain {
  let ders: Uint8Array[] = [];
  try {
    ders = derObjects(input);
  } catch (e) {
    bad("x509_parse", "the certificate chain is neither PEM nor DER", e);
  }
  if (ders.length === 0) bad("x509_empty_chain", "the certificate chain is empty");
  const chain: ParsedCertificate[] = ders.map((der, i) => {
    try {
      return parseCertificate(der);
    } catch (e) {
      return bad("x509_parse", `certificate ${i} of the chain does not decode`, e);
    }
  });
  // RFC 5280 §6.1: certificate i is issued by certificate i + 1 (names and key identifiers chain).
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i] as ParsedCertificate;
    const issuer = chain[i + 1] as ParsedCertificate;
    const aki = cert.x509.getExtension(AuthorityKeyIdentifierExtension)?.keyId;
    const ski = issuer.x509.getExtension(SubjectKeyIdentifierExtension)?.keyId;
    if (
      !cert.pkijs.issuer.isEqual(issuer.pkijs.subject) ||
      (aki !== undefined && ski !== undefined && aki !== ski)
    ) {
      bad(
        "x509_chain_order",
        `certificate ${i} of the chain is not issued by certificate ${i + 1} (leaf first)`,
      );
    }
  }
  const leaf = chain[0] as ParsedCertificate;
  let clientId: string;
  try {
    clientId = extractIdentity(leaf.x509).clientId;
  } catch (e) {
    if (!(e instanceof IdentityError) && !MlsKeypackagesError.is(e)) throw e;
    return bad("san_client_id", e instanceof Error ? e.message : "no client id in the SAN", e);
  }
  const key = subjectKey(leaf.pkijs);
  return { certificates: ders, clientId, publicKey: key.publicKey, scheme: key.scheme };
}

/** The validity window of a DER certificate (RFC 5280 §4.1.2.5); throws `InvalidArgument`. */
export function certificateWindow(der: Uint8Array): { notBefore: Date; notAfter: Date } {
  const cert = parseCertificate(der).x509;
  return { notBefore: cert.notBefore, notAfter: cert.notAfter };
}
