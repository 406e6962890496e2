/**
 * Browser-safe client of the key package Delivery Service (fetch only; nothing Node-specific).
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { ClientId } from "../credential/clientId.js";
import { bytesToHex, fromBase64, toBase64 } from "../mls/crypto/bytes.js";
import {
  ENROLLMENT_SECRET_HEADER,
  rotationProofContent,
  type ClaimResponse,
  type CountResponse,
  type DeleteResponse,
  type DsErrorBody,
  type DsPoolEvent,
  type DsPoolEventType,
  type DsRejection,
  type DsRule,
  type DsStoredKeypackage,
  type ListKeypackagesResponse,
  type RegisterClientResponse,
  type RotateSignatureKeyRequest,
  type RotateSignatureKeyResponse,
} from "./wire.js";

export type {
  DsClaimedEvent,
  DsLastResortClaimedEvent,
  DsLowWaterEvent,
  DsPoolEvent,
  DsPoolEventType,
  DsRejection,
  DsRotatedEvent,
  DsRule,
  DsStoredKeypackage,
} from "./wire.js";
export { ROTATION_PROOF_LABEL, rotationProofContent } from "./wire.js";

/** Anything that serializes to a TLS KeyPackage (a `Keypackage`, or raw bytes). */
export type KeypackageInput = Uint8Array | { serialize(): Uint8Array };
/** A ref as hex, raw bytes, or a `KeypackageRef`. */
export type RefInput = string | Uint8Array | { hex(): string };

/**
 * An error answered by the Delivery Service (or a failure to reach it: `status` 0).
 * `error` is the server's code (e.g. `invalid_key_packages`, `invalid_token`);
 * `rejected` lists each refused package with the rule it broke.
 */
export class DeliveryServiceError extends MlsKeypackagesError {
  readonly status: number;
  readonly error: string;
  readonly rejected: readonly DsRejection[];

  constructor(
    status: number,
    error: string,
    message: string,
    rejected: DsRejection[] = [],
    options?: ErrorOptions,
  ) {
    super(
      ErrorCode.DeliveryServiceError,
      `delivery service: ${message} (${status} ${error})`,
      { status, error, rejected },
      options,
    );
    this.name = "DeliveryServiceError";
    this.status = status;
    this.error = error;
    this.rejected = rejected;
  }

  /** The rules broken, one per rejected package. */
  get rules(): DsRule[] {
    return this.rejected.map((r) => r.rule);
  }
}

export interface DeliveryServiceClientOptions {
  /** e.g. `https://ds.example.com` (paths are appended). */
  baseUrl: string | URL;
  /** This device's client id; set by `register()` too. */
  clientId?: string | ClientId;
  /** Bearer token; set by `register()` too. Secret. */
  token?: string;
  /** A fetch implementation (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Per-request timeout, ms (default 30 000). */
  timeoutMs?: number;
  /**
   * Retries of a claim whose answer was lost (network error, timeout, 5xx), under the same
   * `Idempotency-Key`, so the retry returns the packages the first attempt took (default 2).
   */
  claimRetries?: number;
}

export interface ClaimOptions {
  /** The claim's `Idempotency-Key` (default: a fresh random one per call; retries reuse it). */
  idempotencyKey?: string;
}

export interface RegisterOptions {
  clientId: string | ClientId;
  /** Default: the user part of `clientId`. */
  userId?: string;
  /** Signature public key per cipher suite. */
  signatureKeys: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>>;
  enrollmentSecret?: string;
}

export interface UploadResult {
  /** Hex refs, in upload order. */
  refs: string[];
  removed: number;
}

export interface ClaimedKeypackage {
  clientId: string;
  /** Hex ref. */
  ref: string;
  /** TLS-encoded KeyPackage (`Keypackage.deserialize()` it). */
  keyPackage: Uint8Array;
  lastResort: boolean;
}

export interface ClaimResult {
  keyPackages: ClaimedKeypackage[];
  /** Clients with no package left for the suite. */
  exhausted: string[];
}

export interface CountOptions {
  /** Count what is valid at this time (default now): `notBefore ≤ t < notAfter`. */
  validAt?: Date | number;
}

export interface ListKeypackagesOptions {
  /** Only this suite (default: every suite). */
  ciphersuite?: number;
  /** Page size, 1 to 1000 (default 500). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface ListKeypackagesResult {
  keyPackages: DsStoredKeypackage[];
  /** Present when more refs follow. */
  nextCursor?: string;
}

