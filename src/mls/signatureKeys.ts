import { ed25519 } from "@noble/curves/ed25519.js";
import { ed448 } from "@noble/curves/ed448.js";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { SignatureScheme } from "./ciphersuite.js";

export interface SignatureKeyPair {
  /** Raw private key: 32-byte Ed25519 seed, 57-byte Ed448 seed, big-endian ECDSA scalar. Secret. */
  privateKey: Uint8Array;
  /** Raw Ed public key, or SEC1 uncompressed ECDSA point (as OpenMLS / CoreCrypto encode it). */
  publicKey: Uint8Array;
}

/**
 * Fresh signature key pair for a scheme. Synchronous and runtime-independent, so
 * `Credential.basic` can stay synchronous like CoreCrypto's.
 */
export function generateSignatureKeyPair(scheme: SignatureScheme): SignatureKeyPair {
  switch (scheme) {
    case SignatureScheme.ED25519: {
      const privateKey = ed25519.utils.randomSecretKey();
      return { privateKey, publicKey: ed25519.getPublicKey(privateKey) };
    }
    case SignatureScheme.ED448: {
      const privateKey = ed448.utils.randomSecretKey();
      return { privateKey, publicKey: ed448.getPublicKey(privateKey) };
    }
    case SignatureScheme.ECDSA_SECP256R1_SHA256: {
      const privateKey = p256.utils.randomSecretKey();
      return { privateKey, publicKey: p256.getPublicKey(privateKey, false) };
    }
    case SignatureScheme.ECDSA_SECP384R1_SHA384: {
      const privateKey = p384.utils.randomSecretKey();
      return { privateKey, publicKey: p384.getPublicKey(privateKey, false) };
    }
    case SignatureScheme.ECDSA_SECP521R1_SHA512: {
      const privateKey = p521.utils.randomSecretKey();
      return { privateKey, publicKey: p521.getPublicKey(privateKey, false) };
    }
  }
}

/** The public key (in the form above) of a raw private key; throws on a malformed key. */
export function signaturePublicKeyOf(scheme: SignatureScheme, privateKey: Uint8Array): Uint8Array {
  switch (scheme) {
    case SignatureScheme.ED25519:
      return ed25519.getPublicKey(privateKey);
    case SignatureScheme.ED448:
      return ed448.getPublicKey(privateKey);
    case SignatureScheme.ECDSA_SECP256R1_SHA256:
      return p256.getPublicKey(privateKey, false);
    case SignatureScheme.ECDSA_SECP384R1_SHA384:
      return p384.getPublicKey(privateKey, false);
    case SignatureScheme.ECDSA_SECP521R1_SHA512:
      return p521.getPublicKey(privateKey, false);
  }
}
