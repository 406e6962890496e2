/**
 * X.509 credentials in the session's authentication service (RFC 9420 §5.3.1): every X.509
 * credential the engine meets is validated against the session's PKI environment at the session
 * clock (RFC 5280 path, signatures, validity, CA basic constraints and key usage, SAN client id),
 * and its leaf key must be the leaf node's signature key (§5.3: "the end-entity certificate's
 * public key ... MUST match the LeafNode's signature_key"). The application's own service, when
 * given, is asked afterwards with the result in `input.x509`.
 */
import type {
  AuthenticationContext,
  AuthenticationInput,
  AuthenticationResult,
  AuthenticationService,
} from "../mls/credential/authentication.js";
import { CredentialTypes } from "../mls/credential/types.js";
import { isCiphersuite, signatureSchemeOf } from "../mls/ciphersuite.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { x509Backend } from "./backend.js";
import type { X509TrustStore, X509ValidationResult } from "./validate.js";

/**
 * What the session does with X.509 credentials (option `x509Policy` of `CoreCrypto.open`).
 * "Members" are credentials already in a group (leaves of a tree we join, updates, commit paths);
 * "joiners" are new ones (key packages we add, external joiners).
 */
export interface X509Policy {
  /**
   * Enforce the validation (default true). False: the result is still computed and handed to the
   * application's authentication service as `input.x509`, which then decides alone.
   */
  enforce?: boolean;
  /** Accept members whose certificate expired (default true, as CoreCrypto: reported as Expired). */
  allowExpiredMembers?: boolean;
  /** Accept members whose certificate is revoked (default true, as CoreCrypto: reported as Revoked). */
  allowRevokedMembers?: boolean;
  /** Accept new members with an expired certificate (default false). */
  allowExpiredJoiners?: boolean;
  /** Accept new members with a revoked certificate (default false). */
  allowRevokedJoiners?: boolean;
}

const JOINER_CONTEXTS: ReadonlySet<AuthenticationContext> = new Set(["keypackage", "external_join"]);

/** The input the engine gives, plus the X.509 validation result for X.509 credentials. */
export interface X509AuthenticationInput extends AuthenticationInput {
  readonly x509?: X509ValidationResult;
}

/**
 * The session's service: X.509 validation (per `policy`) in front of `inner` (the application's
 * service, or the default one).
 */
export function x509AuthenticationService(
  inner: AuthenticationService,
  trust: () => Promise<X509TrustStore>,
  now: () => Date,
  policy: X509Policy = {},
): AuthenticationService {
  const enforce = policy.enforce !== false;
  return {
    async validate(input: AuthenticationInput): Promise<AuthenticationResult> {
      const c = input.credential;
      if (c.credentialType !== CredentialTypes.x509 || c.certificates.length === 0)
        return inner.validate(input);
      // Without `mls-keypackages/x509` an enforcing session refuses X.509 credentials
      // (X509SupportNotLoaded); a non-enforcing one leaves the decision to `inner`.
      let backend;
      try {
        backend = x509Backend();
      } catch (e) {
        if (enforce) throw e;
        return inner.validate(input);
      }
      const result = await backend.validateCertificateChain(c.certificates, await trust(), now());
      if (enforce) {
        const refusal = judge(input, result, policy);
        if (refusal !== undefined) return { ok: false, reason: refusal };
      }
      const extended: X509AuthenticationInput = { ...input, x509: result };
      return inner.validate(extended);
    },
  };
}

/** Why the credential is refused, or undefined when the policy accepts it. */
function judge(input: AuthenticationInput, r: X509ValidationResult, policy: X509Policy): string | undefined {
  const who = r.identity?.clientId ?? `certificate ${r.serialNumber || "(undecodable)"}`;
  const refuse = (what: string): string => `X.509 credential of ${who} refused (${what})`;
  const joiner = JOINER_CONTEXTS.has(input.context);
  switch (r.status) {
    case "valid":
      break;
    case "expired":
      if (!(joiner ? policy.allowExpiredJoiners === true : policy.allowExpiredMembers !== false))
        return refuse(`expired: ${r.reason ?? ""}`);
      break;
    case "revoked":
      if (!(joiner ? policy.allowRevokedJoiners === true : policy.allowRevokedMembers !== false))
        return refuse(`revoked: ${r.reason ?? ""}`);
      break;
    default:
      return refuse(`${r.status}, ${r.rule ?? "rfc5280_path"}: ${r.reason ?? ""}`);
  }
  // §5.3: the leaf certificate's key is the leaf node's signature key, of the suite's scheme.
  if (!bytesEqual(r.leafPublicKey, input.signatureKey))
    return refuse("leaf_key: the certificate's key is not the leaf's signature key");
  if (isCiphersuite(input.ciphersuite) && r.signatureScheme !== signatureSchemeOf(input.ciphersuite))
    return refuse("signature_scheme: the certificate's key is not of the suite's signature scheme");
  return undefined;
}