export interface RotateSignatureKeyOptions {
  ciphersuite: number;
  /** The key registered now (the proof binds it: a concurrent rotation makes this one fail). */
  oldSignatureKey: Uint8Array;
  newSignatureKey: Uint8Array;
  /**
   * SignWithLabel(new private key, `ROTATION_PROOF_LABEL`, content) (RFC 9420 §5.1.2): called with
   * `rotationProofContent(clientId, ciphersuite, oldSignatureKey, newSignatureKey)`.
   */
  sign: (content: Uint8Array) => Promise<Uint8Array> | Uint8Array;
  /** Packages signed by the new key, stored in the same transaction (may be empty). */
  keyPackages: readonly KeypackageInput[];
}

export interface RotateSignatureKeyResult {
  /** Packages of the suite deleted on the DS (bound to the old key). */
  deleted: number;
  /** Hex refs of the stored new packages, in order. */
  refs: string[];
}

export interface EventsOptions {
  /** `low_water` events when fewer regular packages than this are left after a claim. */
  lowWater?: number;
  /** Only events of this suite (default: every suite). */
  ciphersuite?: number;
  /** Ends the stream (the iteration then finishes without an error). */
  signal?: AbortSignal;
  /** Called once the DS has accepted the subscription (events from then on are delivered). */
  onOpen?: () => void;
}

const EVENT_TYPES: ReadonlySet<string> = new Set<DsPoolEventType>([
  "claimed",
  "low_water",
  "last_resort_claimed",
  "rotated",
]);

function refHex(ref: RefInput): string {
  if (typeof ref === "string") return ref.toLowerCase();
  if (ref instanceof Uint8Array) return bytesToHex(ref);
  return ref.hex();
}

const bytesOf = (kp: KeypackageInput): Uint8Array => (kp instanceof Uint8Array ? kp : kp.serialize());

/** 128 random bits in hex (getRandomValues: also in pages that are not a secure context). */
function randomKey(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return bytesToHex(b);
}

export class DeliveryServiceClient {
  readonly #base: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #claimRetries: number;
  #clientId: string | undefined;
  #token: string | undefined;

  constructor(options: DeliveryServiceClientOptions) {
    this.#base = String(options.baseUrl).replace(/\/+$/, "");
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#claimRetries = Math.max(0, Math.floor(options.claimRetries ?? 2));
    this.#clientId = options.clientId?.toString();
    this.#token = options.token;
  }

  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The bearer token (secret: never log it). */
  get token(): string | undefined {
    return this.#token;
  }

