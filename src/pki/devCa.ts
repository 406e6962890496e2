/**
 * A development PKI for Wire end-to-end identity: root CA, intermediate CA, device certificates
 * with Wire's SAN URIs, CRLs. NOT FOR PRODUCTION: keys are generated in memory and returned in the
 * clear, there is no policy, no audit, no protection of the CA keys.
 *
 * Browser-safe: WebCrypto (`globalThis.crypto.subtle`) and @peculiar/x509 only.
 * Certificate profile follows RFC 5280 §4.2 (basic constraints, key usage, key identifiers) and the
 * shape of Wire's ACME-issued certificates (subject O = domain, CN = display name; SAN URIs, see
 * `wireUri.ts`; extended key usage clientAuth).
 */
import * as x509 from "@peculiar/x509";
import { signatureSchemeOf, SignatureScheme, type Ciphersuite } from "../mls/ciphersuite.js";
import { bytesToHex, fromBase64Url } from "../mls/crypto/bytes.js";
import type { ClientId } from "../credential/clientId.js";
import { toPem } from "./certificate.js";
import { wireClientIdUri, wireHandleUri } from "./wireUri.js";

/** Key algorithms of CA and device keys. Device keys must match the suite's signature scheme. */
export type DevKeyAlgorithm = "Ed25519" | "P-256" | "P-384" | "P-521";

/** RFC 5280 §4.2.1.3 key usage bits, by name. */
export type DevKeyUsage =
  | "digitalSignature"
  | "nonRepudiation"
  | "keyEncipherment"
  | "dataEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "cRLSign";

/** A certificate with its key pair. */
export interface DevCertificate {
  /** DER of the certificate. */
  der: Uint8Array<ArrayBuffer>;
  /** PEM of the certificate. */
  pem: string;
  /** Hex serial number (as @peculiar/x509 and CRL entries spell it). */
  serialNumber: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  algorithm: DevKeyAlgorithm;
  /** Raw public key as MLS carries it: 32-byte Ed25519 key or SEC1 uncompressed ECDSA point. */
  publicKey: Uint8Array;
  /**
   * Private key, PKCS#8 DER / PEM. Absent when the certificate was issued for a caller's public key.
   * Secret: never log it.
   */
  privateKeyPkcs8?: Uint8Array;
  privateKeyPem?: string;
  /** Raw private key as the MLS engine stores it (Ed25519 seed, ECDSA scalar). Secret. */
  signaturePrivateKey?: Uint8Array;
}

/** A device certificate and its chain. */
export interface DevDeviceCertificate extends DevCertificate {
  /** Leaf first, then the issuing intermediate (without the root), DER. */
  chain: Uint8Array<ArrayBuffer>[];
  /** The same chain as concatenated PEM. */
  chainPem: string;
  clientIdUri: string;
  handleUri: string;
}

export interface DevCrl {
  der: Uint8Array<ArrayBuffer>;
  pem: string;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Hex serials listed. */
  revoked: string[];
}

export interface DevCaOptions {
  /** Clock (Unix ms) used for default validity periods; default `Date.now()`. */
  now?: number;
  /** Key algorithm of root and intermediate; default "P-256". */
  algorithm?: DevKeyAlgorithm;
  /** Organisation in the CA subjects; default "mlskp dev". */
  organization?: string;
  /** Root validity, default now − 1 h … now + 10 years. */
  rootNotBefore?: Date;
  rootNotAfter?: Date;
  /** Intermediate validity, default now − 1 h … now + 5 years. */
  intermediateNotBefore?: Date;
  intermediateNotAfter?: Date;
  /** Put this CRL distribution point (a URL) in issued device certificates (RFC 5280 §4.2.1.13). */
  crlDistributionPoint?: string;
}

export interface DevDeviceOptions {
  /** Wire client id `<uuid>:<device-hex>@<domain>`. */
  clientId: ClientId | string;
  /** Wire handle without `@`. */
  handle: string;
  /** Display name (subject CN); default the handle. */
  displayName?: string;
  /** Device key algorithm; default "Ed25519". Ignored when `publicKey` is given with `algorithm`. */
  algorithm?: DevKeyAlgorithm;
  /**
   * Certify this raw MLS signature public key (e.g. a credential's) instead of generating a key pair;
   * `algorithm` must then name its algorithm. No private key is returned.
   */
  publicKey?: Uint8Array;
  /** Validity; default now − 5 min … now + 90 days. Use past / future dates for expired / not-yet-valid. */
  notBefore?: Date;
  notAfter?: Date;
  /** Key usage; default ["digitalSignature"]. Anything without digitalSignature is a "wrong key usage". */
  keyUsage?: DevKeyUsage[];
  /** Issue from the root directly instead of the intermediate. */
  issuer?: "intermediate" | "root";
}

