/** RFC 9420 §5.3 credentials. */

/** §5.3 / §17.5 CredentialType code points. */
export const CredentialTypes = { basic: 1, x509: 2 } as const;

/** §5.3: `Credential`; only the two types of RFC 9420 decode. */
export type Credential =
  | { readonly credentialType: 1; readonly identity: Uint8Array }
  | { readonly credentialType: 2; readonly certificates: readonly Uint8Array[] };
