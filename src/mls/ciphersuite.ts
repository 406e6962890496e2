import { ErrorCode, MlsKeypackagesError } from "../errors.js";

/** RFC 9420 §17.1 cipher suites, by their registered names and code points. */
export enum Ciphersuite {
  MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 1,
  MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 2,
  MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 3,
  MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448 = 4,
  MLS_256_DHKEMP521_AES256GCM_SHA512_P521 = 5,
  MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448 = 6,
  MLS_256_DHKEMP384_AES256GCM_SHA384_P384 = 7,
}

/** TLS 1.3 SignatureScheme values used by the MLS cipher suites (RFC 9420 §17.1). */
export enum SignatureScheme {
  ECDSA_SECP256R1_SHA256 = 0x0403,
  ECDSA_SECP384R1_SHA384 = 0x0503,
  ECDSA_SECP521R1_SHA512 = 0x0603,
  ED25519 = 0x0807,
  ED448 = 0x0808,
}

export type HashName = "SHA-256" | "SHA-384" | "SHA-512";

interface SuiteInfo {
  scheme: SignatureScheme;
  hash: HashName;
}

const SUITES: Record<Ciphersuite, SuiteInfo> = {
  [Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519]: {
    scheme: SignatureScheme.ED25519,
    hash: "SHA-256",
  },
  [Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256]: {
    scheme: SignatureScheme.ECDSA_SECP256R1_SHA256,
    hash: "SHA-256",
  },
  [Ciphersuite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519]: {
    scheme: SignatureScheme.ED25519,
    hash: "SHA-256",
  },
  [Ciphersuite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448]: { scheme: SignatureScheme.ED448, hash: "SHA-512" },
  [Ciphersuite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521]: {
    scheme: SignatureScheme.ECDSA_SECP521R1_SHA512,
    hash: "SHA-512",
  },
  [Ciphersuite.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448]: {
    scheme: SignatureScheme.ED448,
    hash: "SHA-512",
  },
  [Ciphersuite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384]: {
    scheme: SignatureScheme.ECDSA_SECP384R1_SHA384,
    hash: "SHA-384",
  },
};

/** The suites CoreCrypto supports, in the order its key packages list them in capabilities. */
export const CORECRYPTO_CIPHERSUITES: readonly Ciphersuite[] = [1, 2, 3, 7, 5];

/** Every suite this library generates key packages for, in capability order (CoreCrypto's first). */
export const SUPPORTED_CIPHERSUITES: readonly Ciphersuite[] = [1, 2, 3, 7, 5, 4, 6];

export function isCiphersuite(value: unknown): value is Ciphersuite {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 7;
}

/** Throws `UnsupportedCiphersuite` unless `value` is a suite we support. */
export function assertCiphersuite(value: unknown): Ciphersuite {
  if (!isCiphersuite(value) || !SUPPORTED_CIPHERSUITES.includes(value)) {
    throw new MlsKeypackagesError(
      ErrorCode.UnsupportedCiphersuite,
      `unsupported cipher suite: ${String(value)}`,
      {
        ciphersuite: value,
      },
    );
  }
  return value;
}

/** The signature scheme of a cipher suite (RFC 9420 §17.1). */
export function signatureSchemeOf(ciphersuite: Ciphersuite): SignatureScheme {
  return SUITES[assertCiphersuite(ciphersuite)].scheme;
}

/** The hash function of a cipher suite. */
export function hashOf(ciphersuite: Ciphersuite): HashName {
  return SUITES[assertCiphersuite(ciphersuite)].hash;
}
