/**
 * Certificate, CRL and key input handling for X.509 credentials: PEM/DER decoding, the leaf's
 * MLS signature key and scheme, and PKCS#8 private keys. Parsing is done by @peculiar/x509 and
 * pkijs (asn1js); no ASN.1 is written by hand here.
 */
import * as x509 from "@peculiar/x509";
import * as pkijs from "pkijs";
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { SignatureScheme } from "../mls/ciphersuite.js";
import { bytesToHex, edSeed, leftPad } from "../mls/crypto/bytes.js";
import { LruCache } from "../mls/crypto/lru.js";
import { hash } from "../mls/hash.js";
import { OID_ED25519, OID_ED448 } from "./engine.js";

/** PEM text (one or more blocks) or DER bytes of certificates / CRLs. */
export type PemOrDer = string | Uint8Array;

const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const CURVES: Record<string, { scheme: SignatureScheme; size: number }> = {
  "1.2.840.10045.3.1.7": { scheme: SignatureScheme.ECDSA_SECP256R1_SHA256, size: 32 },
  "1.3.132.0.34": { scheme: SignatureScheme.ECDSA_SECP384R1_SHA384, size: 48 },
  "1.3.132.0.35": { scheme: SignatureScheme.ECDSA_SECP521R1_SHA512, size: 66 },
};

/** A copy backed by a plain ArrayBuffer (what WebCrypto and the ASN.1 libraries take). */
export function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** The dotted OID of an AlgorithmIdentifier's parameters, when they are an OID (named curve). */
function paramsOid(alg: pkijs.AlgorithmIdentifier): string | undefined {
  const p = alg.algorithmParams as
    { valueBlock?: { toString(): string }; idBlock?: { tagNumber: number } } | undefined;
  return p?.idBlock?.tagNumber === 6 && p.valueBlock !== undefined ? p.valueBlock.toString() : undefined;
}