  /** Register this device; returns its bearer token, which this client then uses. */
  async register(options: RegisterOptions): Promise<string> {
    const clientId = options.clientId.toString();
    const userId = options.userId ?? ClientId.parse(clientId).userId();
    const entries =
      options.signatureKeys instanceof Map
        ? [...(options.signatureKeys as ReadonlyMap<number, Uint8Array>).entries()]
        : Object.entries(options.signatureKeys as Record<number, Uint8Array>);
    const signatureKeys: Record<string, string> = {};
    for (const [suite, key] of entries) signatureKeys[String(suite)] = toBase64(key);
    const headers: Record<string, string> = {};
    if (options.enrollmentSecret !== undefined) headers[ENROLLMENT_SECRET_HEADER] = options.enrollmentSecret;
    const r = await this.#request<RegisterClientResponse>(
      "POST",
      "/v1/clients",
      { userId, clientId, signatureKeys },
      headers,
      false,
    );
    this.#clientId = clientId;
    this.#token = r.token;
    return r.token;
  }

  /** Upload packages (all accepted, or none: see `DeliveryServiceError.rejected`). */
  upload(keyPackages: readonly KeypackageInput[]): Promise<UploadResult> {
    return this.#request("POST", this.#clientPath("/key-packages"), {
      keyPackages: keyPackages.map((k) => toBase64(bytesOf(k))),
    });
  }

  /** Replace every stored package of the suites present in `keyPackages`, atomically. */
  replace(keyPackages: readonly KeypackageInput[]): Promise<UploadResult> {
    return this.#request("PUT", this.#clientPath("/key-packages"), {
      keyPackages: keyPackages.map((k) => toBase64(bytesOf(k))),
    });
  }

  /**
   * Packages of a suite valid now, or at `validAt` (e.g. now + the rotation margin): regular
   * ones and last-resort ones apart.
   */
  async count(
    ciphersuite: number,
    options: CountOptions = {},
  ): Promise<{ count: number; lastResort: number }> {
    let query = `ciphersuite=${ciphersuite}`;
    if (options.validAt !== undefined) {
      const ms = options.validAt instanceof Date ? options.validAt.getTime() : options.validAt;
      query += `&validAt=${Math.floor(ms)}`;
    }
    const r = await this.#request<CountResponse>("GET", this.#clientPath(`/key-packages/count?${query}`));
    return { count: r.count, lastResort: r.lastResort };
  }

  /** One page of this client's stored packages (refs and lifetimes), in ref order. */
  async listKeypackages(options: ListKeypackagesOptions = {}): Promise<ListKeypackagesResult> {
    const q = new URLSearchParams();
    if (options.ciphersuite !== undefined) q.set("ciphersuite", String(options.ciphersuite));
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    if (options.cursor !== undefined) q.set("cursor", options.cursor);
    const qs = q.toString();
    const r = await this.#request<ListKeypackagesResponse>(
      "GET",
      this.#clientPath(`/key-packages${qs.length > 0 ? `?${qs}` : ""}`),
    );
    return r.nextCursor !== undefined
      ? { keyPackages: r.keyPackages, nextCursor: r.nextCursor }
      : { keyPackages: r.keyPackages };
  }

  /** Every stored package of this client (all pages), optionally of one suite. */
  async listAllKeypackages(ciphersuite?: number): Promise<DsStoredKeypackage[]> {
    const out: DsStoredKeypackage[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listKeypackages({
        limit: 1000,
        ...(ciphersuite !== undefined ? { ciphersuite } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      out.push(...page.keyPackages);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return out;
  }

  /**
   * Replace the registered signature key of a suite: the DS checks the proof of possession of
   * the new key, then in one transaction checks the old key is still registered, sets the new
   * one, deletes every package of the suite (bound to the old key) and stores `keyPackages`.
   */
  async rotateSignatureKey(options: RotateSignatureKeyOptions): Promise<RotateSignatureKeyResult> {
    const path = this.#clientPath("/signature-keys/rotate");
    const content = rotationProofContent(
      this.#clientId as string,
      options.ciphersuite,
      options.oldSignatureKey,
      options.newSignatureKey,
    );
    const proof = await options.sign(content);
    const body: RotateSignatureKeyRequest = {
      ciphersuite: options.ciphersuite,
      signatureKey: toBase64(options.newSignatureKey),
      oldSignatureKey: toBase64(options.oldSignatureKey),
      proof: toBase64(proof),
      keyPackages: options.keyPackages.map((k) => toBase64(bytesOf(k))),
    };
    const r = await this.#request<RotateSignatureKeyResponse>("POST", path, body);
    return { deleted: r.deleted, refs: r.refs };
  }

  /**
   * This client's pool events (Server-Sent Events over a fetch stream; works in browsers).
   * The iteration ends when the DS closes the stream or `signal` aborts; reconnecting (and a
   * `sync()` after it, as events may have been missed) is the caller's business.
   */
  events(options: EventsOptions = {}): AsyncIterable<DsPoolEvent> {
    return { [Symbol.asyncIterator]: () => this.#events(options) };
  }

  async *#events(options: EventsOptions): AsyncGenerator<DsPoolEvent, void, undefined> {
    const q = new URLSearchParams();
    if (options.lowWater !== undefined) q.set("lowWater", String(options.lowWater));
    if (options.ciphersuite !== undefined) q.set("ciphersuite", String(options.ciphersuite));
    const qs = q.toString();
    const path = this.#clientPath(`/events${qs.length > 0 ? `?${qs}` : ""}`);
    if (this.#token === undefined)
      throw new DeliveryServiceError(0, "no_token", "no bearer token: register first or pass token");
    const { signal } = options;
    let res: Response;
    try {
      res = await this.#fetch(this.#base + path, {
        method: "GET",
        headers: { accept: "text/event-stream", authorization: `Bearer ${this.#token}` },
        ...(signal !== undefined ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted === true) return;
      throw new DeliveryServiceError(0, "network", `GET /events failed: ${(err as Error).message}`, [], {
        cause: err,
      });
    }
    if (!res.ok || res.body === null) {
      throw await errorOf(res);
    }
    options.onOpen?.();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let type = "";
    let data: string[] = [];
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (signal?.aborted === true) return;
          throw new DeliveryServiceError(0, "network", `event stream failed: ${(err as Error).message}`, [], {
            cause: err,
          });
        }
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        // SSE (WHATWG HTML §9.2.6): lines end in CRLF, LF or CR; a blank line dispatches.
        for (;;) {
          const m = /\r\n|\n|\r/.exec(buffer);
          if (m === null) break;
          // a lone CR at the end of the buffer may be the first half of a CRLF
          if (m[0] === "\r" && m.index === buffer.length - 1) break;
          const line = buffer.slice(0, m.index);
          buffer = buffer.slice(m.index + m[0].length);
          if (line === "") {
            if (EVENT_TYPES.has(type) && data.length > 0) {
              let parsed: unknown;
              try {
                parsed = JSON.parse(data.join("\n"));
              } catch {
                parsed = undefined;
              }
              if (typeof parsed === "object" && parsed !== null) yield { type, data: parsed } as DsPoolEvent;
            }
            type = "";
            data = [];
            continue;
          }
          if (line.startsWith(":")) continue; // comment (heartbeat)
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") type = value;
          else if (field === "data") data.push(value);
        }
        if (buffer.length > 65_536)
          throw new DeliveryServiceError(0, "bad_event_stream", "an event line exceeds 64 KiB");
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  /** Delete packages by ref; returns how many existed. */
  async delete(refs: readonly RefInput[]): Promise<number> {
    const r = await this.#request<DeleteResponse>("DELETE", this.#clientPath("/key-packages"), {
      refs: refs.map(refHex),
    });
    return r.deleted;
  }

  /**
   * One package of `ciphersuite` for every other client of `userId`. Sent with an
   * `Idempotency-Key`; a lost answer (network error, timeout, 5xx) is retried with the same key,
   * so the server answers the packages it already took instead of taking new ones.
   */
  async claim(userId: string, ciphersuite: number, options: ClaimOptions = {}): Promise<ClaimResult> {
    const key = options.idempotencyKey ?? randomKey();
    const path = `/v1/users/${encodeURIComponent(userId)}/key-packages/claim?ciphersuite=${ciphersuite}`;
    let r: ClaimResponse;
    for (let attempt = 0; ; attempt++) {
      try {
        r = await this.#request<ClaimResponse>("POST", path, undefined, { "idempotency-key": key });
        break;
      } catch (err) {
        const lost = err instanceof DeliveryServiceError && (err.error === "network" || err.status >= 500);
        if (!lost || attempt >= this.#claimRetries) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
    return {
      keyPackages: r.keyPackages.map((k) => ({ ...k, keyPackage: fromBase64(k.keyPackage) })),
      exhausted: r.exhausted,
    };
  }

  #clientPath(suffix: string): string {
    if (this.#clientId === undefined)
      throw new DeliveryServiceError(0, "no_client_id", "no client id: register first or pass clientId");
    return `/v1/clients/${encodeURIComponent(this.#clientId)}${suffix}`;
  }

  async #request<T>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
    auth = true,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json", ...extraHeaders };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) {
      if (this.#token === undefined)
        throw new DeliveryServiceError(0, "no_token", "no bearer token: register first or pass token");
      headers.authorization = `Bearer ${this.#token}`;
    }
    let res: Response;
    try {
      res = await this.#fetch(this.#base + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new DeliveryServiceError(
        0,
        "network",
        `${method} ${path.split("?")[0]} failed: ${(err as Error).message}`,
        [],
        { cause: err },
      );
    }
    if (!res.ok) throw await errorOf(res);
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return json as T;
  }
}

/** The DS's `{ error, message, rejected? }` body of a failed response as an error. */
async function errorOf(res: Response): Promise<DeliveryServiceError> {
  let e: Partial<DsErrorBody> = {};
  try {
    const text = await res.text();
    const json: unknown = text.length > 0 ? JSON.parse(text) : undefined;
    if (typeof json === "object" && json !== null) e = json as Partial<DsErrorBody>;
  } catch {
    // not JSON: the status alone
  }
  return new DeliveryServiceError(
    res.status,
    typeof e.error === "string" ? e.error : `http_${res.status}`,
    typeof e.message === "string" ? e.message : res.statusText,
    Array.isArray(e.rejected) ? e.rejected : [],
  );
}
