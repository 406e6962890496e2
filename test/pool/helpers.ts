import { randomBytes } from "node:crypto";
import {
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  DeliveryServiceClient,
  Keypackage,
  type CredentialRef,
  type KeypackagePool,
  type KeypackagePoolOptions,
} from "../../src/index.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { PostgresDsStore } from "../../src/ds/postgresStore.js";
import type { DeliveryServiceStore } from "../../src/ds/store.js";
import {
  PG_URL,
  SECRET,
  SUITE1,
  dropSchema,
  randomUserId,
  startServer,
  uniqueSchema,
} from "../ds/helpers.js";
import { TestClock } from "../helpers/session.js";

export { SUITE1 };
export const DAY = 24 * 60 * 60 * 1000;

/** A DS (SQLite in memory, or PostgreSQL in a fresh schema) on loopback, with a virtual clock. */
export async function startDs(
  clock: TestClock,
  kind: "sqlite" | "postgres" = "sqlite",
): Promise<{ url: string; store: DeliveryServiceStore; close: () => Promise<void> }> {
  let store: DeliveryServiceStore;
  let schema: string | undefined;
  if (kind === "sqlite") {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    store = s;
  } else {
    schema = uniqueSchema("pool");
    const s = new PostgresDsStore(PG_URL, { schema, poolSize: 4 });
    await s.init();
    store = s;
  }
  // Generous rate limits: the tests claim and sync far more often than a real client.
  const limits = {
    claimsPerTargetUser: 1_000_000,
    claimsPerWindow: 1_000_000,
    readsPerWindow: 1_000_000,
    uploadsPerWindow: 1_000_000,
  };
  const server = await startServer(store, { clock: clock.now, closeStore: true, limits });
  return {
    url: server.url,
    store,
    close: async () => {
      await server.close();
      if (schema !== undefined) await dropSchema(schema);
    },
  };
}

/** A device: session on an in-memory keystore, a Basic credential, registered with the DS. */
export class PoolDevice {
  private constructor(
    readonly cc: CoreCrypto,
    readonly clientId: ClientId,
    readonly credential: Credential,
    readonly credRef: CredentialRef,
    readonly ds: DeliveryServiceClient,
  ) {}

  static async create(url: string, clock: TestClock, database?: Database): Promise<PoolDevice> {
    const clientId = ClientId.parse(`${randomUserId()}:${randomBytes(4).toString("hex")}@example.com`);
    const cc = await CoreCrypto.open(database ?? (await Database.inMemory()), { clock: clock.now });
    cc.provideTransport({ sendCommitBundle: async () => "success" });
    const credential = Credential.basic(SUITE1, clientId);
    const credRef = await cc.transaction((tx) => tx.addCredential(credential));
    const ds = new DeliveryServiceClient({ baseUrl: url });
    await ds.register({
      clientId,
      signatureKeys: { [SUITE1]: credential.publicKey },
      enrollmentSecret: SECRET,
    });
    return new PoolDevice(cc, clientId, credential, credRef, ds);
  }

  pool(options: Partial<KeypackagePoolOptions> = {}): KeypackagePool {
    return this.cc.keypackagePool({ ds: this.ds, credential: this.credRef, ...options });
  }

  /** Refs of the local key packages (with private keys). */
  async localRefs(): Promise<Set<string>> {
    const refs = await this.cc.transaction((tx) => tx.getKeypackageRefs());
    return new Set(refs.map((r) => r.hex()));
  }

  /** A new credential (new signature key) for the same client id and suite. */
  async newCredential(): Promise<CredentialRef> {
    return this.cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE1, this.clientId)));
  }
}

/**
 * Claim one package of `owner` as `claimer` (another user), add the owner to a new conversation
 * of the claimer and return the Welcome (MLSMessage) the owner would receive.
 */
export async function claimAndWelcome(
  claimer: PoolDevice,
  owner: PoolDevice | ClientId,
): Promise<{ ref: string; lastResort: boolean; welcome: Uint8Array }> {
  const ownerId = owner instanceof ClientId ? owner : owner.clientId;
  const claimed = await claimer.ds.claim(ownerId.userId(), SUITE1);
  const kp = claimed.keyPackages[0];
  if (kp === undefined) throw new Error("nothing to claim");
  let welcome: Uint8Array | undefined;
  claimer.cc.provideTransport({
    sendCommitBundle: async (bundle) => {
      welcome = bundle.welcome;
      return "success";
    },
  });
  const convId = randomBytes(16);
  await claimer.cc.transaction(async (tx) => {
    await tx.createConversation(convId, claimer.credRef);
    await tx.addClientsToConversation(convId, [Keypackage.deserialize(kp.keyPackage)]);
  });
  if (welcome === undefined) throw new Error("no Welcome");
  return { ref: kp.ref, lastResort: kp.lastResort, welcome };
}

/** Claim `n` packages of `owner` (one request each); returns their refs and last-resort flags. */
export async function claimN(
  claimer: PoolDevice,
  owner: PoolDevice,
  n: number,
): Promise<{ ref: string; lastResort: boolean; keyPackage: Uint8Array }[]> {
  const out: { ref: string; lastResort: boolean; keyPackage: Uint8Array }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await claimer.ds.claim(owner.clientId.userId(), SUITE1);
    const kp = r.keyPackages[0];
    if (kp === undefined) break;
    out.push(kp);
  }
  return out;
}

/** Wait until `cond` holds (polling), or fail after `timeoutMs`. */
export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

export { TestClock };