export interface DevCa {
  root: DevCertificate;
  intermediate: DevCertificate;
  /** Issue a device certificate for a Wire client id. */
  issueDevice(options: DevDeviceOptions): Promise<DevDeviceCertificate>;
  /** Mark a certificate (or hex serial) issued by the intermediate as revoked in the next `crl()`. */
  revoke(certificate: DevCertificate | string, revocationDate?: Date): void;
  /** A CRL signed by the intermediate (RFC 5280 §5) listing the revoked serials. */
  crl(options?: { thisUpdate?: Date; nextUpdate?: Date }): Promise<DevCrl>;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

const KEY_USAGE_BITS: Record<DevKeyUsage, x509.KeyUsageFlags> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  nonRepudiation: x509.KeyUsageFlags.nonRepudiation,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};

/** The device key algorithm of a cipher suite's signature scheme (Ed448 has no WebCrypto support). */
export function devKeyAlgorithmFor(ciphersuite: Ciphersuite): DevKeyAlgorithm {
  switch (signatureSchemeOf(ciphersuite)) {
    case SignatureScheme.ED25519:
      return "Ed25519";
    case SignatureScheme.ECDSA_SECP256R1_SHA256:
      return "P-256";
    case SignatureScheme.ECDSA_SECP384R1_SHA384:
      return "P-384";
    case SignatureScheme.ECDSA_SECP521R1_SHA512:
      return "P-521";
    default:
      throw new TypeError(`no X.509 dev key algorithm for ciphersuite ${ciphersuite}`);
  }
}

function keyParams(alg: DevKeyAlgorithm): EcKeyImportParams | Algorithm {
  return alg === "Ed25519" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: alg };
}

function signingAlgorithm(alg: DevKeyAlgorithm): Algorithm | EcdsaParams {
  switch (alg) {
    case "Ed25519":
      return { name: "Ed25519" };
    case "P-256":
      return { name: "ECDSA", hash: "SHA-256" } as EcdsaParams;
    case "P-384":
      return { name: "ECDSA", hash: "SHA-384" } as EcdsaParams;
    case "P-521":
      return { name: "ECDSA", hash: "SHA-512" } as EcdsaParams;
  }
}

function subtle(): SubtleCrypto {
  return globalThis.crypto.subtle;
}

async function generateKeys(alg: DevKeyAlgorithm): Promise<CryptoKeyPair> {
  return (await subtle().generateKey(keyParams(alg), true, ["sign", "verify"])) as CryptoKeyPair;
}

async function exportRawPublic(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle().exportKey("raw", key));
}

async function exportPrivate(
  key: CryptoKey,
  alg: DevKeyAlgorithm,
): Promise<{ pkcs8: Uint8Array; pem: string; raw: Uint8Array }> {
  const pkcs8 = new Uint8Array(await subtle().exportKey("pkcs8", key));
  let raw: Uint8Array;
  if (alg === "Ed25519") {
    // RFC 8410 §7: the PKCS#8 of Ed25519 ends with the 32-byte seed.
    raw = pkcs8.slice(pkcs8.length - 32);
  } else {
    const jwk = await subtle().exportKey("jwk", key);
    raw = fromBase64Url(jwk.d ?? "");
  }
  const pem = toPem(pkcs8, "PRIVATE KEY");
  return { pkcs8, pem, raw };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function randomSerial(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] as number) & 0x7f; // positive INTEGER (RFC 5280 §4.1.2.2)
  if (b[0] === 0) b[0] = 1;
  return bytesToHex(b);
}

function certificateOf(
  cert: x509.X509Certificate,
  alg: DevKeyAlgorithm,
  publicKey: Uint8Array,
  priv?: { pkcs8: Uint8Array; pem: string; raw: Uint8Array },
): DevCertificate {
  const out: DevCertificate = {
    der: new Uint8Array(cert.rawData),
    pem: toPem(new Uint8Array(cert.rawData)),
    serialNumber: cert.serialNumber,
    subject: cert.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    algorithm: alg,
    publicKey,
  };
  if (priv !== undefined) {
    out.privateKeyPkcs8 = priv.pkcs8;
    out.privateKeyPem = priv.pem;
    out.signaturePrivateKey = priv.raw;
  }
  return out;
}

interface Signer {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  alg: DevKeyAlgorithm;
}

async function caExtensions(
  publicKey: CryptoKey,
  issuerKey: CryptoKey,
  pathLength?: number,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
}

/**
 * Create a development PKI (root → intermediate). NOT FOR PRODUCTION.
 * The CA private keys are returned (PKCS#8) so a PKI can be written to disk by `mlskp pki dev-ca`.
 */
