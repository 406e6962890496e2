import type { Database } from "./keystore/database.js";
import { TransactionContext } from "./transaction/context.js";
import type { MlsTransport } from "./conversation/transport.js";

export interface CoreCryptoOptions {
  /** The clock used wherever time matters (lifetimes, validity). Default: `new Date()`. */
  clock?: () => Date;
}

/**
 * A session on a database, CoreCrypto style: all work happens in transactions.
 */
export class CoreCrypto {
  readonly database: Database;
  readonly #clock: () => Date;
  #transport: MlsTransport | undefined;

  private constructor(database: Database, options: CoreCryptoOptions) {
    this.database = database;
    this.#clock = options.clock ?? (() => new Date());
  }

  static async open(database: Database, options: CoreCryptoOptions = {}): Promise<CoreCrypto> {
    return new CoreCrypto(database, options);
  }

  /**
   * Set the transport that delivers our commits (CoreCrypto's `provideTransport`). Needed by
   * `addClientsToConversation`, `removeClientsFromConversation` and `updateKeyingMaterial`
   * (`TransportMissing` without it). Applies to open transactions too.
   */
  provideTransport(transport: MlsTransport): void {
    if (
      transport === null ||
      typeof transport !== "object" ||
      typeof transport.sendCommitBundle !== "function"
    ) {
      throw new TypeError("a transport must have a sendCommitBundle(bundle) method");
    }
    this.#transport = transport;
  }

  /** The session clock. */
  now(): Date {
    return this.#clock();
  }

  /**
   * Start a transaction. Only one runs at a time per database: this waits until the
   * previous one has finished or aborted.
   */
  async newTransaction(): Promise<TransactionContext> {
    const release = await this.database.lock.acquire();
    return new TransactionContext(this.database, this.#clock, release, () => this.#transport);
  }

  /**
   * Run `callback` in a transaction: finished when it resolves, aborted when it throws
   * (the original error is rethrown).
   */
  async transaction<R>(callback: (tx: TransactionContext) => Promise<R>): Promise<R> {
    const tx = await this.newTransaction();
    let result: R;
    try {
      result = await callback(tx);
    } catch (err) {
      if (!tx.isFinished) await tx.abort().catch(() => undefined);
      throw err;
    }
    if (!tx.isFinished) await tx.finish();
    return result;
  }

  async close(): Promise<void> {
    await this.database.close();
  }
}
