/**
 * One simulated world: a virtual clock, a real Delivery Service (SQLite in memory, or PostgreSQL)
 * reached in-process through `app.inject` (no sockets), N clients with real sessions on in-memory
 * keystores, and a few "claimer" bots that claim packages and add their owners to conversations.
 *
 * A policy (the pool, or the naive one) decides what each client does to keep its packages on the
 * DS; the world plays the schedule and measures what the claimers and the joiners experience.
 */
import type { FastifyInstance } from "fastify";
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  DeliveryServiceClient,
  Keypackage,
  MlsKeypackagesError,
  type CredentialRef,
} from "../../src/index.js";
import { createDeliveryService, openStore, type DeliveryServiceStore } from "../../src/ds/index.js";
import { bytesEqual, hexToBytes } from "../../src/mls/crypto/bytes.js";
import { prng } from "../../test/helpers/prng.js";
import { DAY, HOUR, type ClientPlan, type Schedule } from "./schedule.js";

export const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const BOTS = 4;
const BASE_URL = "http://ds.sim";
/** Every rate limit out of the way: the simulation sends days of traffic per real second. */
const HUGE = 1_000_000_000;

/** A Welcome (or its light stand-in) waiting for its joiner to come online. */
interface PendingWelcome {
  ref: string;
  lastResort: boolean;
  /** The package's not_after, ms. */
  notAfter: number;
  /** A real Welcome; absent: the light check (the package's private keys must still be in the keystore). */
  welcome?: Uint8Array;
}

/** One simulated client. Policies keep their own state in `state`. */
export class SimClient {
  online = true;
  /** Hour of the next timer wake-up (policies set it). */
  nextTimer = 0;
  pendingRotation = false;
  readonly queue: PendingWelcome[] = [];
  /** Requests sent to the DS by this client (its own upkeep, not the bots' claims). */
  requests = 0;
  /** When set, the DS connection fails after this many more requests (a crash mid-sync). */
  failAfter: number | undefined;
  readonly crashDraw: () => number;
  state: unknown;

  constructor(
    readonly plan: ClientPlan,
    readonly clientId: ClientId,
    readonly database: Database,
    readonly cc: CoreCrypto,
    public credential: CredentialRef,
    readonly ds: DeliveryServiceClient,
  ) {
    this.crashDraw = prng(plan.crashSeed);
  }

  get userId(): string {
    return this.clientId.userId();
  }
}

/** What a policy does; every call may throw (a crash), the world restarts the client then. */
export interface Policy {
  readonly name: string;
  /** Register with the DS and fill the pool (hour 0). */
  setup(c: SimClient, w: World): Promise<void>;
  /** The periodic (or event-driven) upkeep. */
  sync(c: SimClient, w: World, reason: "timer" | "online" | "event" | "restart"): Promise<void>;
  /** Replace the credential (a new signature key). */
  rotate(c: SimClient, w: World): Promise<void>;
  /**
   * A claim handed out one of c's packages while c was online (its DS event stream connected);
   * resolves true when the event wakes c for a sync.
   */
  claimed(
    c: SimClient,
    w: World,
    info: { ref: string; lastResort: boolean; remaining: number },
  ): Promise<boolean>;
  /** After a crash: drop in-memory state as a restarted app would. */
  restart(c: SimClient, w: World): void;
  /** The timer period, hours. */
  readonly timerHours: number;
}

export interface SimCounters {
  claims: number;
  handedOut: number;
  lastResortHandedOut: number;
  exhausted: number;
  expiredHandedOut: number;
  staleOldKey: number;
  staleNoPrivateKey: number;
  welcomesFull: number;
  welcomesLight: number;
  orphanWelcomes: number;
  /** Welcomes refused because the joiner's own package (its leaf) expired before it came online (§7.3). */
  expiredAtJoin: number;
  addFailed: number;
  syncs: number;
  syncErrors: number;
  crashes: number;
  rotations: number;
  requests: number;
  /** Requests by kind (`GET count`, `POST key-packages`, …). */
  byKind: Record<string, number>;
}

export interface WorldOptions {
  schedule: Schedule;
  policy: Policy;
  /** PostgreSQL URL (else SQLite in memory) and the schema to use. */
  pg?: { url: string; schema: string };
  /** Called once per simulated day. */
  onDay?: (day: number) => void;
}

export interface WorldResult {
  policy: string;
  counters: SimCounters;
  /** DS rows (stored packages, all kinds) per client, sampled at the end of each day. */
  rowsPerClient: number[];
  /** Fewest regular packages valid now on the DS among online clients, sampled daily. */
  minValidOnline: number[];
  /** Key packages in the clients' keystores at the end, per client (mean). */
  localPerClient: number;
  realMs: number;
}

