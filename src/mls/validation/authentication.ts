/**
 * The library's policy around the application's authentication service (RFC 9420 §5.3.1), put
 * between the service and the engine:
 *
 * - a credential that names nobody (an empty Basic identity, an empty X.509 chain) is refused
 *   whatever the service says: such a member could not be listed by its client id;
 * - a service that throws, or answers anything but `{ ok: true }`, refuses (fail closed);
 * - a refusal the engine reports (MlsRuleError CredentialRejected, "§5.3.1 credential") is
 *   explained: which leaf, its client id, the context it was met in, the service's reason, and
 *   the service's own error as the cause.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import type {
  AuthenticationContext,
  AuthenticationInput,
  AuthenticationResult,
  AuthenticationService,
} from "../credential/authentication.js";
import { CredentialTypes, type Credential } from "../credential/types.js";
import { bytesToHex } from "../crypto/bytes.js";

export const CREDENTIAL_RULE = "§5.3.1 credential";

/** What a refusal was about, kept to explain the engine's error. */
interface Refusal {
  readonly input: AuthenticationInput;
  readonly reason: string;
  readonly cause: unknown;
}

/** A Basic identity as text (hex when not UTF-8), for messages; undefined for X.509. */
export function clientIdText(credential: Credential): string | undefined {
  if (credential.credentialType !== CredentialTypes.basic || credential.identity.length === 0)
    return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(credential.identity);
  } catch {
    return `0x${bytesToHex(credential.identity)}`;
  }
}

const ACCEPTED: AuthenticationResult = Object.freeze({ ok: true });

/** The application's service behind the library's policy (see the module comment). */
export class AuthenticationGate implements AuthenticationService {
  readonly #inner: AuthenticationService;
  #last: Refusal | undefined;

  constructor(inner: AuthenticationService) {
    this.#inner = inner;
  }

  async validate(input: AuthenticationInput): Promise<AuthenticationResult> {
    const c = input.credential;
    // §5.3: the identity names the member; an empty one names nobody.
    if (c.credentialType === CredentialTypes.basic && c.identity.length === 0)
      return this.#refuse(input, "empty Basic credential identity");
    if (c.credentialType === CredentialTypes.x509 && c.certificates.length === 0)
      return this.#refuse(input, "empty X.509 certificate chain");
    let result: unknown;
    try {
      result = await this.#inner.validate(input);
    } catch (err) {
      return this.#refuse(
        input,
        `the authentication service failed${err instanceof Error ? `: ${err.message}` : ""}`,
        err,
      );
    }
    const r = result as { ok?: unknown; reason?: unknown } | undefined;
    if (r?.ok === true) return ACCEPTED;
    return this.#refuse(
      input,
      r?.ok === false && typeof r.reason === "string" ? r.reason : "refused by the authentication service",
    );
  }

  #refuse(input: AuthenticationInput, reason: string, cause?: unknown): AuthenticationResult {
    this.#last = { input, reason, cause };
    return { ok: false, reason };
  }

  /**
   * Rethrows `e`; a CredentialRejected of the engine comes back naming the member: `who` (e.g.
   * "key package #1") or its leaf index, its client id, the context and the reason, with the
   * service's own error as cause.
   */
  explain(e: unknown, who?: { readonly text: string; readonly details: Record<string, unknown> }): never {
    const last = this.#last;
    if (!(e instanceof MlsRuleError) || e.code !== ErrorCode.CredentialRejected || last === undefined)
      throw e;
    const leafIndex = typeof e.details.leafIndex === "number" ? e.details.leafIndex : undefined;
    const clientId = clientIdText(last.input.credential);
    const where = who?.text ?? (leafIndex === undefined ? "a member" : `leaf ${leafIndex}`);
    throw new MlsRuleError(
      ErrorCode.CredentialRejected,
      CREDENTIAL_RULE,
      `the credential of ${clientId === undefined ? where : `${where} (${clientId})`} was refused: ${last.reason}`,
      {
        ...(leafIndex === undefined ? {} : { leafIndex }),
        ...(who?.details ?? {}),
        ...(clientId === undefined ? {} : { clientId }),
        context: last.input.context,
        reason: last.reason,
      },
      { cause: last.cause ?? e },
    );
  }
}

/** §5.3.1 one credential through `gate`, refused as CredentialRejected naming `who`. */
export async function authenticate(
  gate: AuthenticationGate,
  input: { readonly credential: Credential; readonly signatureKey: Uint8Array; readonly ciphersuite: number },
  context: AuthenticationContext,
  who: { readonly text: string; readonly details: Record<string, unknown> },
): Promise<void> {
  const r = await gate.validate({ ...input, context });
  if (r.ok) return;
  gate.explain(new MlsRuleError(ErrorCode.CredentialRejected, CREDENTIAL_RULE, r.reason), who);
}
