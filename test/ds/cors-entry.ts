/** Browser entry for cors.browser.test.ts: the browser-safe DS client, called from the page. */
import { DeliveryServiceClient, DeliveryServiceError } from "../../src/ds/client.js";

const fromB64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export interface CorsRun {
  origin: string;
  token: string;
  uploaded: string[];
  count: { count: number; lastResort: number };
  claimed: { clientId: string; ref: string; lastResort: boolean; bytes: number }[];
  rejected: { status: number; error: string; rules: string[] };
  limited: { status: number; error: string };
  denied: { status: number; error: string };
  /** Pool events heard over the SSE stream (fetch streaming) while the claim ran. */
  events: { type: string; data: unknown }[];
}

async function run(o: {
  allowed: string;
  denied: string;
  secret: string;
  clientId: string;
  signatureKey: string;
  packages: string[];
  bad: string;
  claimer: { clientId: string; token: string };
}): Promise<CorsRun> {
  const ds = new DeliveryServiceClient({ baseUrl: o.allowed });
  const token = await ds.register({
    clientId: o.clientId,
    signatureKeys: { 1: fromB64(o.signatureKey) },
    enrollmentSecret: o.secret,
  });
  const uploaded = (await ds.upload(o.packages.map(fromB64))).refs;
  const count = await ds.count(1);
  const claimer = new DeliveryServiceClient({ baseUrl: o.allowed, ...o.claimer });
  const userId = o.clientId.split(":")[0] as string;
  // subscribe to our pool's events before the claim, and stop after two of them
  const ac = new AbortController();
  let opened: () => void = () => undefined;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const events: { type: string; data: unknown }[] = [];
  const listening = (async () => {
    for await (const e of ds.events({ lowWater: 5, signal: ac.signal, onOpen: opened })) {
      events.push(e);
      if (events.length === 2) ac.abort();
    }
  })();
  await open;
  const claimResult = await claimer.claim(userId, 1);
  await listening;
  const claimed = claimResult.keyPackages.map((k) => ({
    clientId: k.clientId,
    ref: k.ref,
    lastResort: k.lastResort,
    bytes: k.keyPackage.length,
  }));
  const err = async (p: Promise<unknown>) => {
    try {
      await p;
      throw new Error("expected a DeliveryServiceError");
    } catch (e) {
      if (!(e instanceof DeliveryServiceError)) throw e;
      return e;
    }
  };
  const r = await err(ds.upload([fromB64(o.bad)]));
  const l = await err(ds.upload(o.packages.map(fromB64))); // the server allows one upload per window
  const d = await err(new DeliveryServiceClient({ baseUrl: o.denied, clientId: o.clientId, token }).count(1));
  return {
    origin: location.origin,
    token,
    uploaded,
    count,
    claimed,
    rejected: { status: r.status, error: r.error, rules: r.rules },
    limited: { status: l.status, error: l.error },
    denied: { status: d.status, error: d.error },
    events,
  };
}

(globalThis as { dsCors?: unknown }).dsCors = { run };
