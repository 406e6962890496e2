/** RFC 9420 §5.3 credential types. */
export enum CredentialType {
  Basic = 1,
  X509 = 2,
}
