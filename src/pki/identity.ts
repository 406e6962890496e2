/**
 * Wire end-to-end identity read from a device certificate, as CoreCrypto 10 reads it
 * (e2e-identity `WireIdentityReader::extract_identity`, openmls' X.509 `identity()`):
 * - the client id from the SAN URI `wireapp://<base64url uuid>%21<device hex>@<domain>`, turned into
 *   the MLS client id `<uuid>:<device hex>@<domain>` (the bytes CoreCrypto uses as the member id),
 * - the handle from the SAN URI `wireapp://%40<handle>@<domain>`,
 * - the display name from the subject CN and the domain from the subject O,
 * - the "MLS thumbprint": RFC 7638 JWK thumbprint of the signature key, hashed with the suite's
 *   hash, base64url (as CoreCrypto computes it for X.509 and Basic credentials alike).
 */
import * as x509 from "@peculiar/x509";
import { ClientId } from "../credential/clientId.js";
import { bytesToHex } from "../mls/crypto/bytes.js";
import { LruCache } from "../mls/crypto/lru.js";
import { hash } from "../mls/hash.js";
import { parseWireClientIdUri, parseWireHandleUri } from "./wireUri.js";

/** The identity claims of a device certificate. */
export interface CertificateIdentity {
  /** Wire's MLS client id `<uuid>:<device hex>@<domain>` (what `ClientId.parse` takes). */
  clientId: string;
  /** The SAN URI it was read from. */
  clientIdUri: string;
  /** Handle without `@`, e.g. `alice_wire`. */
  handle?: string;
  /** The handle SAN URI as in the certificate (`wireapp://%40alice_wire@wire.com`), CoreCrypto's `handle`. */
  handleUri?: string;
  /** Subject CN. */
  displayName?: string;
  /** Subject O. */
  domain?: string;
}

/** Why no identity could be read (rule `san_client_id`). */
export class IdentityError extends Error {}

/** Read the Wire identity of a certificate; throws `IdentityError` when there is no client id URI. */
export function extractIdentity(cert: x509.X509Certificate): CertificateIdentity {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (san === null) throw new IdentityError("the certificate has no SubjectAltName");
  let clientId: string | undefined;
  let clientIdUri: string | undefined;
  let handle: string | undefined;
  let handleUri: string | undefined;
  for (const name of san.names.items) {
    if (name.type !== "url") continue;
    // As CoreCrypto: try the URI as a client id first, then as a handle.
    let parts;
    try {
      parts = parseWireClientIdUri(name.value);
    } catch {
      throw new IdentityError(`malformed Wire client id URI in the SAN: ${name.value}`);
    }
    if (parts !== undefined) {
      if (clientId !== undefined) throw new IdentityError("more than one Wire client id URI in the SAN");
      clientId = ClientId.format(parts.userId, parts.deviceId, parts.domain).toString();
      clientIdUri = name.value;
      continue;
    }
    try {
      const h = parseWireHandleUri(name.value);
      if (h !== undefined && handle === undefined) {
        handle = h.handle;
        handleUri = name.value;
      }
    } catch {
      // Not a handle either: ignored, as CoreCrypto ignores other URIs.
    }
  }
  if (clientId === undefined || clientIdUri === undefined) {
    throw new IdentityError("no Wire client id URI (wireapp://…) in the SAN");
  }
  const cn = cert.subjectName.getField("CN")[0];
  const o = cert.subjectName.getField("O")[0];
  const identity: CertificateIdentity = { clientId, clientIdUri };
  if (handle !== undefined) identity.handle = handle;
  if (handleUri !== undefined) identity.handleUri = handleUri;
  if (cn !== undefined) identity.displayName = cn;
  if (o !== undefined) identity.domain = o;
  return identity;
}

const clientIds = new LruCache<Uint8Array | null>(1024);

/**
 * The MLS client id bytes a certificate chain names (its leaf's SAN client id, as openmls'
 * X.509 `identity()`), or undefined when the leaf does not decode or names none. Cached.
 */
export function clientIdOfChain(certificates: readonly Uint8Array[]): Uint8Array | undefined {
  const leaf = certificates[0];
  if (leaf === undefined) return undefined;
  const key = bytesToHex(hash("SHA-256", leaf));
  let id = clientIds.get(key);
  if (id === undefined) {
    try {
      id = new TextEncoder().encode(extractIdentity(new x509.X509Certificate(new Uint8Array(leaf))).clientId);
    } catch {
      id = null;
    }
    clientIds.set(key, id);
  }
  return id === null ? undefined : Uint8Array.from(id);
}

// The light part (enums, identity types, thumbprint) lives in ./status.ts (main entry).
export { DeviceStatus, E2eiConversationState, jwkThumbprint } from "./status.js";
export type { WireIdentity, X509Identity } from "./status.js";