export async function createDevCa(options: DevCaOptions = {}): Promise<DevCa> {
  const now = options.now ?? Date.now();
  const alg = options.algorithm ?? "P-256";
  const org = options.organization ?? "mlskp dev";
  const rootName = `CN=${org} Root CA (development only),O=${org}`;
  const intName = `CN=${org} Intermediate CA (development only),O=${org}`;

  const rootKeys = await generateKeys(alg);
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: rootName,
    notBefore: options.rootNotBefore ?? new Date(now - 60 * MINUTE),
    notAfter: options.rootNotAfter ?? new Date(now + 3650 * DAY),
    keys: rootKeys,
    signingAlgorithm: signingAlgorithm(alg),
    extensions: await caExtensions(rootKeys.publicKey, rootKeys.publicKey),
  });

  const intKeys = await generateKeys(alg);
  const intCert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: intName,
    issuer: rootCert.subject,
    notBefore: options.intermediateNotBefore ?? new Date(now - 60 * MINUTE),
    notAfter: options.intermediateNotAfter ?? new Date(now + 1825 * DAY),
    publicKey: intKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: signingAlgorithm(alg),
    extensions: await caExtensions(intKeys.publicKey, rootKeys.publicKey, 0),
  });

  const root: Signer = { cert: rootCert, keys: rootKeys, alg };
  const intermediate: Signer = { cert: intCert, keys: intKeys, alg };
  const revoked = new Map<string, Date>();

  const rootOut = certificateOf(
    rootCert,
    alg,
    await exportRawPublic(rootKeys.publicKey),
    await exportPrivate(rootKeys.privateKey, alg),
  );
  const intOut = certificateOf(
    intCert,
    alg,
    await exportRawPublic(intKeys.publicKey),
    await exportPrivate(intKeys.privateKey, alg),
  );

  async function issueDevice(o: DevDeviceOptions): Promise<DevDeviceCertificate> {
    const devAlg = o.algorithm ?? "Ed25519";
    const signer = o.issuer === "root" ? root : intermediate;
    let publicKey: CryptoKey;
    let priv: { pkcs8: Uint8Array; pem: string; raw: Uint8Array } | undefined;
    let rawPublic: Uint8Array;
    if (o.publicKey !== undefined) {
      rawPublic = Uint8Array.from(o.publicKey);
      publicKey = await subtle().importKey("raw", toArrayBuffer(rawPublic), keyParams(devAlg), true, [
        "verify",
      ]);
    } else {
      const keys = await generateKeys(devAlg);
      publicKey = keys.publicKey;
      rawPublic = await exportRawPublic(keys.publicKey);
      priv = await exportPrivate(keys.privateKey, devAlg);
    }
    const clientIdUri = wireClientIdUri(o.clientId);
    const domain = clientIdUri.slice(clientIdUri.lastIndexOf("@") + 1);
    const handleUri = wireHandleUri(o.handle, domain);
    const usage = (o.keyUsage ?? ["digitalSignature"]).reduce((acc, u) => acc | KEY_USAGE_BITS[u], 0);
    const extensions: x509.Extension[] = [
      new x509.KeyUsagesExtension(usage, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(signer.keys.publicKey),
      new x509.SubjectAlternativeNameExtension([
        { type: "url", value: handleUri },
        { type: "url", value: clientIdUri },
      ]),
    ];
    if (options.crlDistributionPoint !== undefined) {
      extensions.push(new x509.CRLDistributionPointsExtension([options.crlDistributionPoint]));
    }
    const now2 = options.now ?? Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // Wire's profile: O = domain, CN = display name.
      subject: [{ O: [domain] }, { CN: [o.displayName ?? o.handle] }],
      issuer: signer.cert.subject,
      notBefore: o.notBefore ?? new Date(now2 - 5 * MINUTE),
      notAfter: o.notAfter ?? new Date(now2 + 90 * DAY),
      publicKey,
      signingKey: signer.keys.privateKey,
      signingAlgorithm: signingAlgorithm(signer.alg),
      extensions,
    });
    const leaf = certificateOf(cert, devAlg, rawPublic, priv);
    const chainCerts = o.issuer === "root" ? [leaf] : [leaf, intOut];
    return {
      ...leaf,
      chain: chainCerts.map((c) => c.der),
      chainPem: chainCerts.map((c) => c.pem).join(""),
      clientIdUri,
      handleUri,
    };
  }

  function revoke(certificate: DevCertificate | string, revocationDate?: Date): void {
    const serial = typeof certificate === "string" ? certificate.toLowerCase() : certificate.serialNumber;
    revoked.set(serial, revocationDate ?? new Date(options.now ?? Date.now()));
  }

  async function crl(o: { thisUpdate?: Date; nextUpdate?: Date } = {}): Promise<DevCrl> {
    const t = options.now ?? Date.now();
    const thisUpdate = o.thisUpdate ?? new Date(t - 5 * MINUTE);
    const nextUpdate = o.nextUpdate ?? new Date(t + 7 * DAY);
    const list = await x509.X509CrlGenerator.create({
      issuer: intermediate.cert.subject,
      thisUpdate,
      nextUpdate,
      signingKey: intermediate.keys.privateKey,
      signingAlgorithm: signingAlgorithm(intermediate.alg),
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(intermediate.keys.publicKey)],
      entries: [...revoked].map(([serialNumber, revocationDate]) => ({
        serialNumber,
        revocationDate,
        reason: x509.X509CrlReason.keyCompromise,
      })),
    });
    return {
      der: new Uint8Array(list.rawData),
      // RFC 7468 §5: the label of a CRL is "X509 CRL" (@peculiar/x509 writes "CRL").
      pem: toPem(new Uint8Array(list.rawData), "X509 CRL"),
      thisUpdate,
      nextUpdate,
      revoked: [...revoked.keys()],
    };
  }

  return { root: rootOut, intermediate: intOut, issueDevice, revoke, crl };
}
