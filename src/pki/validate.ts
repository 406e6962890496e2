/**
 * RFC 5280 §6 certification path validation of an X.509 credential's chain (RFC 9420 §5.3.1),
 * with pkijs' `CertificateChainValidationEngine` (path building to a trust anchor, signatures,
 * validity at a given time, name chaining, CRLs, CA basic constraints), plus the end-entity
 * profile Wire's certificates follow: the leaf is not a CA (§4.2.1.9), its key usage allows
 * `digitalSignature` (§4.2.1.3), CAs allow `keyCertSign`, `pathLenConstraint` holds, and the SAN
 * names a Wire client id. Browser-safe.
 */
import * as pkijs from "pkijs";
import * as x509 from "@peculiar/x509";
import type { SignatureScheme } from "../mls/ciphersuite.js";
import { bytesToHex } from "../mls/crypto/bytes.js";
import { hash } from "../mls/hash.js";
import { pkiEngine } from "./engine.js";
import { parseCertificate, parsedOf, parseCrl, subjectKey, type ParsedCertificate } from "./certificate.js";
import { extractIdentity, IdentityError, type CertificateIdentity } from "./identity.js";
import { unparsableChainResult } from "./status.js";

/** The status of a certificate chain at a moment. */
export type X509Status = "valid" | "expired" | "not_yet_valid" | "revoked" | "invalid";

/** The rule a chain broke. */
export type X509Rule =
  | "parse"
  | "rfc5280_path"
  | "validity"
  | "crl"
  | "basic_constraints"
  | "key_usage"
  | "san_client_id"
  | "signature_scheme";

/** Trust anchors, intermediates and CRLs (DER). */
export interface X509TrustStore {
  anchors: readonly Uint8Array[];
  intermediates?: readonly Uint8Array[];
  crls?: readonly Uint8Array[];
}

export interface X509ValidationResult {
  status: X509Status;
  /** Set unless `status` is "valid". */
  rule?: X509Rule;
  /** For humans; never secret. */
  reason?: string;
  /** The Wire identity in the leaf (absent when the SAN names no client id). */
  identity?: CertificateIdentity;
  /** The leaf's key as MLS carries it (raw Ed key / SEC1 uncompressed point); empty if unparsable. */
  leafPublicKey: Uint8Array;
  /** The MLS signature scheme of the leaf key, when it is one. */
  signatureScheme?: SignatureScheme;
  notBefore: Date;
  notAfter: Date;
  /** Hex of the serial number's DER integer bytes. */
  serialNumber: string;
  /** SHA-256 hex of the leaf's DER. */
  thumbprint: string;
  /** Leaf DER. */
  certificate: Uint8Array;
}

const KU_DIGITAL_SIGNATURE = x509.KeyUsageFlags.digitalSignature;
const KU_KEY_CERT_SIGN = x509.KeyUsageFlags.keyCertSign;

function skiOf(cert: x509.X509Certificate): string | undefined {
  return cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
}

/**
 * Validate `chainDer` (leaf first; the rest are untrusted intermediates) against `trust` at `at`.
 * Never throws for a bad certificate: the answer is the status and the failed rule.
 */