const kindOf = (method: string, path: string): string =>
  `${method} ${path
    .split("?")[0]!
    .replace(/^\/v1\/clients\/[^/]+/, "")
    .replace(/^\/v1\/users\/[^/]+/, "users")}`;

export class World {
  now: number;
  readonly start: number;
  readonly counters: SimCounters = {
    claims: 0,
    handedOut: 0,
    lastResortHandedOut: 0,
    exhausted: 0,
    expiredHandedOut: 0,
    staleOldKey: 0,
    staleNoPrivateKey: 0,
    welcomesFull: 0,
    welcomesLight: 0,
    orphanWelcomes: 0,
    expiredAtJoin: 0,
    addFailed: 0,
    syncs: 0,
    syncErrors: 0,
    crashes: 0,
    rotations: 0,
    requests: 0,
    byKind: {},
  };
  readonly clients: SimClient[] = [];
  readonly bots: { cc: CoreCrypto; credential: CredentialRef; ds: DeliveryServiceClient }[] = [];
  readonly clock = (): Date => new Date(this.now);
  /** CPU time spent per phase, ms (for tuning). */
  readonly phase = { claims: 0, syncs: 0, other: 0 };
  #claimIndex = 0;
  #welcome: Uint8Array | undefined;

  private constructor(
    readonly schedule: Schedule,
    readonly policy: Policy,
    readonly app: FastifyInstance,
    readonly store: DeliveryServiceStore,
  ) {
    // A fixed start (midnight UTC), so that runs compare; lifetimes are relative to it.
    this.start = Date.UTC(2027, 0, 4);
    this.now = this.start;
  }

  static async create(options: WorldOptions): Promise<World> {
    const ref: { world?: World } = {};
    const store = options.pg
      ? await openStore(options.pg.url, { pgSchema: options.pg.schema })
      : await openStore(":memory:");
    const app = await createDeliveryService({
      store,
      dev: true,
      clock: () => ref.world!.clock(),
      maintenanceIntervalMs: 0,
      verifyWorkers: 0,
      limits: {
        uploadsPerWindow: HUGE,
        claimsPerWindow: HUGE,
        readsPerWindow: HUGE,
        registrationsPerWindow: HUGE,
        uploadPackagesPerWindow: HUGE,
        uploadBytesPerWindow: HUGE,
        claimsPerTargetUser: HUGE,
        maxStoredPerClient: 10_000,
      },
    });
    await app.ready();
    const w = new World(options.schedule, options.policy, app, store);
    ref.world = w;
    return w;
  }

