/**
 * The expensive half of upload validation: RFC 9420 §10.1 through `Keypackage.verify()`
 * (both signatures, capabilities, lifetime), and the KeyPackageRef of a package that passes.
 * Runs on the verification workers (verifyWorker.ts) or, with `verifyWorkers: 0`, in the
 * server's own thread.
 */
import { InvalidKeypackageError } from "../errors.js";
import { Keypackage } from "../keypackage/keypackage.js";
import { unparsableChainResult } from "../pki/status.js";
import type { X509TrustStore, X509ValidationResult } from "../pki/validate.js";

/** Why a package failed verification: a rule of `DsRule` and a message. */
export interface VerifyFailure {
  ok: false;
  rule: string;
  message: string;
}

/** A package that verifies, with its KeyPackageRef (RFC 9420 §5.2). */
export interface VerifySuccess {
  ok: true;
  ref: Uint8Array;
}

export type VerifyResult = VerifySuccess | VerifyFailure;

/**
 * The message of a key package error without its "invalid key package (rule): " prefix: the
 * rule is a field of its own, and a 1 000-package rejection stays smaller.
 */
export function ruleMessage(err: InvalidKeypackageError): string {
  return err.message.replace(/^invalid key package \([^)]*\): /, "");
}

/** Verify one encoded package at `nowMs`; never throws. */
export async function verifyPackage(bytes: Uint8Array, nowMs: number): Promise<VerifyResult> {
  try {
    const kp = Keypackage.deserialize(bytes);
    await kp.verify({ now: new Date(nowMs) });
    return { ok: true, ref: kp.ref().hashRef() };
  } catch (err) {
    if (err instanceof InvalidKeypackageError)
      return { ok: false, rule: err.rule, message: ruleMessage(err) };
    const text = err instanceof Error ? err.message : String(err);
    return {
      ok: false,
      rule: "validation_error",
      message: `the package could not be validated: ${text.slice(0, 200)}`,
    };
  }
}

/**
 * RFC 5280 path validation of one X.509 chain at `nowMs` (src/pki/validate.ts, loaded on first
 * use); never throws: an unexpected failure is an "invalid" chain.
 */
export async function validateChain(
  chain: readonly Uint8Array[],
  trust: X509TrustStore,
  nowMs: number,
): Promise<X509ValidationResult> {
  try {
    const { validateCertificateChain } = await import("../pki/validate.js");
    return await validateCertificateChain(chain, trust, new Date(nowMs));
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    return unparsableChainResult(`the certificate chain could not be validated: ${text.slice(0, 200)}`);
  }
}
