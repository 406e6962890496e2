/**
 * TLS codec (RFC 9420 §2.1) of the §5.3 Credential:
 *
 *     struct { CredentialType credential_type;            // uint16, §17.5
 *              select (credential_type) {
 *                case basic: opaque identity<V>;
 *                case x509:  Certificate certificates<V>; // struct { opaque cert_data<V>; }
 *              }; } Credential;
 *
 * The body of a credential carries no length, so a type outside RFC 9420 cannot be skipped:
 * it is refused ("§2.1 unknown enum value"). Decoded byte fields are views into the input.
 */
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import { CredentialTypes, type Credential } from "./types.js";

const readCertificate = (r: Reader): Uint8Array => r.vec();
const writeCertificate = (w: Writer, cert: Uint8Array): void => {
  w.vec(cert);
};

/** §5.3 Credential. */
export function writeCredential(w: Writer, c: Credential): void {
  w.u16(c.credentialType);
  if (c.credentialType === CredentialTypes.basic) w.vec(c.identity);
  else if (c.credentialType === CredentialTypes.x509) w.vecOf(c.certificates, writeCertificate);
  else throw new TypeError(`unknown credential type ${(c as { credentialType: unknown }).credentialType}`);
}

/** §5.3 Credential (basic or x509). */
export function readCredential(r: Reader): Credential {
  const credentialType = r.u16();
  if (credentialType === CredentialTypes.basic) return { credentialType, identity: r.vec() };
  if (credentialType === CredentialTypes.x509)
    return { credentialType, certificates: r.vecOf(readCertificate) };
  // §2.1: the select has no case for this value and no length to skip it by.
  throw new DecodeError("§2.1 unknown enum value", `credential type ${credentialType}`);
}
