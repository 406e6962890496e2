/**
 * The library's policy: a `KeypackagePool` per client. What `pool.run()` does in real time is
 * played on the virtual clock: a sync when the client comes online (as a restarted app: a new
 * pool object), every 24 h (the naive policy's period; `run()`'s own default is 1 h), and when
 * a DS event it subscribes to arrives while online (`claimed` with the last resort or under the
 * low-water mark). A credential rotation is `pool.rotateCredential(newRef)`.
 */
import { Credential, type KeypackagePool, type PoolSyncReport } from "../../src/index.js";
import { SUITE, type Policy, type SimClient } from "./world.js";

export class PoolPolicy implements Policy {
  readonly name = "pool";
  readonly timerHours = 24;
  readonly lowWater = 25;
  readonly totals = {
    generated: 0,
    uploaded: 0,
    rotated: 0,
    prunedLocally: 0,
    deletedOnDs: 0,
    lastResortReplaced: 0,
    fullSyncs: 0,
    quickSyncs: 0,
  };

  #pool(c: SimClient): KeypackagePool {
    return c.state as KeypackagePool;
  }

  #open(c: SimClient): void {
    (c.state as KeypackagePool | undefined)?.close();
    c.state = c.cc.keypackagePool({ ds: c.ds, credential: c.credential, lowWater: this.lowWater });
  }

  #add(r: PoolSyncReport): void {
    this.totals.generated += r.generated;
    this.totals.uploaded += r.uploaded;
    this.totals.rotated += r.rotated;
    this.totals.prunedLocally += r.prunedLocally;
    this.totals.deletedOnDs += r.deletedOnDs;
    if (r.lastResort === "replaced") this.totals.lastResortReplaced++;
    if (r.reconciled) this.totals.fullSyncs++;
    else this.totals.quickSyncs++;
  }

  async setup(c: SimClient): Promise<void> {
    await c.ds.register({ clientId: c.clientId, signatureKeys: { [SUITE]: c.credential.publicKey() } });
    this.#open(c);
    this.#add(await this.#pool(c).sync());
  }

  async sync(c: SimClient, _w: unknown, reason: string): Promise<void> {
    if (reason === "online") this.#open(c); // back after days: the app (and its event stream) restarts
    this.#add(await this.#pool(c).sync());
  }

  async rotate(c: SimClient): Promise<void> {
    const fresh = await c.cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE, c.clientId)));
    this.#add(await this.#pool(c).rotateCredential(fresh));
    c.credential = fresh;
  }

  async claimed(
    c: SimClient,
    _w: unknown,
    info: { ref: string; lastResort: boolean; remaining: number },
  ): Promise<boolean> {
    // What the pool's event stream delivers (`run()` feeds it to `handleEvent` the same way).
    await this.#pool(c).handleEvent({
      type: "claimed",
      data: { ciphersuite: SUITE, ref: info.ref, lastResort: info.lastResort, remaining: info.remaining },
    });
    return info.lastResort || info.remaining < this.lowWater;
  }

  restart(c: SimClient): void {
    this.#open(c); // a new process: a new pool object over the same keystore
  }
}
