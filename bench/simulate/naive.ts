/**
 * The naive policy most clients run today: every 24 h, count the packages on the DS and refill to
 * 100 (plus a last-resort one when none is counted); expired packages are pruned locally; no
 * reconciliation with the DS. A credential is rotated the way the README showed before the pool
 * (add the new credential, generate, remove the old one locally), after which uploads are refused
 * (`signature_key_mismatch`) and registering again answers 409 `client_exists`.
 */
import { Credential, DeliveryServiceError } from "../../src/index.js";
import { SUITE, type Policy, type SimClient } from "./world.js";

const TARGET = 100;

interface NaiveState {
  /** Upload refusals seen (after a rotation the DS refuses every upload). */
  refused: number;
  reRegistered: boolean;
}

const stateOf = (c: SimClient): NaiveState => c.state as NaiveState;

export class NaivePolicy implements Policy {
  readonly name = "naive";
  readonly timerHours = 24;
  uploadsRefused = 0;
  reRegisterRefused = 0;

  async setup(c: SimClient): Promise<void> {
    c.state = { refused: 0, reRegistered: false } satisfies NaiveState;
    await c.ds.register({ clientId: c.clientId, signatureKeys: { [SUITE]: c.credential.publicKey() } });
    await this.#refill(c, TARGET, true);
  }

  async #refill(c: SimClient, n: number, lastResort: boolean): Promise<void> {
    const kps = await c.cc.transaction(async (tx) => {
      const out = n > 0 ? await tx.generateKeypackages(c.credential, n) : [];
      if (lastResort) out.push(await tx.generateKeypackage(c.credential, undefined, { lastResort: true }));
      return out;
    });
    if (kps.length === 0) return;
    try {
      await c.ds.upload(kps);
    } catch (err) {
      if (!(err instanceof DeliveryServiceError) || err.status === 0) throw err;
      this.uploadsRefused++;
      const s = stateOf(c);
      s.refused++;
      if (!s.reRegistered && err.rules.includes("signature_key_mismatch")) {
        // What a user tries next: register again with the new key (409 client_exists).
        s.reRegistered = true;
        try {
          await c.ds.register({ clientId: c.clientId, signatureKeys: { [SUITE]: c.credential.publicKey() } });
        } catch (e) {
          if (!(e instanceof DeliveryServiceError) || e.status === 0) throw e;
          this.reRegisterRefused++;
        }
      }
    }
  }

  async sync(c: SimClient): Promise<void> {
    await c.cc.transaction(async (tx) => {
      for (const ref of await tx.getKeypackageRefs()) if (!ref.isValid()) await tx.removeKeypackage(ref);
    });
    const { count, lastResort } = await c.ds.count(SUITE);
    if (count < TARGET || lastResort === 0) await this.#refill(c, TARGET - count, lastResort === 0);
  }

  async rotate(c: SimClient): Promise<void> {
    // The README's old rotation: new credential, a package, then the old credential removed locally.
    const old = c.credential;
    c.credential = await c.cc.transaction(async (tx) => {
      const fresh = await tx.addCredential(Credential.basic(SUITE, c.clientId));
      await tx.generateKeypackage(fresh);
      await tx.removeCredential(old);
      return fresh;
    });
  }

  async claimed(): Promise<boolean> {
    return false; // no event subscription: the naive client only looks every 24 h
  }

  restart(): void {}
}
