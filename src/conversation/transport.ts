/**
 * The delivery-service side of commits, as in CoreCrypto's TypeScript binding: every commit
 * we create is handed to the application's `MlsTransport` before it is merged locally.
 */
import { ErrorCode, MessageRejectedError, MlsKeypackagesError } from "../errors.js";

/** What a commit produces, each part MLSMessage-framed (RFC 9420 §6). */
export interface CommitBundle {
  /** MLSMessage carrying the Commit (as a PublicMessage, like CoreCrypto). */
  commit: Uint8Array;
  /** MLSMessage(Welcome) for the members the commit adds, if any. */
  welcome?: Uint8Array;
  /** MLSMessage(GroupInfo) of the new epoch, with `ratchet_tree` and `external_pub` extensions. */
  groupInfo: Uint8Array;
}

/**
 * The delivery service's answer:
 * - `"success"`: accepted; the commit is merged and the new epoch stored.
 * - `"retry"`: not accepted (e.g. another commit won the epoch); nothing changes locally and
 *   the call rejects with `TransportRetry` — process the pending messages and call again.
 * - `{ abort: { reason } }`: refused for good; nothing changes and the call rejects with
 *   `MessageRejectedError` carrying `reason`.
 */
export type MlsTransportResponse = "success" | "retry" | { abort: { reason: string } };

export interface MlsTransport {
  /**
   * Send a commit bundle to the delivery service. Called inside the transaction that created
   * the commit: do not start another transaction on the same database from here (it would
   * wait for this one forever).
   */
  sendCommitBundle(bundle: CommitBundle): Promise<MlsTransportResponse>;
}

/** Hand a bundle to the transport; resolves only on "success", else throws our typed error. */
export async function sendCommitBundle(
  transport: MlsTransport | undefined,
  bundle: CommitBundle,
): Promise<void> {
  const t = requireTransport(transport);
  let response: unknown;
  try {
    response = await t.sendCommitBundle(bundle);
  } catch (err) {
    throw new MlsKeypackagesError(
      ErrorCode.DeliveryServiceError,
      `the transport failed to send the commit: ${err instanceof Error ? err.message : String(err)}`,
      {},
      { cause: err },
    );
  }
  if (response === "success") return;
  if (response === "retry") {
    throw new MlsKeypackagesError(
      ErrorCode.TransportRetry,
      "the delivery service asked to retry the commit; the conversation is unchanged",
    );
  }
  const abort = (response as { abort?: { reason?: unknown } } | null | undefined)?.abort;
  if (abort !== undefined && abort !== null && typeof abort === "object") {
    throw new MessageRejectedError(typeof abort.reason === "string" ? abort.reason : String(abort.reason));
  }
  throw new MlsKeypackagesError(
    ErrorCode.DeliveryServiceError,
    `the transport returned an invalid response: ${JSON.stringify(response) ?? String(response)}`,
  );
}

export function requireTransport(transport: MlsTransport | undefined): MlsTransport {
  if (transport === undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.TransportMissing,
      "no MLS transport: call provideTransport() on the session before creating commits",
    );
  }
  return transport;
}
