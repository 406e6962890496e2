import type { DeliveryServiceStore } from "./store.js";

export interface OpenStoreOptions {
  /** PostgreSQL only: schema holding the tables (created if missing). */
  pgSchema?: string;
  /** PostgreSQL only: pool size. */
  pgPoolSize?: number;
  /** PostgreSQL only: hash-partition a new `ds_keypackages` by user id into this many partitions. */
  pgPartitions?: number;
}

/** True for `postgres://` and `postgresql://` URLs. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/**
 * Open (and initialize) a store: a `postgres://…` URL, or a SQLite file path / `:memory:`.
 * Each backend's driver is loaded only when used.
 */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<DeliveryServiceStore> {
  let store: DeliveryServiceStore;
  if (isPostgresUrl(spec)) {
    const { PostgresDsStore } = await import("./postgresStore.js");
    store = new PostgresDsStore(spec, {
      ...(options.pgSchema !== undefined ? { schema: options.pgSchema } : {}),
      ...(options.pgPoolSize !== undefined ? { poolSize: options.pgPoolSize } : {}),
      ...(options.pgPartitions !== undefined ? { partitions: options.pgPartitions } : {}),
    });
  } else {
    const { SqliteDsStore } = await import("./sqliteStore.js");
    store = new SqliteDsStore(spec);
  }
  try {
    await store.init();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}