  /** A fetch that goes through `app.inject`, counting the client's requests and failing on demand. */
  fetchFor(owner: () => SimClient | undefined): typeof fetch {
    return async (input, init) => {
      const c = owner();
      const url = new URL(String(input instanceof Request ? input.url : input));
      const method = (init?.method ?? "GET").toUpperCase();
      if (c !== undefined) {
        if (c.failAfter !== undefined) {
          if (c.failAfter <= 0) throw new TypeError("fetch failed (simulated crash)");
          c.failAfter--;
        }
        c.requests++;
        this.counters.requests++;
        const kind = kindOf(method, url.pathname);
        this.counters.byKind[kind] = (this.counters.byKind[kind] ?? 0) + 1;
      }
      const r = await this.app.inject({
        method: method as "GET",
        url: url.pathname + url.search,
        headers: init?.headers as Record<string, string>, // the client always passes a plain object
        ...(typeof init?.body === "string" ? { payload: init.body } : {}),
      });
      const headers = new Headers();
      for (const [k, v] of Object.entries(r.headers)) {
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : String(v));
      }
      return new Response(r.statusCode === 204 ? null : new Uint8Array(r.rawPayload), {
        status: r.statusCode,
        headers,
      });
    };
  }

  async #session(clientId: ClientId): Promise<{ database: Database; cc: CoreCrypto; cred: CredentialRef }> {
    const database = await Database.inMemory();
    const cc = await CoreCrypto.open(database, { clock: this.clock });
    const cred = await cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE, clientId)));
    return { database, cc, cred };
  }

  async setup(): Promise<void> {
    for (let i = 0; i < BOTS; i++) {
      const id = ClientId.parse(
        `00000000-0000-4000-8000-${String(i).padStart(12, "0")}:b0${i}@sim.example.com`,
      );
      const { cc, cred } = await this.#session(id);
      const ds = new DeliveryServiceClient({ baseUrl: BASE_URL, fetch: this.fetchFor(() => undefined) });
      await ds.register({ clientId: id, signatureKeys: { [SUITE]: cred.publicKey() } });
      cc.provideTransport({
        sendCommitBundle: async (bundle) => {
          this.#welcome = bundle.welcome;
          return "success";
        },
      });
      this.bots.push({ cc, credential: cred, ds });
    }
    for (const plan of this.schedule.clients) {
      const clientId = ClientId.parse(plan.clientId);
      const { database, cc, cred } = await this.#session(clientId);
      const holder: { client?: SimClient } = {};
      const ds = new DeliveryServiceClient({ baseUrl: BASE_URL, fetch: this.fetchFor(() => holder.client) });
      const self = new SimClient(plan, clientId, database, cc, cred, ds);
      holder.client = self;
      this.clients.push(self);
      await this.policy.setup(self, this);
      self.nextTimer = this.policy.timerHours;
    }
  }

  /** A sync, maybe cut off by a crash (then the client restarts and syncs again at once). */
  async sync(c: SimClient, reason: "timer" | "online" | "event"): Promise<void> {
    this.counters.syncs++;
    const crash = c.crashDraw() < this.schedule.config.crashRate;
    if (crash) c.failAfter = Math.floor(c.crashDraw() * 4);
    try {
      await this.policy.sync(c, this, reason);
      c.failAfter = undefined;
      return;
    } catch (err) {
      const crashed = c.failAfter !== undefined && c.failAfter <= 0;
      c.failAfter = undefined;
      if (!crashed) {
        this.counters.syncErrors++;
        this.#logError(c, "sync", err);
        return;
      }
    }
    this.counters.crashes++;
    this.policy.restart(c, this);
    this.counters.syncs++;
    try {
      await this.policy.sync(c, this, "restart");
    } catch (err) {
      this.counters.syncErrors++;
      this.#logError(c, "sync after restart", err);
    }
  }

  #errorsLogged = 0;
  #logError(c: SimClient, what: string, err: unknown): void {
    if (this.#errorsLogged++ < 5) {
      const e = err as { message?: string; code?: string };
      console.error(
        `  [${this.policy.name}] client ${c.plan.index} ${what}: ${e.code ?? ""} ${e.message ?? String(err)}`,
      );
    }
  }

  async #processWelcome(c: SimClient, p: PendingWelcome): Promise<void> {
    if (p.welcome !== undefined) {
      this.counters.welcomesFull++;
      try {
        await c.cc.transaction(async (tx) => {
          const id = await tx.processWelcomeMessage(p.welcome!);
          await tx.wipeConversation(id);
        });
      } catch (err) {
        if (MlsKeypackagesError.is(err) && err.code === "OrphanWelcome") this.counters.orphanWelcomes++;
        else if (MlsKeypackagesError.is(err) && p.notAfter <= this.now) this.counters.expiredAtJoin++;
        else throw err;
      }
      return;
    }
    // Light: what processWelcomeMessage looks up (the package's private keys), and the consumption.
    this.counters.welcomesLight++;
    if (p.notAfter <= this.now) {
      this.counters.expiredAtJoin++; // processWelcomeMessage refuses our own expired leaf (§7.3)
      return;
    }
    await c.cc.transaction(async (tx) => {
      const kp = await tx.getKeypackage(hexToBytes(p.ref));
      if (kp === undefined) {
        this.counters.orphanWelcomes++;
        return;
      }
      if (!p.lastResort) await tx.removeKeypackage(hexToBytes(p.ref));
    });
  }

  async #claim(target: SimClient): Promise<void> {
    const n = this.#claimIndex++;
    const bot = this.bots[n % this.bots.length]!;
    this.counters.claims++;
    const r = await bot.ds.claim(target.userId, SUITE);
    const got = r.keyPackages[0];
    if (got === undefined) {
      this.counters.exhausted++;
      return;
    }
    this.counters.handedOut++;
    if (got.lastResort) this.counters.lastResortHandedOut++;
    const kp = Keypackage.deserialize(got.keyPackage, { clock: this.clock });
    if (notAfterOf(kp) <= this.now) this.counters.expiredHandedOut++;
    const current = target.credential.publicKey();
    if (!bytesEqual(kp.signatureKey(), current)) this.counters.staleOldKey++;
    const local = await target.cc.transaction((tx) => tx.getKeypackage(hexToBytes(got.ref)));
    if (local === undefined) this.counters.staleNoPrivateKey++;

    const notAfter = notAfterOf(kp);
    const pending: PendingWelcome = { ref: got.ref, lastResort: got.lastResort, notAfter };
    // A real Welcome for every k-th claim and for every last-resort package (the pool learns
    // from processWelcomeMessage that its last resort was used).
    if (got.lastResort || n % this.schedule.config.welcomeEvery === 0) {
      const conversationId = new TextEncoder().encode(`sim-${n}`);
      this.#welcome = undefined;
      try {
        await bot.cc.transaction(async (tx) => {
          await tx.createConversation(conversationId, bot.credential);
          await tx.addClientsToConversation(conversationId, [kp]);
        });
      } catch {
        this.counters.addFailed++;
        return;
      } finally {
        await bot.cc.transaction((tx) => tx.wipeConversation(conversationId)).catch(() => undefined);
      }
      if (this.#welcome === undefined) throw new Error("no Welcome was sent");
      pending.welcome = this.#welcome;
    }
    if (target.online) await this.#processWelcome(target, pending);
    else target.queue.push(pending);

    const remaining = (
      await this.store.countKeypackages(target.clientId.toString(), SUITE, Math.floor(this.now / 1000))
    ).regular;
    // The event reaches an online client within seconds: its sync runs before the next claim.
    if (
      target.online &&
      (await this.policy.claimed(target, this, { ref: got.ref, lastResort: got.lastResort, remaining }))
    ) {
      await this.sync(target, "event");
    }
  }

  async run(onDay?: (day: number, w: World) => void): Promise<WorldResult> {
    const t0 = performance.now();
    const rowsPerClient: number[] = [];
    const minValidOnline: number[] = [];
    const offlineAt = new Map<number, SimClient[]>();
    const onlineAt = new Map<number, SimClient[]>();
    const rotateAt = new Map<number, SimClient[]>();
    const push = (m: Map<number, SimClient[]>, h: number, c: SimClient) => m.set(h, [...(m.get(h) ?? []), c]);
    for (const c of this.clients) {
      for (const o of c.plan.offline) {
        push(offlineAt, o.from, c);
        push(onlineAt, o.to, c);
      }
      for (const h of c.plan.rotations) push(rotateAt, h, c);
    }
    for (let hour = 0; hour < this.schedule.hours; hour++) {
      this.now = this.start + hour * HOUR;
      for (const c of offlineAt.get(hour) ?? []) c.online = false;
      for (const c of rotateAt.get(hour) ?? []) c.pendingRotation = true;
      for (const c of onlineAt.get(hour) ?? []) {
        c.online = true;
        // Back online: the app fetches what arrived (Welcomes) first, then does its upkeep.
        for (const p of c.queue.splice(0)) await this.#processWelcome(c, p);
        await this.sync(c, "online");
        c.nextTimer = hour + this.policy.timerHours;
      }
      for (const c of this.clients) {
        if (c.online && c.pendingRotation) {
          c.pendingRotation = false;
          this.counters.rotations++;
          await this.policy.rotate(c, this);
        }
      }
      this.now += 30 * 60_000; // claims in the middle of the hour
      let tp = cpu();
      for (const i of this.schedule.claims[hour]!) await this.#claim(this.clients[i]!);
      this.phase.claims += cpu() - tp;
      tp = cpu();
      this.now = this.start + hour * HOUR + 50 * 60_000;
      for (const c of this.clients) {
        if (!c.online) continue;
        if (hour >= c.nextTimer) {
          await this.sync(c, "timer");
          c.nextTimer = hour + this.policy.timerHours;
        }
      }
      this.phase.syncs += cpu() - tp;
      tp = cpu();
      // The DS's maintenance purges expired rows (every 10 min in production).
      await this.store.purgeExpired(Math.floor(this.now / 1000), { pauseMs: 0, batchSize: 100_000 });
      if (hour % 24 === 23) {
        const sizes = await this.store.poolSizes(Math.floor(this.now / 1000));
        rowsPerClient.push(sizes.reduce((a, s) => a + s.count, 0) / this.clients.length);
        let min = Infinity;
        for (const c of this.clients) {
          if (!c.online) continue;
          const n = await this.store.countKeypackages(
            c.clientId.toString(),
            SUITE,
            Math.floor(this.now / 1000),
          );
          min = Math.min(min, n.regular);
        }
        minValidOnline.push(min === Infinity ? 0 : min);
        onDay?.((hour + 1) / 24, this);
      }
      this.phase.other += cpu() - tp;
    }
    let local = 0;
    for (const c of this.clients) local += (await c.cc.transaction((tx) => tx.getKeypackageRefs())).length;
    return {
      policy: this.policy.name,
      counters: this.counters,
      rowsPerClient,
      minValidOnline,
      localPerClient: local / this.clients.length,
      realMs: performance.now() - t0,
    };
  }

  async close(): Promise<void> {
    for (const c of this.clients) await c.cc.close();
    for (const b of this.bots) await b.cc.close();
    await this.app.close();
  }

  get day(): number {
    return (this.now - this.start) / DAY;
  }
}

const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const notAfterOf = (kp: Keypackage): number => kp.lifetime().notAfter.getTime();
