import type { Database } from "./keystore/database.js";
import { TransactionContext, type KeypackageConsumedEvent } from "./transaction/context.js";
import { KeypackagePool, type KeypackagePoolOptions } from "./pool/pool.js";
import type { MlsTransport } from "./conversation/transport.js";
import type { X509Policy } from "./pki/authentication.js";
import { SessionPki } from "./pki/sessionPki.js";
import { defaultAuthenticationService, type AuthenticationService } from "./mls/credential/authentication.js";

export interface CoreCryptoOptions {
  /**
   * The clock used wherever time matters: our key packages' lifetimes, and the lifetimes of the
   * leaves we receive (RFC 9420 §7.3) in Welcomes and commits. Default: `new Date()`.
   */
  clock?: () => Date;
  /**
   * The authentication service (RFC 9420 §5.3.1), asked about every credential this session
   * accepts: key packages it adds, every leaf of a tree it joins, and the added, updated and
   * committer leaves of the commits and proposals it receives. Default:
   * `defaultAuthenticationService` (refuses an empty Basic identity or X.509 chain).
   */
  authenticationService?: AuthenticationService;
  /**
   * What to do with X.509 credentials (docs/x509.md): they are validated against the session's
   * PKI environment (`cc.pki`) at the session clock; members with an expired or revoked
   * certificate are accepted and reported, new ones refused, unless this policy says otherwise.
   */
  x509Policy?: X509Policy;
}

/**
 * A session on a database, CoreCrypto style: all work happens in transactions.
 */
export class CoreCrypto {
  readonly database: Database;
  readonly #clock: () => Date;
  readonly #authenticationService: AuthenticationService;
  readonly #x509Policy: X509Policy;
  /** The PKI environment X.509 credentials are validated against (trust anchors, intermediates, CRLs). */
  readonly pki: SessionPki;
  #transport: MlsTransport | undefined;
  readonly #consumedListeners = new Set<(event: KeypackageConsumedEvent) => void>();

  private constructor(database: Database, options: CoreCryptoOptions) {
    this.database = database;
    this.#clock = options.clock ?? (() => new Date());
    this.#authenticationService = options.authenticationService ?? defaultAuthenticationService;
    this.#x509Policy = { ...options.x509Policy };
    this.pki = new SessionPki(this);
  }

  static async open(database: Database, options: CoreCryptoOptions = {}): Promise<CoreCrypto> {
    if (options.clock !== undefined && typeof options.clock !== "function") {
      throw new TypeError("clock must be a function returning a Date");
    }
    const as = options.authenticationService;
    if (as !== undefined && (as === null || typeof as !== "object" || typeof as.validate !== "function")) {
      throw new TypeError("an authentication service must have a validate(input) method");
    }
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

  /**
   * Call `listener` after every finished transaction for each key package a Welcome consumed
   * (the key package pool uses it to refill without polling). Returns the unsubscribe function.
   */
  onKeypackageConsumed(listener: (event: KeypackageConsumedEvent) => void): () => void {
    if (typeof listener !== "function") throw new TypeError("listener must be a function");
    this.#consumedListeners.add(listener);
    return () => {
      this.#consumedListeners.delete(listener);
    };
  }

  /**
   * A pool that keeps this client's key packages on a Delivery Service healthy (see docs/pool.md):
   * `sync()`, `run({ signal })`, `rotateCredential(newRef)`.
   */
  keypackagePool(options: KeypackagePoolOptions): KeypackagePool {
    return new KeypackagePool(this, options);
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
    return new TransactionContext(
      this.database,
      this.#clock,
      release,
      () => this.#transport,
      this.#authenticationService,
      (events) => {
        for (const event of events)
          for (const listener of [...this.#consumedListeners]) {
            try {
              listener(event);
            } catch {
              // A listener's error stays with the listener.
            }
          }
      },
      this.#x509Policy,
    );
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
