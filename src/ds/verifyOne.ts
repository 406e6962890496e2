/**
 * The expensive half of upload validation: RFC 9420 §10.1 through `Keypackage.verify()`
 * (both signatures, capabilities, lifetime). Runs on the verification workers
 * (verifyWorker.ts) or, with `verifyWorkers: 0`, in the server's own thread.
 */
import { InvalidKeypackageError } from "../errors.js";
import { Keypackage } from "../keypackage/keypackage.js";

/** Why a package failed verification: a rule of `DsRule` and a message. */
export interface VerifyFailure {
  rule: string;
  message: string;
}

/** Undefined when the package verifies at `nowMs`; never throws. */
export async function verifyPackage(bytes: Uint8Array, nowMs: number): Promise<VerifyFailure | undefined> {
  try {
    await Keypackage.deserialize(bytes).verify({ now: new Date(nowMs) });
    return undefined;
  } catch (err) {
    if (err instanceof InvalidKeypackageError) return { rule: err.rule, message: err.message };
    const text = err instanceof Error ? err.message : String(err);
    return { rule: "validation_error", message: `the package could not be validated: ${text.slice(0, 200)}` };
  }
}
