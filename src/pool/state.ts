/**
 * The pool's bookkeeping, one `kv` row per (client, cipher suite), JSON-encoded. It is always
 * written in the same keystore transaction as the key package rows it describes.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { toHex } from "../keystore/staging.js";

/**
 * What the pool knows about one of its packages:
 * - `new`: generated, never sent to the DS (safe to upload, or to delete locally);
 * - `sending`: an upload was started; whether it reached the DS is unknown until the DS is listed;
 * - `rotating`: made for a credential rotation not yet confirmed by the DS;
 * - `up`: on the DS;
 * - `gone`: no longer on the DS since `at` (deleted by us or handed out); kept for the grace period.
 * `lrClaimed`: a last-resort package known to have been handed out (RFC 9750: replace it).
 */
export interface KpState {
  s: "new" | "sending" | "rotating" | "up" | "gone";
  /** For `gone`: when the pool learnt the package left the DS (ms since the epoch). */
  at?: number;
  lrClaimed?: boolean;
}

export interface PoolState {
  v: 1;
  /** Id of the credential the pool uses now (`CredentialRef.id`). */
  credential: string;
  /** Earlier credentials of this client and suite, oldest first: their packages are the pool's too. */
  previous: string[];
  /** A credential rotation started and not yet confirmed. */
  rotating?: { to: string; startedAt: number };
  kps: Record<string, KpState>;
}

/** The kv key of the pool of a client (bytes of its client id) and suite. */
export function stateKey(clientId: Uint8Array, ciphersuite: number): string {
  return `mlskp.pool.v1/${toHex(clientId)}/${ciphersuite}`;
}

export function encodeState(state: PoolState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state));
}

export function decodeState(bytes: Uint8Array): PoolState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new MlsKeypackagesError(
      ErrorCode.KeystoreError,
      "the key package pool's state does not decode",
      {},
      {
        cause: err,
      },
    );
  }
  const s = parsed as Partial<PoolState> | null;
  if (
    s === null ||
    typeof s !== "object" ||
    s.v !== 1 ||
    typeof s.credential !== "string" ||
    !Array.isArray(s.previous) ||
    typeof s.kps !== "object" ||
    s.kps === null
  ) {
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "the key package pool's state is not version 1");
  }
  return s as PoolState;
}
