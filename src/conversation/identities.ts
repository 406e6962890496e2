/**
 * Who the members of a conversation are, in CoreCrypto 10's shapes (`getDeviceIdentities`,
 * `getUserIdentities`, `e2eiConversationState`): X.509 members are validated against the
 * session's PKI environment at the session clock each time (a certificate that expired or was
 * revoked since it was accepted shows so).
 */
import { ClientId } from "../credential/clientId.js";
import { CredentialType } from "../credential/credentialType.js";
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { hashOf, signatureSchemeOf, type Ciphersuite } from "../mls/ciphersuite.js";
import type { MemberLeaf } from "../mls/group.js";
import { x509Backend } from "../pki/backend.js";
import { loadTrustStore } from "../pki/environment.js";
import { DeviceStatus, E2eiConversationState, jwkThumbprint, type WireIdentity } from "../pki/status.js";
import type { X509Status, X509TrustStore } from "../pki/validate.js";
import type { TxScope } from "../transaction/context.js";
import { conversationMembers, type ConversationId } from "./conversation.js";

type Member = MemberLeaf & { clientId: Uint8Array };

/** A member's identity with our detailed X.509 status (CoreCrypto's `WireIdentity` plus `x509Status`). */
export interface MemberIdentity extends WireIdentity {
  /** X.509 only: the detailed status behind `status` (see docs/x509.md for the mapping). */
  x509Status?: X509Status;
  /** X.509 only, when not valid: why. */
  x509Reason?: string;
}

/**
 * CoreCrypto's `DeviceStatus` of a chain status: expired and not yet valid certificates are
 * Expired (time-invalid); a chain that no longer builds to an anchor is Revoked, as CoreCrypto
 * reports a certificate without a path (certval `NoPathsFound`).
 */
function deviceStatus(status: X509Status): DeviceStatus {
  switch (status) {
    case "valid":
      return DeviceStatus.Valid;
    case "expired":
    case "not_yet_valid":
      return DeviceStatus.Expired;
    default:
      return DeviceStatus.Revoked;
  }
}

async function identityOf(
  m: Member,
  suite: Ciphersuite,
  trust: X509TrustStore,
  now: Date,
): Promise<MemberIdentity> {
  const thumbprint = jwkThumbprint(signatureSchemeOf(suite), m.signatureKey, hashOf(suite));
  if (m.certificates.length === 0) {
    return {
      clientId: new ClientId(m.clientId),
      status: DeviceStatus.Valid,
      thumbprint,
      credentialType: CredentialType.Basic,
    };
  }
  const backend = x509Backend();
  const r = await backend.validateCertificateChain(m.certificates, trust, now);
  const id: MemberIdentity = {
    status: deviceStatus(r.status),
    thumbprint,
    credentialType: CredentialType.X509,
    x509Status: r.status,
    x509Identity: {
      handle: r.identity?.handleUri ?? "",
      displayName: r.identity?.displayName ?? "",
      domain: r.identity?.domain ?? "",
      certificate: backend.toPem(r.certificate),
      serialNumber: r.serialNumber,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
    },
  };
  if (r.identity !== undefined) id.clientId = ClientId.parse(r.identity.clientId);
  if (r.reason !== undefined) id.x509Reason = r.reason;
  return id;
}

function requireIds(ids: readonly unknown[], what: string): void {
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new MlsKeypackagesError(ErrorCode.InvalidArgument, `expected a non-empty list of ${what}`);
  }
}

/** Identities of the members whose client id is in `clientIds`, in leaf order. */
export async function getDeviceIdentities(
  scope: TxScope,
  id: ConversationId,
  clientIds: readonly ClientId[],
): Promise<MemberIdentity[]> {
  requireIds(clientIds, "client ids");
  const { ciphersuite, members } = await conversationMembers(scope, id);
  const wanted = members.filter((m) => clientIds.some((c) => new ClientId(m.clientId).equals(c)));
  const trust = await loadTrustStore(scope.store);
  const now = scope.now();
  return Promise.all(wanted.map((m) => identityOf(m, ciphersuite, trust, now)));
}

/** Identities of the devices of each user (Wire user uuid, lowercase) in `userIds`; users without a device are absent. */
export async function getUserIdentities(
  scope: TxScope,
  id: ConversationId,
  userIds: readonly string[],
): Promise<Map<string, MemberIdentity[]>> {
  requireIds(userIds, "user ids");
  const wanted = new Set(userIds.map((u) => String(u).toLowerCase()));
  const { ciphersuite, members } = await conversationMembers(scope, id);
  const trust = await loadTrustStore(scope.store);
  const now = scope.now();
  const out = new Map<string, MemberIdentity[]>();
  for (const m of members) {
    let userId: string;
    try {
      userId = new ClientId(m.clientId).userId();
    } catch {
      continue; // not a Wire client id: no user
    }
    if (!wanted.has(userId)) continue;
    const list = out.get(userId) ?? [];
    list.push(await identityOf(m, ciphersuite, trust, now));
    out.set(userId, list);
  }
  return out;
}

/**
 * CoreCrypto's `e2eiConversationState`: Verified when every member has a valid certificate,
 * NotVerified when some use Basic credentials or a certificate is not valid now, NotEnabled when
 * no member has a certificate (or no trust anchor is configured).
 */
export async function conversationCredentialState(
  scope: TxScope,
  id: ConversationId,
): Promise<E2eiConversationState> {
  const { members } = await conversationMembers(scope, id);
  const trust = await loadTrustStore(scope.store);
  if (trust.anchors.length === 0) return E2eiConversationState.NotEnabled;
  const now = scope.now();
  let x509 = false;
  let state = E2eiConversationState.Verified;
  for (const m of members) {
    if (m.certificates.length === 0) {
      state = E2eiConversationState.NotVerified;
      continue;
    }
    x509 = true;
    const r = await x509Backend().validateCertificateChain(m.certificates, trust, now);
    if (r.status !== "valid") state = E2eiConversationState.NotVerified;
  }
  return x509 ? state : E2eiConversationState.NotEnabled;
}
