/**
 * Pool events for clients (Node.js): `GET /v1/clients/:clientId/events` streams Server-Sent
 * Events (WHATWG HTML §9.2) to a client about its own key packages. The server publishes facts
 * (`DsStoreEvent`: a package claimed, a key rotated) on the store's event bus (PostgreSQL
 * LISTEN/NOTIFY across processes, in-process for SQLite); this hub turns them into each
 * subscriber's events (`claimed`, `last_resort_claimed`, `low_water`, `rotated`), with bounded
 * subscribers and bounded buffering per connection.
 */
import type { ServerResponse } from "node:http";
import { Gauge, type Registry } from "prom-client";
import type { DsEventBus, DsStoreEvent } from "./store.js";
import type { DsPoolEvent } from "./wire.js";

export interface EventHubLimits {
  /** Open streams per client (default 4). */
  perClient: number;
  /** Open streams per server (default 1000). */
  total: number;
  /** Heartbeat comment interval, ms (default 15 000). */
  heartbeatMs: number;
  /** Unsent bytes a slow reader may leave buffered before its stream is dropped (default 64 KiB). */
  maxBufferedBytes: number;
}

export const DEFAULT_EVENT_LIMITS: Readonly<EventHubLimits> = Object.freeze({
  perClient: 4,
  total: 1000,
  heartbeatMs: 15_000,
  maxBufferedBytes: 64 * 1024,
});

export interface SubscriptionFilter {
  /** `low_water` when fewer regular packages than this are left after a claim. */
  lowWater?: number;
  /** Only this suite. */
  ciphersuite?: number;
}

interface Subscriber {
  clientId: string;
  filter: SubscriptionFilter;
  raw: ServerResponse;
}

/** One SSE frame. */
function frame(e: DsPoolEvent): string {
  return `event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
}

/** What a subscriber hears of one published fact. */
export function eventsFor(e: DsStoreEvent, filter: SubscriptionFilter): DsPoolEvent[] {
  if (filter.ciphersuite !== undefined && filter.ciphersuite !== e.ciphersuite) return [];
  if (e.kind === "rotated")
    return [{ type: "rotated", data: { ciphersuite: e.ciphersuite, deleted: e.deleted } }];
  const out: DsPoolEvent[] = [
    {
      type: "claimed",
      data: { ciphersuite: e.ciphersuite, ref: e.ref, lastResort: e.lastResort, remaining: e.remaining },
    },
  ];
  // RFC 9750 §5.2 (last resort key packages): the client should replace it soon.
  if (e.lastResort)
    out.push({ type: "last_resort_claimed", data: { ciphersuite: e.ciphersuite, ref: e.ref } });
  if (filter.lowWater !== undefined && e.remaining < filter.lowWater) {
    out.push({
      type: "low_water",
      data: { ciphersuite: e.ciphersuite, count: e.remaining, lowWater: filter.lowWater },
    });
  }
  return out;
}

export class EventHub {
  readonly limits: EventHubLimits;
  readonly #bus: DsEventBus;
  readonly #byClient = new Map<string, Set<Subscriber>>();
  readonly #stop: () => void;
  #total = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(bus: DsEventBus, limits: Partial<EventHubLimits> = {}) {
    this.limits = { ...DEFAULT_EVENT_LIMITS, ...limits };
    this.#bus = bus;
    this.#stop = bus.subscribe((e) => this.#dispatch(e));
  }

  /** Open streams, all clients. */
  get subscribers(): number {
    return this.#total;
  }

  /** Open streams of one client. */
  subscribersOf(clientId: string): number {
    return this.#byClient.get(clientId)?.size ?? 0;
  }

  /** `mlskp_ds_event_subscribers`: open event streams of this server. */
  registerMetrics(registry: Registry): void {
    const count = (): number => this.subscribers;
    new Gauge({
      name: "mlskp_ds_event_subscribers",
      help: "Open event streams (GET /v1/clients/:clientId/events)",
      registers: [registry],
      collect() {
        this.set(count());
      },
    });
  }

  /** Why a new stream of this client would be refused, if it would. */
  refusal(clientId: string): "per_client" | "total" | "closed" | undefined {
    if (this.#closed) return "closed";
    if (this.subscribersOf(clientId) >= this.limits.perClient) return "per_client";
    if (this.#total >= this.limits.total) return "total";
    return undefined;
  }

  /**
   * Start streaming on a hijacked response (`headers`: those already set on the reply, e.g.
   * CORS). The stream ends when the peer goes away or the hub closes.
   */
  open(
    clientId: string,
    filter: SubscriptionFilter,
    raw: ServerResponse,
    headers: Record<string, string | number | string[]>,
  ): void {
    const sub: Subscriber = { clientId, filter, raw };
    let set = this.#byClient.get(clientId);
    if (set === undefined) {
      set = new Set();
      this.#byClient.set(clientId, set);
    }
    set.add(sub);
    this.#total++;
    let removed = false;
    const remove = (): void => {
      if (removed) return;
      removed = true;
      const s = this.#byClient.get(clientId);
      s?.delete(sub);
      if (s !== undefined && s.size === 0) this.#byClient.delete(clientId);
      this.#total--;
      if (this.#total === 0 && this.#timer !== undefined) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
    raw.on("close", remove);
    raw.on("error", remove);
    raw.socket?.setNoDelay(true);
    raw.socket?.setKeepAlive(true);
    raw.writeHead(200, {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // reverse proxies (nginx) must not buffer the stream
      "x-accel-buffering": "no",
    });
    raw.write(": connected\n\n");
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#heartbeat(), this.limits.heartbeatMs);
      this.#timer.unref();
    }
  }

  /** End every stream and stop listening (server shutdown). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const set of [...this.#byClient.values()])
      for (const sub of [...set]) {
        // end the response, then the connection (so the server's close need not wait for it);
        // a peer that does not read is cut off
        sub.raw.end(() => sub.raw.socket?.destroy());
        setTimeout(() => sub.raw.destroy(), 1_000).unref();
      }
    await this.#bus.close();
  }

  #write(sub: Subscriber, text: string): void {
    const { raw } = sub;
    if (raw.destroyed || raw.writableEnded) return;
    if (raw.writableLength > this.limits.maxBufferedBytes) {
      // A reader this slow gets no more: it reconnects and syncs.
      raw.destroy();
      return;
    }
    raw.write(text);
  }

  #heartbeat(): void {
    for (const set of this.#byClient.values()) for (const sub of [...set]) this.#write(sub, ": ping\n\n");
  }

  #dispatch(e: DsStoreEvent): void {
    const set = this.#byClient.get(e.clientId);
    if (set === undefined) return;
    for (const sub of [...set]) {
      const text = eventsFor(e, sub.filter).map(frame).join("");
      if (text.length > 0) this.#write(sub, text);
    }
  }
}
