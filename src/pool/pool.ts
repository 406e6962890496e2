/**
 * The key package pool: keeps this client's key packages on a Delivery Service healthy
 * (enough of them, none about to expire, one last-resort package — RFC 9750 —, none whose
 * private keys are gone), and rotates the credential they are bound to. See docs/pool.md.
 *
 * Crash safety: every keystore change and the bookkeeping describing it are committed in one
 * transaction (`state.ts`), and every DS call is made only after the local state that lets a
 * later `sync()` finish or undo it has been committed. Whatever was interrupted, the next
 * `sync()` lists the DS and converges.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import type { CoreCrypto } from "../session.js";
import { CredentialRef } from "../credential/credentialRef.js";
import type { CredentialRow, KeypackageMeta } from "../keystore/contract.js";
import type { KeypackageConsumedEvent } from "../transaction/context.js";
import { DeliveryServiceError } from "../ds/client.js";
import { MAX_KEYPACKAGES_PER_UPLOAD, type DsPoolEvent, type DsStoredKeypackage } from "../ds/wire.js";
import { AsyncMutex } from "../transaction/mutex.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { resolvePoolOptions, type KeypackagePoolOptions, type ResolvedPoolOptions } from "./options.js";
import { stateKey, type KpState, type PoolState } from "./state.js";
import { poolTransaction, type PoolTransaction } from "./transaction.js";

export type { KeypackagePoolOptions, PoolDeliveryService } from "./options.js";
export { POOL_DEFAULTS } from "./options.js";

/** What one `sync()` did. */
export interface PoolSyncReport {
  /** Packages generated (regular and last-resort). */
  generated: number;
  /** Packages uploaded to the DS. */
  uploaded: number;
  /** Packages replaced because they expire within `rotateBefore` (deleted on the DS). */
  rotated: number;
  /** Packages removed from the keystore (grace period over, or never uploaded and due). */
  prunedLocally: number;
  /** Packages the DS deleted at our request (rotated, stale, or without local private keys). */
  deletedOnDs: number;
  /** The last-resort package: kept, replaced (handed out, expiring or unusable), created, or disabled. */
  lastResort: "present" | "replaced" | "created" | "disabled";
  /**
   * Regular packages on the DS valid now, after the sync (`undefined` when the sync only
   * counted, the quick path when nothing was due).
   */
  dsCount: number | undefined;
  /** Regular packages on the DS still valid at now + `rotateBefore`, after the sync. */
  dsCountAtHorizon: number;
  /** Whether the DS was listed and reconciled (otherwise a single count showed nothing was due). */
  reconciled: boolean;
  /** DS requests made. */
  requests: number;
  durationMs: number;
}

/** The pool seen without changing anything (`status()`). */
export interface PoolStatus {
  /** The credential the pool uses now. */
  credential: CredentialRef;
  /** Regular packages on the DS valid now, and at now + `rotateBefore`. */
  dsCount: number;
  dsCountAtHorizon: number;
  /** Last-resort packages on the DS valid now (0 or 1). */
  dsLastResort: number;
  /** The pool's packages in the keystore, by state (see docs/pool.md). */
  local: { new: number; sending: number; rotating: number; up: number; gone: number; untracked: number };
  /** A credential rotation was started and is not confirmed yet (the next `sync()` finishes it). */
  rotationPending: boolean;
  /** Whether `sync()` would top up now. */
  belowLowWater: boolean;
}

export interface PoolRunOptions {
  /** Stops the loop (and the event subscription). */
  signal: AbortSignal;
  /** Sync at least this often (ms). Default 1 hour. */
  intervalMs?: number;
  /** Backoff after a failed sync: from `initialMs` doubling up to `maxMs`, with full jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Called after every successful sync. */
  onSync?: (report: PoolSyncReport) => void;
  /** Called with every error (sync or event stream); the loop goes on. */
  onError?: (error: unknown) => void;
  /** Called for every DS event received. */
  onEvent?: (event: DsPoolEvent) => void;
}

interface Context {
  key: string;
  state: PoolState;
  cred: CredentialRow;
  ref: CredentialRef;
}