export async function validateCertificateChain(
  chainDer: readonly Uint8Array[],
  trust: X509TrustStore,
  at: Date,
): Promise<X509ValidationResult> {
  const leafDer = chainDer[0];
  if (leafDer === undefined) return unparsableChainResult("empty certificate chain");
  const base: X509ValidationResult = {
    ...unparsableChainResult("the leaf certificate does not decode"),
    thumbprint: bytesToHex(hash("SHA-256", leafDer)),
    certificate: Uint8Array.from(leafDer),
  };
  let leaf: ParsedCertificate;
  try {
    leaf = parseCertificate(Uint8Array.from(leafDer));
  } catch {
    return base;
  }
  const key = subjectKey(leaf.pkijs);
  const result: X509ValidationResult = {
    ...base,
    status: "valid",
    leafPublicKey: key.publicKey,
    notBefore: leaf.x509.notBefore,
    notAfter: leaf.x509.notAfter,
    serialNumber: bytesToHex(leaf.pkijs.serialNumber.valueBlock.valueHexView),
  };
  delete result.rule;
  delete result.reason;
  if (key.scheme !== undefined) result.signatureScheme = key.scheme;
  const fail = (status: X509Status, rule: X509Rule, reason: string): X509ValidationResult => ({
    ...result,
    status,
    rule,
    reason,
  });

  try {
    result.identity = extractIdentity(leaf.x509);
  } catch (e) {
    if (!(e instanceof IdentityError)) throw e;
    return fail("invalid", "san_client_id", e.message);
  }
  if (key.scheme === undefined)
    return fail("invalid", "signature_scheme", "the leaf key is not an MLS signature key");

  // RFC 5280 §4.2.1.9: an end-entity certificate is not a CA.
  if (leaf.x509.getExtension(x509.BasicConstraintsExtension)?.ca === true) {
    return fail("invalid", "basic_constraints", "the leaf certificate is a CA certificate");
  }
  // §4.2.1.3: when key usage is present, the leaf must be allowed to sign (MLS signatures).
  const leafKu = leaf.x509.getExtension(x509.KeyUsagesExtension);
  if (leafKu !== null && (leafKu.usages & KU_DIGITAL_SIGNATURE) === 0) {
    return fail("invalid", "key_usage", "the leaf key usage does not include digitalSignature");
  }

  // Parse everything else; an undecodable intermediate or CRL is left out (and may break the path).
  const parse = (ders: readonly Uint8Array[]): pkijs.Certificate[] =>
    ders.flatMap((d) => {
      try {
        return [parseCertificate(d).pkijs];
      } catch {
        return [];
      }
    });
  const anchors = parse(trust.anchors);
  if (anchors.length === 0) return fail("invalid", "rfc5280_path", "no trust anchor is configured");
  const intermediates = [...parse(chainDer.slice(1)), ...parse(trust.intermediates ?? [])];
  const crls = (trust.crls ?? []).flatMap((d) => {
    try {
      return [parseCrl(d)];
    } catch {
      return [];
    }
  });

  const run = async (checkDate: Date) => {
    // pkijs takes the last certificate of `certs` as the end entity.
    const engine = new pkijs.CertificateChainValidationEngine({
      trustedCerts: anchors,
      certs: [...intermediates, leaf.pkijs],
      crls,
      checkDate,
    });
    const r = await engine.verify({ passedWhenNotRevValues: true }, pkiEngine());
    return { ok: r.result, code: r.resultCode, message: r.resultMessage, path: r.certificatePath ?? [] };
  };

  let outcome = await run(at);
  if (!outcome.ok && outcome.code === 8) {
    // Dates only (pkijs code 8): is the path sound at some moment when every certificate is valid?
    const nb = leaf.x509.notBefore.getTime();
    const na = leaf.x509.notAfter.getTime();
    const latestStart = Math.max(
      nb,
      ...[...anchors, ...intermediates].map((c) => c.notBefore.value.getTime()),
    );
    const candidates = [Math.floor((nb + na) / 2), Math.min(latestStart + 1000, na), na - 1000, nb + 1000];
    let again = outcome;
    for (const t of candidates) {
      again = await run(new Date(t));
      if (again.ok || again.code !== 8) break;
    }
    if (!again.ok && again.code !== 8) outcome = again;
    else {
      // Code 8 comes after pkijs has built a signed path to an anchor: only dates are wrong.
      const leafInWindow = nb <= at.getTime() && at.getTime() <= na;
      const path = again.ok ? again.path : leafInWindow ? [...intermediates, ...anchors] : [leaf.pkijs];
      const expired = path.some((c) => c.notAfter.value.getTime() < at.getTime());
      return expired
        ? fail("expired", "validity", `a certificate of the chain expired before ${at.toISOString()}`)
        : fail(
            "not_yet_valid",
            "validity",
            `a certificate of the chain is not valid before ${at.toISOString()}`,
          );
    }
  }
  if (!outcome.ok) {
    if (outcome.code === 12)
      return fail("revoked", "crl", outcome.message || "a certificate of the chain is revoked");
    if (outcome.code === 13) return fail("invalid", "crl", outcome.message);
    return fail(
      "invalid",
      "rfc5280_path",
      outcome.message || "no valid certification path to a trust anchor",
    );
  }

  // §5.3.3 / §6.3: revocation is permanent: a CRL past its nextUpdate (which pkijs skips) still
  // revokes what it lists, when its issuer is the certificate's issuer and its signature verifies.
  for (let i = 0; i + 1 < outcome.path.length; i++) {
    const cert = outcome.path[i] as pkijs.Certificate;
    const issuer = outcome.path[i + 1] as pkijs.Certificate;
    for (const crl of crls) {
      if (!crl.issuer.isEqual(issuer.subject) || !crl.isCertificateRevoked(cert)) continue;
      if (await crl.verify({ issuerCertificate: issuer }, pkiEngine()).catch(() => false)) {
        return fail("revoked", "crl", `${parsedOf(cert).x509.subject} is listed in a CRL of its issuer`);
      }
    }
  }

  // §4.2.1.3 / §4.2.1.9 on the CAs of the path (pkijs checks the cA flag): keyCertSign and pathLen.
  const path = outcome.path.map((c) => parsedOf(c).x509);
  for (let i = 1; i < path.length; i++) {
    const ca = path[i] as x509.X509Certificate;
    const ku = ca.getExtension(x509.KeyUsagesExtension);
    if (ku !== null && (ku.usages & KU_KEY_CERT_SIGN) === 0) {
      return fail("invalid", "key_usage", `CA certificate ${ca.subject} may not sign certificates`);
    }
    const bc = ca.getExtension(x509.BasicConstraintsExtension);
    // Intermediate CAs below path[i] (the self-issued root counts for nothing below itself).
    const below = i - 1;
    if (bc?.pathLength !== undefined && below > bc.pathLength) {
      return fail("invalid", "basic_constraints", `pathLenConstraint of ${ca.subject} exceeded`);
    }
  }
  // The leaf must chain by key identifier when both are present (a wrong AKI is a wrong issuer).
  const issuer = path[1];
  const aki = leaf.x509.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  const ski = issuer === undefined ? undefined : skiOf(issuer);
  if (aki !== undefined && ski !== undefined && aki !== ski) {
    return fail("invalid", "rfc5280_path", "the leaf's authority key identifier does not name its issuer");
  }
  return result;
}
