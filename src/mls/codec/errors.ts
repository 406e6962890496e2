import { ErrorCode, MlsRuleError } from "../../errors.js";

/** Rules of the TLS presentation language as RFC 9420 §2.1 profiles it. */
export type CodecRule =
  | "§2.1.2 minimal varint"
  | "§2.1.2 varint length"
  | "§2.1 truncated"
  | "§2.1 trailing bytes"
  | "§2.1.1 optional presence"
  | "§2.1 size cap"
  | "§2.1 unknown enum value";

/** A malformed encoding. Callers rewrap it as the error of their object (InvalidWelcome, …). */
export class DecodeError extends MlsRuleError {
  constructor(rule: CodecRule | string, message: string) {
    super(ErrorCode.MalformedEncoding, rule, message);
    this.name = "DecodeError";
  }
}