interface Reconciled {
  toUpload: string[];
  toRetire: string[];
  toDeleteOnDs: string[];
  generated: number;
  rotated: number;
  pruned: number;
  lastResort: PoolSyncReport["lastResort"];
  /** Regular packages on the DS valid now / at the horizon that the pool keeps. */
  keptNow: number;
  keptAtHorizon: number;
  /** Regular packages among `toUpload` valid now / at the horizon. */
  uploadNow: number;
  uploadAtHorizon: number;
}

const HOUR = 60 * 60 * 1000;
const DELETE_CHUNK = 1000;

const isLocalWork = (s: KpState): boolean => s.s === "new" || s.s === "sending" || s.s === "rotating";

/**
 * A pool of key packages of one credential (one client, one cipher suite) on a Delivery
 * Service. Create with `cc.keypackagePool(options)`.
 */
export class KeypackagePool {
  readonly #cc: CoreCrypto;
  readonly #o: ResolvedPoolOptions;
  readonly #suite: number;
  readonly #mutex = new AsyncMutex();
  readonly #unsubscribe: () => void;
  /** Force the next sync to list the DS (first sync, after an error, after a hint). */
  #needFull = true;
  #wake: (() => void) | undefined;
  #wakePending = false;
  #consumed = 0;
  #subscribedOnce = false;
  #running = false;
  /** Bookkeeping started by the Welcome hook; a sync waits for it. */
  readonly #hookWork = new Set<Promise<unknown>>();

  constructor(cc: CoreCrypto, options: KeypackagePoolOptions) {
    this.#o = resolvePoolOptions(options);
    this.#cc = cc;
    this.#suite = this.#o.credential.ciphersuite();
    this.#unsubscribe = cc.onKeypackageConsumed((e) => this.#onConsumed(e));
  }

  /** The resolved options (defaults filled in). */
  get options(): Readonly<Omit<ResolvedPoolOptions, "ds">> {
    const { ds: _ds, ...rest } = this.#o;
    return rest;
  }

  /** Key packages consumed by Welcomes since this pool was created (the session's hook). */
  get consumedCount(): number {
    return this.#consumed;
  }

  /** Stop listening to the session (the pool is unusable for `run()` wake-ups afterwards). */
  close(): void {
    this.#unsubscribe();
  }

