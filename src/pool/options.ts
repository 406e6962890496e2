/**
 * Options of the key package pool, their defaults and their validation.
 */
import { CredentialRef } from "../credential/credentialRef.js";
import type { DeliveryServiceClient } from "../ds/client.js";
import { KEYPACKAGE_DEFAULT_LIFETIME } from "../keypackage/lifetime.js";

const DAY = 24 * 60 * 60 * 1000;

/** What the pool needs of a Delivery Service: a `DeliveryServiceClient` (or a wrapper of one). */
export type PoolDeliveryService = Pick<
  DeliveryServiceClient,
  "clientId" | "count" | "listAllKeypackages" | "upload" | "delete" | "rotateSignatureKey" | "events"
>;

export interface KeypackagePoolOptions {
  /** The Delivery Service client of this device (registered: client id and token set). */
  ds: PoolDeliveryService;
  /**
   * The credential whose packages the pool keeps on the DS. After `rotateCredential()` the pool
   * remembers the new one (in the keystore), so passing the old one again is fine.
   */
  credential: CredentialRef;
  /** Regular packages to have on the DS after a top-up. Default 100. */
  target?: number;
  /** Top up when fewer than this many regular packages will still be valid at now + `rotateBefore`. Default 25. */
  lowWater?: number;
  /** Replace packages that expire within this many ms. Default 14 days. Must be < `lifetime`. */
  rotateBefore?: number;
  /** Keep exactly one last-resort package (RFC 9750) on the DS. Default true. */
  lastResort?: boolean;
  /** How long (ms) a package stays usable locally after it left the DS (a Welcome may be in flight). Default 7 days. */
  gracePeriod?: number;
  /** Lifetime (ms) of the packages the pool generates. Default `KEYPACKAGE_DEFAULT_LIFETIME` (84 days). */
  lifetime?: number;
}

export const POOL_DEFAULTS = {
  target: 100,
  lowWater: 25,
  rotateBefore: 14 * DAY,
  lastResort: true,
  gracePeriod: 7 * DAY,
  lifetime: KEYPACKAGE_DEFAULT_LIFETIME,
} as const;

export interface ResolvedPoolOptions {
  ds: PoolDeliveryService;
  credential: CredentialRef;
  target: number;
  lowWater: number;
  rotateBefore: number;
  lastResort: boolean;
  gracePeriod: number;
  lifetime: number;
}

const MAX_TARGET = 10_000;

function ms(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative number of milliseconds, got ${String(value)}`);
  }
  return value;
}

function count(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Fill in the defaults and check every option (`TypeError` on a bad one). */
export function resolvePoolOptions(options: KeypackagePoolOptions): ResolvedPoolOptions {
  if (options === null || typeof options !== "object") throw new TypeError("pool options must be an object");
  const ds = options.ds as Partial<PoolDeliveryService> | null | undefined;
  if (
    ds === null ||
    typeof ds !== "object" ||
    typeof ds.count !== "function" ||
    typeof ds.listAllKeypackages !== "function" ||
    typeof ds.upload !== "function" ||
    typeof ds.delete !== "function" ||
    typeof ds.rotateSignatureKey !== "function" ||
    typeof ds.events !== "function"
  ) {
    throw new TypeError("ds must be a DeliveryServiceClient");
  }
  if (!(options.credential instanceof CredentialRef))
    throw new TypeError("credential must be a CredentialRef");
  const target = count("target", options.target, POOL_DEFAULTS.target, 1, MAX_TARGET);
  const lowWater = count("lowWater", options.lowWater, Math.min(POOL_DEFAULTS.lowWater, target), 1, target);
  const lifetime = ms("lifetime", options.lifetime, POOL_DEFAULTS.lifetime);
  if (lifetime === 0 || lifetime > KEYPACKAGE_DEFAULT_LIFETIME) {
    throw new TypeError(
      `lifetime must be > 0 and ≤ ${KEYPACKAGE_DEFAULT_LIFETIME} ms (84 days), got ${lifetime}`,
    );
  }
  const rotateBefore = ms(
    "rotateBefore",
    options.rotateBefore,
    Math.min(POOL_DEFAULTS.rotateBefore, lifetime / 2),
  );
  if (rotateBefore >= lifetime) {
    throw new TypeError(
      `rotateBefore (${rotateBefore} ms) must be shorter than lifetime (${lifetime} ms), or every new package is due at once`,
    );
  }
  const gracePeriod = ms("gracePeriod", options.gracePeriod, POOL_DEFAULTS.gracePeriod);
  if (options.lastResort !== undefined && typeof options.lastResort !== "boolean") {
    throw new TypeError("lastResort must be a boolean");
  }
  return {
    ds: options.ds,
    credential: options.credential,
    target,
    lowWater,
    rotateBefore,
    lastResort: options.lastResort ?? POOL_DEFAULTS.lastResort,
    gracePeriod,
    lifetime,
  };
}
