import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { bytesEqual, bytesToHex } from "../mls/crypto/bytes.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DEVICE_RE = /^[0-9a-f]{1,16}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The parts of Wire's client id form `<user-uuid>:<device-id-hex>@<domain>`. */
export interface WireClientIdParts {
  userId: string;
  deviceId: string;
  domain: string;
}

/**
 * An MLS client identity: opaque bytes (the Basic credential's identity).
 * Wire uses the UTF-8 of `<user-uuid>:<device-id-hex>@<domain>`; helpers parse and format it.
 */
export class ClientId {
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw new MlsKeypackagesError(ErrorCode.InvalidClientId, "a client id must be non-empty bytes");
    }
    this.#bytes = Uint8Array.from(bytes);
  }

  /** From Wire's string form; validated. */
  static parse(text: string): ClientId {
    parseWireClientId(text);
    return new ClientId(encoder.encode(text));
  }

  /** Build Wire's form from its parts (uuid lowercased, device id as lowercase hex). */
  static format(userId: string, deviceId: string | bigint, domain: string): ClientId {
    const device = typeof deviceId === "bigint" ? deviceId.toString(16) : deviceId.toLowerCase();
    return ClientId.parse(`${userId.toLowerCase()}:${device}@${domain}`);
  }

  /** Opaque bytes, no validation of any form. */
  static fromBytes(bytes: Uint8Array): ClientId {
    return new ClientId(bytes);
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** Wire's parts, or `InvalidClientId` when the bytes are not in that form. */
  wireParts(): WireClientIdParts {
    return parseWireClientId(this.toString());
  }

  /** The user id (uuid) part of Wire's form. */
  userId(): string {
    return this.wireParts().userId;
  }

  equals(other: ClientId): boolean {
    return bytesEqual(this.#bytes, other.#bytes);
  }

  /** UTF-8 text of the id, or `0x…` hex when the bytes are not UTF-8. */
  toString(): string {
    try {
      return decoder.decode(this.#bytes);
    } catch {
      return "0x" + bytesToHex(this.#bytes);
    }
  }
}

/** Parse `<user-uuid>:<device-id-hex>@<domain>`; throws `InvalidClientId`. */
export function parseWireClientId(text: string): WireClientIdParts {
  const colon = text.indexOf(":");
  const at = text.indexOf("@", colon + 1);
  const userId = colon < 0 ? "" : text.slice(0, colon);
  const deviceId = at < 0 ? "" : text.slice(colon + 1, at);
  const domain = at < 0 ? "" : text.slice(at + 1);
  if (!UUID_RE.test(userId) || !DEVICE_RE.test(deviceId) || domain.length === 0 || /[\s/@:]/.test(domain)) {
    throw new MlsKeypackagesError(
      ErrorCode.InvalidClientId,
      `not a Wire client id (<user-uuid>:<device-id-hex>@<domain>): ${JSON.stringify(text)}`,
    );
  }
  return { userId, deviceId, domain };
}
