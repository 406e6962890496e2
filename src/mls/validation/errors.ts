/**
 * The errors of the group layer: every broken rule is an MlsRuleError whose `rule` names the
 * RFC 9420 section and check (e.g. "§12.2 duplicate_remove"), with the code of what was being
 * processed (InvalidCommit, InvalidWelcome, InvalidMessage, InvalidGroupInfo, …).
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { DecodeError } from "../codec/index.js";

/** Throws `MlsRuleError(code, rule, message)`. */
export function fail(
  code: ErrorCode,
  rule: string,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new MlsRuleError(code, rule, message, details);
}

/** An engine invariant broken: a bug, never caused by input. */
export function internal(message: string): never {
  throw new MlsRuleError(ErrorCode.InternalError, "internal", message);
}

/**
 * Runs `decode`; a malformed encoding (DecodeError) becomes `code` with the codec's rule, so a
 * bad Welcome is an InvalidWelcome whose rule says what was malformed ("§2.1 trailing bytes", …).
 */
export function decodeAs<T>(code: ErrorCode, what: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof DecodeError)
      throw new MlsRuleError(code, e.rule, `${what}: ${e.message}`, {}, { cause: e });
    throw e;
  }
}

/** Same as `decodeAs`, for an asynchronous step. */
export async function decodeAsAsync<T>(code: ErrorCode, what: string, decode: () => Promise<T>): Promise<T> {
  try {
    return await decode();
  } catch (e) {
    if (e instanceof DecodeError)
      throw new MlsRuleError(code, e.rule, `${what}: ${e.message}`, {}, { cause: e });
    throw e;
  }
}

/**
 * Rethrows `e` under `code` when it is one of our rule errors with another code (e.g. a
 * framing InvalidMessage met while processing a commit stays as is; a tree check written for
 * InvalidCommit becomes InvalidWelcome when joining). Other errors pass unchanged.
 */
export function recode(code: ErrorCode, e: unknown): never {
  if (
    e instanceof MlsRuleError &&
    e.code !== code &&
    e.code !== ErrorCode.CredentialRejected &&
    e.code !== ErrorCode.InternalError
  ) {
    const suffix = ` (${e.rule})`;
    const message = e.message.endsWith(suffix) ? e.message.slice(0, -suffix.length) : e.message;
    throw new MlsRuleError(code, e.rule, message, { ...e.details }, { cause: e });
  }
  throw e;
}

/** Rethrows a rule error of ours under `rule` (same code), e.g. a §8.2 check met while joining (§12.4.3.1). */
export function renamed(e: unknown, rule: string): never {
  if (e instanceof MlsRuleError) {
    const suffix = ` (${e.rule})`;
    const message = e.message.endsWith(suffix) ? e.message.slice(0, -suffix.length) : e.message;
    throw new MlsRuleError(e.code, rule, message, { ...e.details }, { cause: e });
  }
  throw e;
}
