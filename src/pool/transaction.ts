/**
 * The pool's transactions: a `TransactionContext` that can also read and write the pool's
 * bookkeeping row (table `kv`), so that every key package write and the bookkeeping that
 * describes it are committed together (or not at all).
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import type { CoreCrypto } from "../session.js";
import type { CredentialRow, KeypackageMeta } from "../keystore/contract.js";
import { TransactionContext, credentialRefOfRow, deleteKeypackageRows } from "../transaction/context.js";
import type { CredentialRef } from "../credential/credentialRef.js";
import { assertCiphersuite } from "../mls/ciphersuite.js";
import { signWithLabel } from "../mls/crypto/labels.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { suiteImpl } from "../mls/suite.js";
import { ROTATION_PROOF_LABEL, rotationProofContent } from "../ds/wire.js";
import { decodeState, encodeState, type PoolState } from "./state.js";

export class PoolTransaction extends TransactionContext {
  /** The pool's bookkeeping row (undefined before the first write). */
  readState(key: string): Promise<PoolState | undefined> {
    return this.run(async ({ store }) => {
      const row = await store.get("kv", key);
      return row === undefined ? undefined : decodeState(row.value);
    });
  }

  writeState(key: string, state: PoolState): Promise<void> {
    return this.run(async ({ store }) => {
      store.write("kv", key, { key, value: encodeState(state) });
    });
  }

  /** The stored credential row of an id (undefined when absent). */
  credentialRow(id: string): Promise<CredentialRow | undefined> {
    return this.run(async ({ store }) => store.get("credentials", id));
  }

  credentialRefOf(id: string): Promise<CredentialRef | undefined> {
    return this.run(async ({ store }) => {
      const row = await store.get("credentials", id);
      return row === undefined ? undefined : credentialRefOfRow(row);
    });
  }

  /** Metadata of the stored packages generated from any of these credentials. */
  keypackagesOf(credentialIds: readonly string[]): Promise<KeypackageMeta[]> {
    return this.run(async ({ store }) => {
      const ids = new Set(credentialIds);
      return (await store.listKeypackageMeta()).filter((m) => ids.has(m.credentialId));
    });
  }

  /** TLS bytes of stored packages, in the order asked (missing ones are left out). */
  keypackageBytes(refs: readonly string[]): Promise<{ ref: string; bytes: Uint8Array }[]> {
    return this.run(async ({ store }) => {
      const out: { ref: string; bytes: Uint8Array }[] = [];
      for (const ref of refs) {
        const row = await store.get("keypackages", ref);
        if (row !== undefined) out.push({ ref, bytes: row.keypackage });
      }
      return out;
    });
  }

  /** Delete packages with their private keys (silent for absent ones). */
  deleteKeypackages(refs: readonly string[]): Promise<void> {
    return this.run(async ({ store }) => {
      for (const ref of refs) {
        const row = await store.get("keypackages", ref);
        if (row !== undefined) deleteKeypackageRows(store, row);
      }
    });
  }

  /**
   * The proof of possession of a rotation (RFC 9420 §5.1.2 SignWithLabel with the credential's
   * stored private key, which never leaves the library). Signs only the rotation content of
   * this client, suite and keys, so the pool cannot be used as a signing oracle.
   */
  signRotation(
    newCredentialId: string,
    clientId: string,
    oldSignatureKey: Uint8Array,
    content: Uint8Array,
  ): Promise<Uint8Array> {
    return this.run(async ({ store }) => {
      const row = await store.get("credentials", newCredentialId);
      if (row === undefined) {
        throw new MlsKeypackagesError(ErrorCode.CredentialNotFound, "the new credential is not stored");
      }
      const expected = rotationProofContent(clientId, row.ciphersuite, oldSignatureKey, row.publicKey);
      if (!bytesEqual(expected, content)) {
        throw new MlsKeypackagesError(
          ErrorCode.InvalidArgument,
          "refusing to sign: not the rotation proof content of this client and keys",
        );
      }
      const cs = await suiteImpl(assertCiphersuite(row.ciphersuite));
      return signWithLabel(row.signaturePrivateKey, ROTATION_PROOF_LABEL, content, cs.signature);
    });
  }
}

/**
 * Run `fn` in a pool transaction on the session's database (same lock as every other
 * transaction): committed when it resolves, aborted when it throws.
 */
export async function poolTransaction<R>(
  cc: CoreCrypto,
  fn: (tx: PoolTransaction) => Promise<R>,
): Promise<R> {
  const release = await cc.database.lock.acquire();
  const tx = new PoolTransaction(cc.database, () => cc.now(), release);
  let result: R;
  try {
    result = await fn(tx);
  } catch (err) {
    if (!tx.isFinished) await tx.abort().catch(() => undefined);
    throw err;
  }
  if (!tx.isFinished) await tx.finish();
  return result;
}