  /** The credential the pool uses now (after a rotation, the new one). */
  async credential(): Promise<CredentialRef> {
    return (await this.#load()).ref;
  }

  /**
   * Bring the keystore and the DS into agreement (see docs/pool.md): finish an interrupted
   * credential rotation, reconcile, replace what expires within `rotateBefore` and the handed-out
   * last-resort package, top up to `target` under `lowWater`, prune what the grace period let go.
   * Idempotent; safe to interrupt at any point.
   */
  async sync(): Promise<PoolSyncReport> {
    await Promise.allSettled([...this.#hookWork]);
    return this.#exclusive(() => this.#sync());
  }

  /** Run `work` alone (one sync or rotation at a time); a failure makes the next sync a full one. */
  async #exclusive<R>(work: () => Promise<R>): Promise<R> {
    const release = await this.#mutex.acquire();
    try {
      return await work();
    } catch (err) {
      this.#needFull = true;
      throw err;
    } finally {
      release();
    }
  }

  /** Counts on the DS and local bookkeeping, without writing anything. */
  async status(): Promise<PoolStatus> {
    const ctx = await this.#load(false);
    const now = this.#cc.now().getTime();
    const [c, h] = await Promise.all([
      this.#o.ds.count(this.#suite),
      this.#o.ds.count(this.#suite, { validAt: now + this.#o.rotateBefore }),
    ]);
    const metas = await poolTransaction(this.#cc, (tx) => tx.keypackagesOf(this.#credentialIds(ctx.state)));
    const local = { new: 0, sending: 0, rotating: 0, up: 0, gone: 0, untracked: 0 };
    for (const m of metas) {
      const st = ctx.state.kps[m.ref];
      if (st === undefined) local.untracked++;
      else local[st.s]++;
    }
    return {
      credential: ctx.ref,
      dsCount: c.count,
      dsCountAtHorizon: h.count,
      dsLastResort: c.lastResort,
      local,
      rotationPending: ctx.state.rotating !== undefined,
      belowLowWater: h.count < this.#o.lowWater,
    };
  }

  /**
   * Replace the credential: packages (and a last-resort one) are generated with `newCredential`,
   * and the DS swaps the signature key and every package of the suite in one transaction
   * (authenticated by a proof of possession of the new key). The old packages stay usable
   * locally for the grace period. The pool then uses `newCredential`, also after a restart.
   */
  async rotateCredential(newCredential: CredentialRef): Promise<PoolSyncReport> {
    if (!(newCredential instanceof CredentialRef))
      throw new TypeError("newCredential must be a CredentialRef");
    const started = Date.now();
    return this.#exclusive(async () => {
      let ctx = await this.#load();
      if (ctx.state.rotating !== undefined && ctx.state.rotating.to !== newCredential.id) {
        await this.#completeRotation(ctx);
        ctx = await this.#load();
      }
      if (ctx.state.credential === newCredential.id) {
        // Already rotated (e.g. a retry after a crash): a sync finishes the rest.
        return await this.#sync();
      }
      if (ctx.state.rotating === undefined) {
        const generated = await this.#startRotation(ctx, newCredential);
        ctx = await this.#load();
        await this.#completeRotation(ctx);
        this.#needFull = true;
        const report = await this.#sync();
        return { ...report, generated: report.generated + generated, durationMs: Date.now() - started };
      }
      await this.#completeRotation(ctx);
      this.#needFull = true;
      return await this.#sync();
    });
  }

  /**
   * Keep the pool healthy until `signal` aborts: sync now, then whenever the DS reports a
   * low pool, a handed-out last-resort package or a rotation (Server-Sent Events), whenever a
   * Welcome consumed one of our packages, and at least every `intervalMs`. Failed syncs are
   * retried with exponential backoff and jitter. Never rejects; resolves once stopped.
   */
  async run(options: PoolRunOptions): Promise<void> {
    const { signal } = options;
    if (signal === undefined || typeof signal.aborted !== "boolean") {
      throw new TypeError("run() needs an AbortSignal: run({ signal })");
    }
    const intervalMs = options.intervalMs ?? HOUR;
    if (typeof intervalMs !== "number" || !Number.isFinite(intervalMs) || intervalMs <= 0) {
      throw new TypeError(`intervalMs must be a positive number, got ${String(intervalMs)}`);
    }
    if (this.#running) throw new TypeError("this pool is already running: one run() at a time");
    const initial = options.backoff?.initialMs ?? 1000;
    const max = Math.max(initial, options.backoff?.maxMs ?? 5 * 60 * 1000);
    const report = (cb: ((x: never) => void) | undefined, x: unknown): void => {
      try {
        cb?.(x as never);
      } catch {
        // a callback's error stays with the callback
      }
    };
    const backoff = (n: number): number => Math.random() * Math.min(max, initial * 2 ** Math.min(n, 30));

    this.#running = true;
    const events = this.#listen(signal, backoff, options, report);
    let failures = 0;
    while (!signal.aborted) {
      this.#wakePending = false;
      try {
        const r = await this.sync();
        failures = 0;
        report(options.onSync, r);
      } catch (err) {
        failures++;
        report(options.onError, err);
      }
      if (signal.aborted) break;
      if (failures > 0) await sleep(backoff(failures - 1), signal);
      else await this.#waitForWake(intervalMs, signal);
    }
    await events;
    this.#running = false;
  }

  // ── internals ───────────────────────────────────────────────────────────────

  #credentialIds(state: PoolState): string[] {
    const ids = [state.credential, ...state.previous];
    if (state.rotating !== undefined) ids.push(state.rotating.to);
    return ids;
  }

  /** Read (and on first use create) the pool's state; check the credential. */
  async #load(write = true): Promise<Context> {
    const given = this.#o.credential;
    const key = stateKey(given.clientId().bytes(), this.#suite);
    return poolTransaction(this.#cc, async (tx) => {
      let state = await tx.readState(key);
      if (state === undefined) {
        state = { v: 1, credential: given.id, previous: [], kps: {} };
        if (write) await tx.writeState(key, state);
      } else if (
        state.credential !== given.id &&
        !state.previous.includes(given.id) &&
        state.rotating?.to !== given.id
      ) {
        throw new MlsKeypackagesError(
          ErrorCode.InvalidArgument,
          "this client's pool uses another credential for this cipher suite; switch with rotateCredential()",
        );
      }
      const cred = await tx.credentialRow(state.credential);
      const ref = await tx.credentialRefOf(state.credential);
      if (cred === undefined || ref === undefined) {
        throw new MlsKeypackagesError(
          ErrorCode.CredentialNotFound,
          "the pool's credential is not in this database",
        );
      }
      return { key, state, cred, ref };
    });
  }

