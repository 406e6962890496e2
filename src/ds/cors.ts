/**
 * CORS for the Delivery Service (off by default): the listed origins may call the API from a
 * page. Bearer tokens travel in `Authorization`, never in cookies, so no credentials mode.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

/** Request headers a page may send (the preflight allows exactly these). */
export const CORS_ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "x-enrollment-secret",
  "idempotency-key",
];
/** Response headers a page may read besides the safelisted ones. */
export const CORS_EXPOSED_HEADERS = ["retry-after", "idempotent-replayed"];
export const CORS_ALLOWED_METHODS = ["GET", "POST", "PUT", "DELETE"];
/** How long a browser may cache a preflight answer, seconds. */
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * Check a list of origins (`scheme://host[:port]`, exactly as browsers send them, or `*` for any
 * origin); throws a `TypeError` naming the first bad entry.
 */
export function parseCorsOrigins(origins: string | readonly string[]): string[] {
  const list = (typeof origins === "string" ? origins.split(",") : [...origins])
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
  for (const o of list) {
    if (o === "*") continue;
    let ok = false;
    try {
      const u = new URL(o);
      ok = (u.protocol === "http:" || u.protocol === "https:") && u.origin === o;
    } catch {
      ok = false;
    }
    if (!ok)
      throw new TypeError(`not an origin (scheme://host[:port], lowercase, no path): ${JSON.stringify(o)}`);
  }
  return list;
}

export class CorsPolicy {
  readonly #any: boolean;
  readonly #origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    const list = parseCorsOrigins(origins);
    this.#any = list.includes("*");
    this.#origins = new Set(list);
  }

  allows(origin: string | undefined): origin is string {
    return typeof origin === "string" && (this.#any || this.#origins.has(origin));
  }

  /** Headers for an actual (non-preflight) request: on every answer, errors included. */
  decorate(request: FastifyRequest, reply: FastifyReply): void {
    reply.header("vary", "Origin");
    const origin = request.headers.origin;
    if (!this.allows(origin)) return;
    reply.header("access-control-allow-origin", this.#any ? "*" : origin);
    reply.header("access-control-expose-headers", CORS_EXPOSED_HEADERS.join(", "));
  }

  /** Headers of a successful preflight answer. */
  preflight(reply: FastifyReply): void {
    reply.header("access-control-allow-methods", CORS_ALLOWED_METHODS.join(", "));
    reply.header("access-control-allow-headers", CORS_ALLOWED_HEADERS.join(", "));
    reply.header("access-control-max-age", String(CORS_MAX_AGE_SECONDS));
  }
}
