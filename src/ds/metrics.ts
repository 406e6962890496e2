/** Prometheus metrics of one Delivery Service instance (its own registry). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DsPoolSize } from "./store.js";

export class DsMetrics {
  readonly registry = new Registry();
  readonly uploads = new Counter({
    name: "mlskp_ds_upload_requests_total",
    help: "Key package upload requests (POST and PUT) by result",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly uploadedKeypackages = new Counter({
    name: "mlskp_ds_uploaded_keypackages_total",
    help: "Key packages accepted",
    registers: [this.registry],
  });
  readonly rejectedKeypackages = new Counter({
    name: "mlskp_ds_rejected_keypackages_total",
    help: "Key packages rejected, by rule",
    labelNames: ["rule"] as const,
    registers: [this.registry],
  });
  readonly claims = new Counter({
    name: "mlskp_ds_claim_requests_total",
    help: "Claim requests answered",
    registers: [this.registry],
  });
  readonly claimedKeypackages = new Counter({
    name: "mlskp_ds_claimed_keypackages_total",
    help: "Key packages handed out, by kind (regular or last_resort)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly exhausted = new Counter({
    name: "mlskp_ds_exhausted_claims_total",
    help: "Clients found with no key package at all during a claim",
    registers: [this.registry],
  });
  readonly purged = new Counter({
    name: "mlskp_ds_purged_keypackages_total",
    help: "Expired key packages deleted",
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: "mlskp_ds_auth_failures_total",
    help: "Requests refused for a missing, unknown or foreign token, or a wrong enrollment secret",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly claimSeconds = new Histogram({
    name: "mlskp_ds_claim_duration_seconds",
    help: "Time spent in the store per claim",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  /**
   * `poolSizes` reads the store's counters (no table scan). Scrapes share one in-flight read and
   * reuse an answer younger than `poolSizesMaxAgeMs` (default 1000), so scraping at any rate
   * costs the database at most one small read per second per process.
   */
  constructor(poolSizes: () => Promise<DsPoolSize[]>, options: { poolSizesMaxAgeMs?: number } = {}) {
    const maxAge = options.poolSizesMaxAgeMs ?? 1000;
    let last: { at: number; sizes: Promise<DsPoolSize[]> } | undefined;
    const cached = (): Promise<DsPoolSize[]> => {
      const now = Date.now();
      if (last === undefined || now - last.at >= maxAge) {
        const sizes = poolSizes();
        last = { at: now, sizes };
        sizes.catch(() => (last = undefined)); // a failed read is not reused
      }
      return last.sizes;
    };
    new Gauge({
      name: "mlskp_ds_keypackages",
      help: "Key packages stored (expired ones until purged), by cipher suite and kind",
      labelNames: ["ciphersuite", "kind"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const p of await cached()) {
          this.set(
            { ciphersuite: String(p.ciphersuite), kind: p.lastResort ? "last_resort" : "regular" },
            p.count,
          );
        }
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: "mlskp_ds_" });
  }
}
