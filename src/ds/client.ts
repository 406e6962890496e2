/**
 * Browser-safe client of the key package Delivery Service (fetch only; nothing Node-specific).
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { ClientId } from "../credential/clientId.js";
import {
  ENROLLMENT_SECRET_HEADER,
  type ClaimResponse,
  type CountResponse,
  type DeleteResponse,
  type DsErrorBody,
  type DsRejection,
  type DsRule,
  type RegisterClientResponse,
} from "./wire.js";

export type { DsRejection, DsRule } from "./wire.js";

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

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function refHex(ref: RefInput): string {
  if (typeof ref === "string") return ref.toLowerCase();
  if (ref instanceof Uint8Array) return [...ref].map((b) => b.toString(16).padStart(2, "0")).join("");
  return ref.hex();
}

const bytesOf = (kp: KeypackageInput): Uint8Array => (kp instanceof Uint8Array ? kp : kp.serialize());

/** 128 random bits in hex (getRandomValues: also in pages that are not a secure context). */
function randomKey(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
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

  /** Valid, unexpired packages of a suite: regular ones and last-resort ones apart. */
  async count(ciphersuite: number): Promise<{ count: number; lastResort: number }> {
    const r = await this.#request<CountResponse>(
      "GET",
      this.#clientPath(`/key-packages/count?ciphersuite=${ciphersuite}`),
    );
    return { count: r.count, lastResort: r.lastResort };
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
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json ?? {}) as Partial<DsErrorBody>;
      throw new DeliveryServiceError(
        res.status,
        typeof e.error === "string" ? e.error : `http_${res.status}`,
        typeof e.message === "string" ? e.message : res.statusText,
        Array.isArray(e.rejected) ? e.rejected : [],
      );
    }
    return json as T;
  }
}