function invalidArgument(message: string, cause?: unknown): MlsKeypackagesError {
  return new MlsKeypackagesError(
    ErrorCode.InvalidArgument,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

/** Every DER object in `input`: the blocks of a PEM text, or the bytes themselves. */
export function derObjects(input: PemOrDer | readonly PemOrDer[]): Uint8Array[] {
  const items = Array.isArray(input) ? (input as readonly PemOrDer[]) : [input as PemOrDer];
  const out: Uint8Array[] = [];
  for (const item of items) {
    if (typeof item === "string") {
      let blocks: ArrayBuffer[];
      try {
        blocks = x509.PemConverter.decode(item);
      } catch (e) {
        throw invalidArgument("not a PEM text", e);
      }
      if (blocks.length === 0) throw invalidArgument("no PEM block found");
      for (const b of blocks) out.push(new Uint8Array(b));
    } else if (item instanceof Uint8Array) {
      out.push(Uint8Array.from(item));
    } else {
      throw invalidArgument("expected PEM text or DER bytes");
    }
  }
  return out;
}

/** PEM text of a DER object (LF line endings, as CoreCrypto writes certificates). */
export function toPem(der: Uint8Array, tag = "CERTIFICATE"): string {
  return x509.PemConverter.encode(owned(der), tag).replace(/\r\n/g, "\n") + "\n";
}

/** A certificate parsed by both libraries (each is used for what it does best). */
export interface ParsedCertificate {
  der: Uint8Array;
  x509: x509.X509Certificate;
  pkijs: pkijs.Certificate;
}

// Decoding is the expensive part of validation (milliseconds per certificate with these
// libraries), and the same anchors, intermediates and member certificates come back all the
// time: parsed objects are cached by the SHA-256 of their DER and shared read-only.
const parsedCertificates = new LruCache<ParsedCertificate>(512);
const parsedCrls = new LruCache<pkijs.CertificateRevocationList>(64);

function derKey(der: Uint8Array): string {
  return bytesToHex(hash("SHA-256", der));
}

/** Parse one DER certificate (cached; treat the result as read-only); throws `InvalidArgument`. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const key = derKey(der);
  const hit = parsedCertificates.get(key);
  if (hit !== undefined) return hit;
  let parsed: ParsedCertificate;
  try {
    const cert = new x509.X509Certificate(owned(der));
    const asn = pkijs.Certificate.fromBER(owned(der));
    parsed = { der: Uint8Array.from(der), x509: cert, pkijs: asn };
  } catch (e) {
    throw invalidArgument("not a DER X.509 certificate", e);
  }
  parsedCertificates.set(key, parsed);
  byPkijs.set(parsed.pkijs, parsed);
  return parsed;
}

const byPkijs = new WeakMap<pkijs.Certificate, ParsedCertificate>();

/** The parsed certificate a pkijs object of `parseCertificate` belongs to. */
export function parsedOf(cert: pkijs.Certificate): ParsedCertificate {
  return byPkijs.get(cert) ?? parseCertificate(new Uint8Array(cert.toSchema().toBER(false)));
}

/** Parse one DER CRL with pkijs (cached, read-only); throws `InvalidArgument`. */
export function parseCrl(der: Uint8Array): pkijs.CertificateRevocationList {
  const key = derKey(der);
  const hit = parsedCrls.get(key);
  if (hit !== undefined) return hit;
  let crl: pkijs.CertificateRevocationList;
  try {
    crl = pkijs.CertificateRevocationList.fromBER(owned(der));
  } catch (e) {
    throw invalidArgument("not a DER X.509 CRL", e);
  }
  parsedCrls.set(key, crl);
  return crl;
}

/**
 * The subject public key as MLS carries it (RFC 9420 §5.1.2: raw Ed25519/Ed448 key, SEC1
 * uncompressed ECDSA point) and its signature scheme; `scheme` is undefined for other keys.
 */
export function subjectKey(cert: pkijs.Certificate): {
  publicKey: Uint8Array;
  scheme: SignatureScheme | undefined;
} {
  const spki = cert.subjectPublicKeyInfo;
  const publicKey = Uint8Array.from(spki.subjectPublicKey.valueBlock.valueHexView);
  const oid = spki.algorithm.algorithmId;
  if (oid === OID_ED25519 && publicKey.length === 32) return { publicKey, scheme: SignatureScheme.ED25519 };
  if (oid === OID_ED448 && publicKey.length === 57) return { publicKey, scheme: SignatureScheme.ED448 };
  if (oid === OID_EC_PUBLIC_KEY) {
    const curveOid = paramsOid(spki.algorithm);
    const curve = curveOid === undefined ? undefined : CURVES[curveOid];
    // SEC1 uncompressed point: 0x04 || x || y.
    if (curve !== undefined && publicKey.length === 1 + 2 * curve.size && publicKey[0] === 0x04) {
      return { publicKey, scheme: curve.scheme };
    }
  }
  return { publicKey, scheme: undefined };
}

const ED_SEED_LENGTH: Partial<Record<SignatureScheme, number>> = {
  [SignatureScheme.ED25519]: 32,
  [SignatureScheme.ED448]: 57,
};
const EC_SCALAR_LENGTH: Partial<Record<SignatureScheme, number>> = {
  [SignatureScheme.ECDSA_SECP256R1_SHA256]: 32,
  [SignatureScheme.ECDSA_SECP384R1_SHA384]: 48,
  [SignatureScheme.ECDSA_SECP521R1_SHA512]: 66,
};

/** The OID a PKCS#8 key of `scheme` must carry (curve OID for ECDSA). */
function pkcs8Matches(info: pkijs.PrivateKeyInfo, scheme: SignatureScheme): boolean {
  const oid = info.privateKeyAlgorithm.algorithmId;
  if (scheme === SignatureScheme.ED25519) return oid === OID_ED25519;
  if (scheme === SignatureScheme.ED448) return oid === OID_ED448;
  if (oid !== OID_EC_PUBLIC_KEY) return false;
  const curveOid = paramsOid(info.privateKeyAlgorithm);
  const curve = curveOid === undefined ? undefined : CURVES[curveOid];
  return curve?.scheme === scheme;
}

/**
 * A private key of `scheme` in the raw form the MLS engine stores (Ed seed, ECDSA scalar padded
 * to the field size) from PKCS#8 (RFC 5958, DER or PEM) or raw bytes. `undefined` when the key
 * is of another algorithm; `InvalidArgument` when it does not decode.
 */
export function rawPrivateKey(input: PemOrDer, scheme: SignatureScheme): Uint8Array | undefined {
  const der = typeof input === "string" ? derObjects(input)[0] : input;
  if (!(der instanceof Uint8Array))
    throw invalidArgument("expected a private key (PKCS#8 DER/PEM or raw bytes)");
  const seed = ED_SEED_LENGTH[scheme];
  const scalar = EC_SCALAR_LENGTH[scheme];
  // Raw keys: exactly the seed or scalar length and not a DER SEQUENCE.
  if (typeof input !== "string" && (der.length === seed || der.length === scalar) && der[0] !== 0x30) {
    return Uint8Array.from(der);
  }
  let info: pkijs.PrivateKeyInfo;
  try {
    info = pkijs.PrivateKeyInfo.fromBER(owned(der));
  } catch (e) {
    if (der.length === seed || der.length === scalar) return Uint8Array.from(der);
    throw invalidArgument("the private key is neither PKCS#8 nor a raw key", e);
  }
  if (!pkcs8Matches(info, scheme)) return undefined;
  if (seed !== undefined) {
    // RFC 8410 §7: the PKCS#8 form of the seed (the engine's one reader of it).
    try {
      return Uint8Array.from(edSeed(scheme === SignatureScheme.ED25519 ? "Ed25519" : "Ed448", der));
    } catch (e) {
      throw invalidArgument("malformed RFC 8410 private key", e);
    }
  }
  const ec = info.parsedKey;
  if (!(ec instanceof pkijs.ECPrivateKey) || scalar === undefined)
    throw invalidArgument("malformed EC private key");
  const d = ec.privateKey.valueBlock.valueHexView;
  if (d.length > scalar) throw invalidArgument("malformed EC private key");
  return leftPad(Uint8Array.from(d), scalar);
}
