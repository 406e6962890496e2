import { ClientId, parseWireClientId, type WireClientIdParts } from "../credential/clientId.js";
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { bytesToHex, fromBase64Url, hexToBytes, toBase64Url } from "../mls/crypto/bytes.js";

/**
 * Wire's identity URIs in an end-to-end identity certificate's SubjectAltName, as CoreCrypto 10
 * (rusty-jwt-tools `ClientId::try_from_uri`, `QualifiedHandle`) reads them:
 * - client id: `wireapp://<base64url(user uuid bytes)>%21<device id hex>@<domain>` (`%21` is `!`
 *   percent-encoded in the URI's userinfo; the unencoded `!` is accepted on parse),
 * - handle: `wireapp://%40<handle>@<domain>` (`%40` is `@`).
 * The certificate subject carries the display name (CN) and the domain (O).
 */
export const WIRE_URI_SCHEME = "wireapp://";

const UUID_HEX_RE = /^[0-9a-f]{32}$/;
const DEVICE_RE = /^[0-9a-f]{1,16}$/;

function uuidToBytes(uuid: string): Uint8Array {
  return hexToBytes(uuid.replace(/-/g, ""));
}

function bytesToUuid(bytes: Uint8Array): string {
  const h = bytesToHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The SAN URI of a Wire client id (`<uuid>:<device>@<domain>`). */
export function wireClientIdUri(clientId: ClientId | string): string {
  const parts = typeof clientId === "string" ? parseWireClientId(clientId) : clientId.wireParts();
  return `${WIRE_URI_SCHEME}${toBase64Url(uuidToBytes(parts.userId))}%21${parts.deviceId}@${parts.domain}`;
}

/** The SAN URI of a Wire handle (without a leading `@`) on a domain. */
export function wireHandleUri(handle: string, domain: string): string {
  const bare = handle.startsWith("@") ? handle.slice(1) : handle;
  return `${WIRE_URI_SCHEME}%40${bare}@${domain}`;
}

function invalid(uri: string, what: string): MlsKeypackagesError {
  return new MlsKeypackagesError(ErrorCode.InvalidClientId, `not a Wire ${what} URI: ${JSON.stringify(uri)}`);
}

/**
 * Parse a client id SAN URI into Wire's client id parts, or `undefined` when the URI is not of
 * that form (e.g. it is the handle URI). Throws `InvalidClientId` for a malformed `wireapp://` id.
 */
export function parseWireClientIdUri(uri: string): WireClientIdParts | undefined {
  if (!uri.startsWith(WIRE_URI_SCHEME)) return undefined;
  const rest = uri.slice(WIRE_URI_SCHEME.length);
  if (rest.startsWith("%40")) return undefined;
  const at = rest.lastIndexOf("@");
  if (at < 0) throw invalid(uri, "client id");
  const userinfo = rest.slice(0, at).replace(/%21/gi, "!");
  const domain = rest.slice(at + 1).toLowerCase();
  const bang = userinfo.indexOf("!");
  if (bang < 0) throw invalid(uri, "client id");
  let userBytes: Uint8Array;
  try {
    userBytes = fromBase64Url(userinfo.slice(0, bang));
  } catch {
    throw invalid(uri, "client id");
  }
  const deviceId = userinfo.slice(bang + 1).toLowerCase();
  const userHex = bytesToHex(userBytes);
  if (
    !UUID_HEX_RE.test(userHex) ||
    !DEVICE_RE.test(deviceId) ||
    domain.length === 0 ||
    /[\s/@:]/.test(domain)
  ) {
    throw invalid(uri, "client id");
  }
  return { userId: bytesToUuid(userBytes), deviceId, domain };
}

/** Parse a handle SAN URI (`wireapp://%40<handle>@<domain>`), or `undefined` when not of that form. */
export function parseWireHandleUri(uri: string): { handle: string; domain: string } | undefined {
  const prefix = `${WIRE_URI_SCHEME}%40`;
  if (!uri.toLowerCase().startsWith(prefix)) return undefined;
  const rest = uri.slice(prefix.length);
  const at = rest.lastIndexOf("@");
  if (at <= 0 || at === rest.length - 1) throw invalid(uri, "handle");
  return { handle: decodeURIComponent(rest.slice(0, at)), domain: rest.slice(at + 1).toLowerCase() };
}

/** The `ClientId` (Wire form `<uuid>:<device>@<domain>`) named by a client id SAN URI. */
export function clientIdFromWireUri(uri: string): ClientId | undefined {
  const parts = parseWireClientIdUri(uri);
  return parts === undefined ? undefined : ClientId.format(parts.userId, parts.deviceId, parts.domain);
}
