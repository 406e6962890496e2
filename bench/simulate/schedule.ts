/**
 * The simulation's schedule: everything random, drawn once from one seed, so that both policies
 * (the pool and the naive one) live through exactly the same claims, absences, rotations and crashes.
 */
import { prng } from "../../test/helpers/prng.js";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface SimConfig {
  clients: number;
  days: number;
  seed: number;
  /** Mean claims of one client's packages per day (the rate varies per client, heavy-tailed). */
  claimsPerClientPerDay: number;
  /** Every k-th claim's Welcome is a real one (create + add + processWelcomeMessage); the others are checked against the keystore. */
  welcomeEvery: number;
  /** Share of clients that go offline now and then (for 1 to 6 days at a time). */
  offlineShare: number;
  /** Share of clients that get one burst of claims (40 to 140 in 1 to 3 hours: added to many groups). */
  burstShare: number;
  /** Share of clients that rotate their credential once. */
  rotationShare: number;
  /** Probability that a sync is cut off by a crash (its DS connection fails after 0 to 3 requests; it fires only if the sync gets that far). */
  crashRate: number;
}

export const DEFAULT_CONFIG: Readonly<SimConfig> = Object.freeze({
  clients: 200,
  days: 120,
  seed: 13,
  claimsPerClientPerDay: 0.5,
  welcomeEvery: 10,
  offlineShare: 0.5,
  burstShare: 0.2,
  rotationShare: 0.5,
  crashRate: 0.1,
});

/** One client's life. Times are whole hours since the start. */
export interface ClientPlan {
  index: number;
  clientId: string;
  /** Offline intervals [from, to): offline from hour `from`, back online at hour `to`. */
  offline: { from: number; to: number }[];
  /** Hours at which the client rotates its credential (applied when next online). */
  rotations: number[];
  /** Seed of this client's crash draws (one draw per sync). */
  crashSeed: number;
}

export interface Schedule {
  config: SimConfig;
  hours: number;
  clients: ClientPlan[];
  /** Per hour: the indexes of the clients whose packages are claimed in that hour, in order. */
  claims: number[][];
  totalClaims: number;
}

function uuid(rand: () => number): string {
  const h = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Exponential draw with the given mean. */
const exp = (rand: () => number, mean: number): number => -Math.log(1 - rand()) * mean;

export function makeSchedule(config: SimConfig): Schedule {
  const rand = prng(config.seed);
  const hours = config.days * 24;
  const claims: number[][] = Array.from({ length: hours }, () => []);
  const clients: ClientPlan[] = [];
  let totalClaims = 0;
  for (let index = 0; index < config.clients; index++) {
    const device = Math.floor(rand() * 0xffffffff)
      .toString(16)
      .padStart(8, "0");
    const clientId = `${uuid(rand)}:${device}@sim.example.com`;
    // Heavy-tailed claim rate with mean `claimsPerClientPerDay`: exponential per client.
    const perHour = exp(rand, config.claimsPerClientPerDay) / 24;
    for (let t = exp(rand, 1 / Math.max(perHour, 1e-9)); t < hours; t += exp(rand, 1 / perHour)) {
      claims[Math.floor(t)]!.push(index);
      totalClaims++;
    }
    if (rand() < config.burstShare) {
      const at = Math.floor(rand() * (hours - 3));
      const n = 40 + Math.floor(rand() * 100);
      const span = 1 + Math.floor(rand() * 3);
      for (let i = 0; i < n; i++) claims[at + (i % span)]!.push(index);
      totalClaims += n;
    }
    const offline: { from: number; to: number }[] = [];
    if (rand() < config.offlineShare) {
      let t = Math.floor(exp(rand, 12 * 24)) + 1;
      while (t < hours) {
        const to = t + 24 * (1 + Math.floor(rand() * 6));
        offline.push({ from: t, to: Math.min(to, hours) });
        t = to + Math.floor(exp(rand, 12 * 24)) + 1;
      }
    }
    const rotations: number[] = [];
    if (rand() < config.rotationShare) {
      const margin = Math.min(5 * 24, Math.floor(hours / 10));
      rotations.push(margin + Math.floor(rand() * (hours - 2 * margin)));
    }
    clients.push({ index, clientId, offline, rotations, crashSeed: Math.floor(rand() * 2 ** 31) });
  }
  // Within an hour, claims of different clients interleave.
  for (const hour of claims) {
    for (let i = hour.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [hour[i], hour[j]] = [hour[j]!, hour[i]!];
    }
  }
  return { config, hours, clients, claims, totalClaims };
}
