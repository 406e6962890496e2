import { ErrorCode, MlsKeypackagesError } from "../errors.js";

const KEY_LENGTH = 32;
const inspect = Symbol.for("nodejs.util.inspect.custom");

/**
 * A 32-byte key that encrypts a persistent keystore. Its bytes are never shown by
 * `toString()`, `JSON.stringify` or `util.inspect`.
 */
export class DatabaseKey {
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_LENGTH) {
      throw new MlsKeypackagesError(
        ErrorCode.InvalidDatabaseKey,
        `a database key must be exactly ${KEY_LENGTH} bytes`,
      );
    }
    this.#bytes = Uint8Array.from(bytes);
  }

  /** A fresh random key from the platform CSPRNG. */
  static generate(): DatabaseKey {
    return new DatabaseKey(globalThis.crypto.getRandomValues(new Uint8Array(KEY_LENGTH)));
  }

  /** A copy of the key bytes. Handle with care. */
  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  equals(other: DatabaseKey): boolean {
    const o = other.bytes();
    let diff = 0;
    for (let i = 0; i < KEY_LENGTH; i++) diff |= (o[i] as number) ^ (this.#bytes[i] as number);
    return diff === 0;
  }

  toString(): string {
    return "DatabaseKey(<redacted>)";
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect](): string {
    return this.toString();
  }
}