  /** Read-modify-write of the state in one transaction (with the keystore writes `fn` stages). */
  #update<R>(key: string, fn: (state: PoolState, tx: PoolTransaction) => Promise<R>): Promise<R> {
    return poolTransaction(this.#cc, async (tx) => {
      const state = await tx.readState(key);
      if (state === undefined)
        throw new MlsKeypackagesError(ErrorCode.KeystoreError, "the pool's state is gone");
      const r = await fn(state, tx);
      await tx.writeState(key, state);
      return r;
    });
  }

  async #sync(): Promise<PoolSyncReport> {
    const started = Date.now();
    let requests = 0;
    let ctx = await this.#load();
    if (ctx.state.rotating !== undefined) {
      requests += await this.#completeRotation(ctx);
      ctx = await this.#load();
      this.#needFull = true;
    }
    const now = this.#cc.now().getTime();
    const horizon = now + this.#o.rotateBefore;

    // Quick path: nothing due locally and one count says the DS is fine.
    if (!this.#needFull && !(await this.#localWorkDue(ctx, now, horizon))) {
      const c = await this.#o.ds.count(this.#suite, { validAt: horizon });
      requests++;
      if (c.count >= this.#o.lowWater && (!this.#o.lastResort || c.lastResort >= 1)) {
        return {
          generated: 0,
          uploaded: 0,
          rotated: 0,
          prunedLocally: 0,
          deletedOnDs: 0,
          lastResort: this.#o.lastResort ? "present" : "disabled",
          dsCount: undefined,
          dsCountAtHorizon: c.count,
          reconciled: false,
          requests,
          durationMs: Date.now() - started,
        };
      }
    }

    // Full path. The DS is listed before the keystore is read: a package uploaded meanwhile
    // by another process has its local rows already.
    const listed = await this.#o.ds.listAllKeypackages(this.#suite);
    requests++;
    const onDs = new Map<string, DsStoredKeypackage>(listed.map((k) => [k.ref, k]));
    const plan = await this.#update(ctx.key, (state, tx) =>
      this.#reconcile(state, tx, ctx, onDs, now, horizon),
    );

    // Upload first (marked `sending` beforehand: a crash leaves an ambiguity the list resolves).
    let uploaded = 0;
    if (plan.toUpload.length > 0) {
      await this.#update(ctx.key, async (state) => {
        for (const ref of plan.toUpload) state.kps[ref] = { s: "sending" };
      });
      const items = await poolTransaction(this.#cc, (tx) => tx.keypackageBytes(plan.toUpload));
      for (let i = 0; i < items.length; i += MAX_KEYPACKAGES_PER_UPLOAD) {
        const chunk = items.slice(i, i + MAX_KEYPACKAGES_PER_UPLOAD);
        try {
          await this.#o.ds.upload(chunk.map((c) => c.bytes));
          requests++;
        } catch (err) {
          await this.#uploadFailed(ctx.key, chunk, err);
          throw err;
        }
        await this.#update(ctx.key, async (state) => {
          for (const c of chunk) {
            const st = state.kps[c.ref];
            state.kps[c.ref] = { s: "up", ...(st?.lrClaimed === true ? { lrClaimed: true } : {}) };
          }
        });
        uploaded += chunk.length;
      }
    }

    // Then retire the replaced ones (state first: a crash before the DS call is finished by the next sync).
    let deletedOnDs = 0;
    if (plan.toRetire.length > 0) {
      await this.#update(ctx.key, async (state) => {
        for (const ref of plan.toRetire) {
          const st = state.kps[ref];
          if (st !== undefined && st.s !== "gone") state.kps[ref] = { s: "gone", at: now };
        }
      });
    }
    const toDelete = [...new Set([...plan.toRetire, ...plan.toDeleteOnDs])];
    for (let i = 0; i < toDelete.length; i += DELETE_CHUNK) {
      deletedOnDs += await this.#o.ds.delete(toDelete.slice(i, i + DELETE_CHUNK));
      requests++;
    }

    this.#needFull = false;
    return {
      generated: plan.generated,
      uploaded,
      rotated: plan.rotated,
      prunedLocally: plan.pruned,
      deletedOnDs,
      lastResort: plan.lastResort,
      dsCount: plan.keptNow + plan.uploadNow,
      dsCountAtHorizon: plan.keptAtHorizon + plan.uploadAtHorizon,
      reconciled: true,
      requests,
      durationMs: Date.now() - started,
    };
  }

  /** Anything the keystore alone shows must be done (so the quick path does not apply). */
  async #localWorkDue(ctx: Context, now: number, horizon: number): Promise<boolean> {
    const metas = await poolTransaction(this.#cc, (tx) => tx.keypackagesOf(this.#credentialIds(ctx.state)));
    let lastResortOk = !this.#o.lastResort;
    for (const m of metas) {
      const st = ctx.state.kps[m.ref];
      if (st === undefined || isLocalWork(st)) return true;
      if (st.s === "gone") {
        if ((st.at ?? 0) + this.#o.gracePeriod <= now) return true;
        continue;
      }
      if (m.credentialId !== ctx.state.credential) return true;
      if (m.notAfter * 1000 <= horizon) return true;
      if (m.lastResort) {
        if (st.lrClaimed === true) return true;
        lastResortOk = true;
      }
    }
    return !lastResortOk;
  }

  /** Decide and stage everything local; returns what to do on the DS. */
  async #reconcile(
    state: PoolState,
    tx: PoolTransaction,
    ctx: Context,
    onDs: ReadonlyMap<string, DsStoredKeypackage>,
    now: number,
    horizon: number,
  ): Promise<Reconciled> {
    const current = state.credential;
    const metas = await tx.keypackagesOf(this.#credentialIds(state));
    const local = new Map<string, KeypackageMeta>(metas.map((m) => [m.ref, m]));
    const toUpload: string[] = [];
    const toRetire: string[] = [];
    const toDeleteOnDs: string[] = [];
    const prune: string[] = [];
    let rotated = 0;
    let keptNow = 0;
    let keptAtHorizon = 0;
    const validAt = (m: { notBefore: number; notAfter: number }, t: number): boolean =>
      m.notBefore * 1000 <= t && t < m.notAfter * 1000;
    /** Last-resort packages on the DS the pool could keep, best (latest expiry) first. */
    const lastResorts: KeypackageMeta[] = [];
    let lastResortWasOnDs = false;

    for (const m of metas) {
      const st: KpState | undefined = state.kps[m.ref];
      const ds = onDs.get(m.ref);
      const mine = m.credentialId === current;
      if (ds !== undefined && m.lastResort) lastResortWasOnDs = true;
      switch (st?.s) {
        case "gone":
          if (ds !== undefined) toDeleteOnDs.push(m.ref);
          if ((st.at ?? now) + this.#o.gracePeriod <= now) prune.push(m.ref);
          continue;
        case "new":
          if (ds !== undefined) break; // cannot happen; treat as uploaded
          if (!mine || m.notAfter * 1000 <= horizon || (m.lastResort && !this.#o.lastResort))
            prune.push(m.ref);
          else if (!m.lastResort) toUpload.push(m.ref);
          else lastResorts.push(m); // a last-resort package waiting for upload: maybe used below
          continue;
        case "sending":
        case "rotating":
        case "up":
        case undefined:
          if (ds === undefined) {
            if (st === undefined && mine && !m.lastResort && m.notAfter * 1000 > horizon) {
              // Never uploaded by the pool: upload it.
              state.kps[m.ref] = { s: "new" };
              toUpload.push(m.ref);
            } else {
              // Handed out, or deleted: usable for the grace period (a Welcome may be in flight).
              state.kps[m.ref] = { s: "gone", at: now };
            }
            continue;
          }
          break;
      }
      // On the DS.
      const lrClaimed = st?.lrClaimed === true;
      state.kps[m.ref] = { s: "up", ...(lrClaimed ? { lrClaimed: true } : {}) };
      if (!mine) {
        toRetire.push(m.ref);
      } else if (m.lastResort) {
        if (!lrClaimed && this.#o.lastResort && m.notAfter * 1000 > horizon) lastResorts.push(m);
        else toRetire.push(m.ref);
      } else if (m.notAfter * 1000 <= horizon) {
        toRetire.push(m.ref);
        rotated++;
      } else {
        if (validAt(m, now)) keptNow++;
        keptAtHorizon++;
      }
    }
    // Refs on the DS without local private keys: nobody could ever join with them.
    for (const ref of onDs.keys()) if (!local.has(ref)) toDeleteOnDs.push(ref);
    // Bookkeeping of packages that are gone from the keystore (consumed by a Welcome, removed).
    for (const ref of Object.keys(state.kps)) if (!local.has(ref)) delete state.kps[ref];

    // The last-resort package: keep the best one on the DS; upload a waiting or new one otherwise.
    let lastResort: PoolSyncReport["lastResort"] = "disabled";
    if (this.#o.lastResort) {
      lastResorts.sort((a, b) => b.notAfter - a.notAfter);
      const onDsBest = lastResorts.find((m) => onDs.has(m.ref));
      const keep = onDsBest ?? lastResorts[0];
      for (const m of lastResorts) {
        if (m === keep) continue;
        if (onDs.has(m.ref)) toRetire.push(m.ref);
        else prune.push(m.ref);
      }
      if (onDsBest !== undefined) lastResort = "present";
      else {
        lastResort = lastResortWasOnDs ? "replaced" : "created";
        if (keep !== undefined) toUpload.push(keep.ref);
      }
    }

    // Top up (counting regular packages waiting for upload), and refill when rotating.
    let waiting = 0;
    for (const ref of toUpload) if (local.get(ref)?.lastResort === false) waiting++;
    const have = keptAtHorizon + waiting;
    const need = have < this.#o.lowWater || rotated > 0 ? Math.max(0, this.#o.target - have) : 0;
    let generated = 0;
    const generatedLastResort = new Set<string>();
    if (need > 0) {
      const kps = await tx.generateKeypackages(ctx.ref, need, this.#o.lifetime);
      for (const kp of kps) {
        const ref = kp.ref().hex();
        state.kps[ref] = { s: "new" };
        toUpload.push(ref);
      }
      generated += kps.length;
    }
    if (
      this.#o.lastResort &&
      lastResort !== "present" &&
      !toUpload.some((r) => local.get(r)?.lastResort === true)
    ) {
      const kp = await tx.generateKeypackage(ctx.ref, this.#o.lifetime, { lastResort: true });
      const ref = kp.ref().hex();
      state.kps[ref] = { s: "new" };
      toUpload.push(ref);
      generatedLastResort.add(ref);
      generated++;
    }
    for (const ref of prune) delete state.kps[ref];
    await tx.deleteKeypackages(prune);

    let uploadNow = 0;
    let uploadAtHorizon = 0;
    for (const ref of toUpload) {
      const m = local.get(ref);
      if (m === undefined) {
        // generated by this sync
        if (!generatedLastResort.has(ref)) {
          uploadNow++;
          uploadAtHorizon++;
        }
      } else if (!m.lastResort) {
        if (validAt(m, now)) uploadNow++;
        if (validAt(m, horizon)) uploadAtHorizon++;
      }
    }
    return {
      toUpload,
      toRetire,
      toDeleteOnDs,
      generated,
      rotated,
      pruned: prune.length,
      lastResort,
      keptNow,
      keptAtHorizon,
      uploadNow,
      uploadAtHorizon,
    };
  }

  /** An upload failed: packages the DS refused never reached it (all-or-nothing) — drop them. */
  async #uploadFailed(key: string, chunk: { ref: string }[], err: unknown): Promise<void> {
    if (!(err instanceof DeliveryServiceError) || err.status < 400 || err.status >= 500) return;
    const refused = new Set(err.rejected.map((r) => chunk[r.index]?.ref).filter((r) => r !== undefined));
    await this.#update(key, async (state, tx) => {
      for (const c of chunk) {
        if (refused.has(c.ref)) delete state.kps[c.ref];
        else if (state.kps[c.ref]?.s === "sending") state.kps[c.ref] = { s: "new" };
      }
      await tx.deleteKeypackages([...refused]);
    });
  }

  /** Generate the new credential's packages, marked `rotating`, and record the rotation. */
  async #startRotation(ctx: Context, newCredential: CredentialRef): Promise<number> {
    return this.#update(ctx.key, async (state, tx) => {
      const row = await tx.credentialRow(newCredential.id);
      if (row === undefined) {
        throw new MlsKeypackagesError(
          ErrorCode.CredentialNotFound,
          "the new credential is not in this database",
        );
      }
      if (!bytesEqual(row.clientId, ctx.cred.clientId) || row.ciphersuite !== ctx.cred.ciphersuite) {
        throw new MlsKeypackagesError(
          ErrorCode.InvalidArgument,
          "the new credential must have the same client id and cipher suite as the pool's",
        );
      }
      if (bytesEqual(row.publicKey, ctx.cred.publicKey)) {
        throw new MlsKeypackagesError(
          ErrorCode.InvalidArgument,
          "the new credential has the same signature key",
        );
      }
      const kps = await tx.generateKeypackages(newCredential, this.#o.target, this.#o.lifetime);
      if (this.#o.lastResort)
        kps.push(await tx.generateKeypackage(newCredential, this.#o.lifetime, { lastResort: true }));
      for (const kp of kps) state.kps[kp.ref().hex()] = { s: "rotating" };
      state.rotating = { to: newCredential.id, startedAt: this.#cc.now().getTime() };
      return kps.length;
    });
  }

  /**
   * Ask the DS to swap the signature key and the packages (idempotent: if an earlier attempt
   * went through, the DS answers `stale_signature_key` and the list settles which packages
   * arrived), then switch the pool to the new credential. Returns the DS requests made.
   */
  async #completeRotation(ctx: Context): Promise<number> {
    const rotating = ctx.state.rotating;
    if (rotating === undefined) return 0;
    const { oldKey, newKey, items } = await poolTransaction(this.#cc, async (tx) => {
      const newRow = await tx.credentialRow(rotating.to);
      if (newRow === undefined) {
        throw new MlsKeypackagesError(
          ErrorCode.CredentialNotFound,
          "the new credential is not in this database",
        );
      }
      const metas = await tx.keypackagesOf([rotating.to]);
      const refs = metas.filter((m) => ctx.state.kps[m.ref]?.s === "rotating").map((m) => m.ref);
      return { oldKey: ctx.cred.publicKey, newKey: newRow.publicKey, items: await tx.keypackageBytes(refs) };
    });
    const clientId = this.#o.ds.clientId;
    if (clientId === undefined) throw new TypeError("the DS client has no client id (register first)");
    let confirmed = true;
    try {
      await this.#o.ds.rotateSignatureKey({
        ciphersuite: this.#suite,
        oldSignatureKey: oldKey,
        newSignatureKey: newKey,
        sign: (content) =>
          poolTransaction(this.#cc, (tx) => tx.signRotation(rotating.to, clientId, oldKey, content)),
        keyPackages: items.map((i) => i.bytes),
      });
    } catch (err) {
      if (
        err instanceof DeliveryServiceError &&
        (err.error === "stale_signature_key" || err.error === "same_signature_key")
      ) {
        // An earlier attempt went through (the new key is registered already, or the old one is not).
        confirmed = false;
      } else {
        if (err instanceof DeliveryServiceError && (err.status === 400 || err.status === 422)) {
          await this.#abandonRotation(ctx.key, rotating.to);
        }
        throw err;
      }
    }
    const now = this.#cc.now().getTime();
    await this.#update(ctx.key, async (state) => {
      if (state.rotating?.to !== rotating.to) return;
      const old = state.credential;
      for (const [ref, st] of Object.entries(state.kps)) {
        // Ours from the rotation: on the DS (or, if unconfirmed, as the list will tell).
        if (st.s === "rotating") state.kps[ref] = { s: confirmed ? "up" : "sending" };
        // Every package of the old credential left the DS with the rotation: grace period from now.
        else if (st.s !== "gone") state.kps[ref] = { s: "gone", at: now };
      }
      state.previous = [...state.previous.filter((id) => id !== rotating.to && id !== old), old];
      state.credential = rotating.to;
      delete state.rotating;
    });
    return 1;
  }

  /** The DS refused the rotation for good (bad proof, refused packages): drop it. */
  async #abandonRotation(key: string, to: string): Promise<void> {
    await this.#update(key, async (state, tx) => {
      if (state.rotating?.to !== to) return;
      const refs = Object.entries(state.kps)
        .filter(([, st]) => st.s === "rotating")
        .map(([ref]) => ref);
      for (const ref of refs) delete state.kps[ref];
      await tx.deleteKeypackages(refs);
      delete state.rotating;
    });
  }

  async #listen(
    signal: AbortSignal,
    backoff: (n: number) => number,
    options: PoolRunOptions,
    report: (cb: ((x: never) => void) | undefined, x: unknown) => void,
  ): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const stream = this.#o.ds.events({
          lowWater: this.#o.lowWater,
          ciphersuite: this.#suite,
          signal,
          // Subscribed again after a drop: sync once more, events may have been missed meanwhile.
          onOpen: () => {
            if (this.#subscribedOnce) {
              this.#needFull = true;
              this.#poke();
            }
            this.#subscribedOnce = true;
          },
        });
        for await (const ev of stream) {
          failures = 0;
          report(options.onEvent, ev);
          await this.handleEvent(ev).catch((err: unknown) => report(options.onError, err));
        }
        // The stream ended (DS restart): events may have been missed.
        this.#needFull = true;
        this.#poke();
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        report(options.onError, err);
      }
      if (signal.aborted) break;
      await sleep(backoff(failures), signal);
    }
  }

  /**
   * Take a DS pool event into account (what `run()` does with the events it receives; for apps
   * that get the DS events over their own channel): a handed-out last-resort package is marked
   * for replacement, and a running `run()` loop syncs now when the pool needs it.
   */
  async handleEvent(ev: DsPoolEvent): Promise<void> {
    if (ev.data.ciphersuite !== this.#suite) return;
    switch (ev.type) {
      case "last_resort_claimed":
        await this.#markLastResortClaimed(ev.data.ref);
        this.#poke();
        return;
      case "claimed":
        if (ev.data.lastResort) {
          await this.#markLastResortClaimed(ev.data.ref);
          this.#poke();
        } else if (ev.data.remaining < this.#o.lowWater) this.#poke();
        return;
      case "low_water":
      case "rotated":
        this.#needFull = true;
        this.#poke();
        return;
    }
  }

  /** RFC 9750: a handed-out last-resort package is replaced at the next sync. */
  async #markLastResortClaimed(ref: string | undefined): Promise<void> {
    const ctx = await this.#load();
    await this.#update(ctx.key, async (state, tx) => {
      const metas = await tx.keypackagesOf(this.#credentialIds(state));
      for (const m of metas) {
        const st = state.kps[m.ref];
        if (m.lastResort && st !== undefined && st.s !== "gone" && (ref === undefined || ref === m.ref)) {
          st.lrClaimed = true;
        }
      }
    });
    this.#needFull = true;
  }

  #onConsumed(event: KeypackageConsumedEvent): void {
    this.#consumed++;
    if (event.lastResort) {
      // Which suite: the conversation's. Fire and forget; an error only delays the replacement.
      const work = this.#cc
        .transaction((tx) => tx.conversationCiphersuite(event.conversationId))
        .then((suite) => (suite === this.#suite ? this.#markLastResortClaimed(undefined) : undefined))
        .catch(() => undefined)
        .finally(() => {
          this.#hookWork.delete(work);
          this.#poke();
        });
      this.#hookWork.add(work);
      return;
    }
    this.#poke();
  }

  /** Wake `run()` for a sync now (or right after the one in progress). */
  #poke(): void {
    this.#wakePending = true;
    this.#wake?.();
  }

  #waitForWake(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#wakePending || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
