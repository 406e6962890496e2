/**
 * RFC 9420 §5.3.1 Credential validation: the application's authentication service (AS) decides
 * whether a credential is acceptable for the identity it presents and whether the signature key
 * in the leaf is bound to it. The engine asks it for every credential it accepts: key packages
 * we add, every leaf of a tree we join, leaf updates, external joiners, leaves on a commit path.
 */
import { CredentialTypes, type Credential } from "./types.js";

/** Where the credential was met (RFC 9420 §5.3.1 lists the moments a client must validate). */
export type AuthenticationContext = "keypackage" | "tree" | "update" | "external_join" | "commit_path";

/** What the authentication service is asked to validate. */
export interface AuthenticationInput {
  readonly credential: Credential;
  /** The leaf's signature public key, which the credential must be bound to. */
  readonly signatureKey: Uint8Array;
  /** The cipher suite code point of the group or key package. */
  readonly ciphersuite: number;
  readonly context: AuthenticationContext;
}

/** The answer: accepted, or refused with a reason (for humans; never secret). */
export type AuthenticationResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** An application-supplied authentication service (§5.3.1). */
export interface AuthenticationService {
  validate(input: AuthenticationInput): Promise<AuthenticationResult> | AuthenticationResult;
}

const ACCEPTED: AuthenticationResult = Object.freeze({ ok: true });

/**
 * The default service: only what can be judged without an identity provider.
 * §5.3: a Basic credential's identity names the member, so an empty one is refused (the member
 * would be invisible in the list of members); an X.509 credential without a certificate
 * (§5.3: `certificates[0]` must hold the leaf's key) is refused. Everything else is accepted.
 */
export const defaultAuthenticationService: AuthenticationService = Object.freeze({
  validate(input: AuthenticationInput): AuthenticationResult {
    const c = input.credential;
    // §5.3 basic: `identity` names the member; an empty one names nobody.
    if (c.credentialType === CredentialTypes.basic && c.identity.length === 0)
      return { ok: false, reason: "empty Basic credential identity" };
    // §5.3 x509: the chain starts with the end-entity certificate; an empty chain has none.
    if (c.credentialType === CredentialTypes.x509 && c.certificates.length === 0)
      return { ok: false, reason: "empty X.509 certificate chain" };
    return ACCEPTED;
  },
});
