/**
 * The key package Delivery Service (Node.js): Fastify, JSON over HTTP, binary fields base64.
 * See docs/ds.md for the API, the validation rules and the claim semantics.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import { MlsKeypackagesError } from "../errors.js";
import { ClientId } from "../credential/clientId.js";
import { KEYPACKAGE_MAX_SPAN } from "../keypackage/lifetime.js";
import {
  SUPPORTED_CIPHERSUITES,
  SignatureScheme,
  hashOf,
  signatureSchemeOf,
  type Ciphersuite,
} from "../mls/ciphersuite.js";
import { ciphersuiteImpl } from "../mls/crypto/select.js";
import { verifyWithLabel } from "../mls/crypto/labels.js";
import { CorsPolicy } from "./cors.js";
import { EventHub, type SubscriptionFilter } from "./events.js";
import { DsMetrics } from "./metrics.js";
import {
  MAX_CLIENT_ID_LENGTH,
  claimSchema,
  countSchema,
  deleteSchema,
  eventsSchema,
  healthSchema,
  listSchema,
  metricsSchema,
  registerSchema,
  replaceSchema,
  rotateSchema,
  uploadSchema,
} from "./schemas.js";
import {
  LocalEventBus,
  sameKey,
  type DeliveryServiceStore,
  type DsClient,
  type DsEventBus,
  type DsStoreEvent,
  type NewDsKeypackage,
} from "./store.js";
import { decodeBase64, sha256, validateUpload } from "./validation.js";
import { X509UploadPolicy } from "./x509.js";
import {
  InProcessVerifier,
  VerifierUnavailableError,
  WorkerVerifier,
  sharedVerifier,
  type PackageVerifier,
} from "./verifyPool.js";
import { WindowCounter } from "./windowCounter.js";
import {
  DEFAULT_LIST_LIMIT,
  ENROLLMENT_SECRET_HEADER,
  MAX_KEYPACKAGES_PER_UPLOAD,
  MAX_LIST_LIMIT,
  ROTATION_PROOF_LABEL,
  rotationProofContent,
  type ListKeypackagesResponse,
  type RotateSignatureKeyRequest,
  type RotateSignatureKeyResponse,
  type ClaimResponse,
  type CountResponse,
  type DeleteRequest,
  type DeleteResponse,
  type DsErrorBody,
  type DsRejection,
  type RegisterClientRequest,
  type RegisterClientResponse,
  type UploadRequest,
  type UploadResponse,
} from "./wire.js";

/** Request-size and rate limits. Rates are per process, per window. */
export interface DeliveryServiceLimits {
  /** Largest request body, bytes (default 4 MiB). */
  bodyLimitBytes: number;
  /** Most packages per upload (default and maximum 1000). */
  maxKeypackagesPerUpload: number;
  /** Largest single encoded key package, bytes (default 16 KiB). */
  maxKeypackageBytes: number;
  /** Most packages one client may hold (default 10 000). */
  maxStoredPerClient: number;
  /** Rate-limit window, ms (default 60 000). */
  rateWindowMs: number;
  /** Uploads (POST or PUT, each counted apart) per client per window (default 60). */
  uploadsPerWindow: number;
  /** Claims per claiming client per window (default 600). */
  claimsPerWindow: number;
  /** Count and delete requests per client per window (default 600). */
  readsPerWindow: number;
  /** Registrations per IP address per window (default 60). */
  registrationsPerWindow: number;
  /** Key packages uploaded (POST and PUT, accepted or not) per client per window (default 10 000). */
  uploadPackagesPerWindow: number;
  /** Upload request body bytes per client per window (default 16 MiB), counted before the body is read. */
  uploadBytesPerWindow: number;
  /** Failed authentications (missing, unknown or foreign token, wrong enrollment secret) per address per window (default 60). */
  authFailuresPerWindow: number;
  /** Packages waiting for signature verification, all uploads together, before uploads get 503 (default 20 000). */
  maxQueuedVerifications: number;
  /**
   * Claims by one claimer of one target user per `claimTargetWindowMs` (default 30), counted in
   * the store, so across processes: a client cannot drain a user's pool.
   */
  claimsPerTargetUser: number;
  /** Window of `claimsPerTargetUser`, ms (default 1 h). */
  claimTargetWindowMs: number;
  /** How long a claim's answer is kept for a retry with the same `Idempotency-Key`, ms (default 10 min). */
  idempotencyWindowMs: number;
  /** Open event streams (`GET …/events`) per client (default 4); more get 429. */
  eventSubscribersPerClient: number;
  /** Open event streams per process, all clients (default 1000); more get 429. */
  eventSubscribers: number;
}

export const DEFAULT_LIMITS: Readonly<DeliveryServiceLimits> = Object.freeze({
  bodyLimitBytes: 4 * 1024 * 1024,
  maxKeypackagesPerUpload: MAX_KEYPACKAGES_PER_UPLOAD,
  maxKeypackageBytes: 16 * 1024,
  maxStoredPerClient: 10_000,
  rateWindowMs: 60_000,
  uploadsPerWindow: 60,
  claimsPerWindow: 600,
  readsPerWindow: 600,
  registrationsPerWindow: 60,
  uploadPackagesPerWindow: 10_000,
  uploadBytesPerWindow: 16 * 1024 * 1024,
  authFailuresPerWindow: 60,
  maxQueuedVerifications: 20_000,
  claimsPerTargetUser: 30,
  claimTargetWindowMs: 3_600_000,
  idempotencyWindowMs: 600_000,
  eventSubscribersPerClient: 4,
  eventSubscribers: 1000,
});

export interface DeliveryServiceOptions {
  store: DeliveryServiceStore;
  /** Secret required (header `x-enrollment-secret`) to register clients. */
  enrollmentSecret?: string;
  /** Open enrollment: no secret needed. Never in production. */
  dev?: boolean;
  /** Longest accepted lifetime span, ms (default and maximum 84 days + 1 h). */
  maxLifetimeMs?: number;
  /** Accepted cipher suites (default: every suite the library supports). */
  ciphersuites?: readonly Ciphersuite[];
  limits?: Partial<DeliveryServiceLimits>;
  /** The clock for lifetimes and expiry (default `new Date()`). */
  clock?: () => Date;
  /** Fastify logger option (default off). Tokens and secrets are redacted. */
  logger?: FastifyServerOptions["logger"];
  /** Purge expired packages and replay entries this often, ms (default 10 min; 0: never). */
  maintenanceIntervalMs?: number;
  /** Trust `X-Forwarded-For` for the client address (behind a reverse proxy); default false. */
  trustProxy?: boolean;
  /** Close the store when the server closes (default true). */
  closeStore?: boolean;
  /**
   * Origins (`https://app.example.com`, or `*`) whose pages may call the API (CORS). Default
   * none: no CORS headers, and preflight requests answer 404.
   */
  corsOrigins?: readonly string[];
  /**
   * Worker threads verifying signatures: default a process-wide pool of one per core but one
   * (at most 8); 0 verifies on the event loop (yielding between packages).
   */
  verifyWorkers?: number;
  /** Where signatures are verified, instead of `verifyWorkers` (embedding, tests). Not closed by the server. */
  verifier?: PackageVerifier;
  /** Heartbeat comment on event streams, ms (default 15 000). */
  eventHeartbeatMs?: number;
  /**
   * Trust anchors (PEM or DER root certificates) for X509 credentials: with at least one, uploads
   * of X509 key packages are accepted when their chain validates (docs/x509.md); without, only Basic.
   */
  trustAnchors?: readonly (string | Uint8Array)[];
  /** Intermediate CA certificates chains may omit (PEM or DER). */
  intermediates?: readonly (string | Uint8Array)[];
  /** CRLs (PEM or DER) checked for X509 credentials. */
  crls?: readonly (string | Uint8Array)[];
  /** Refuse Basic credentials (needs `trustAnchors`). */
  requireX509?: boolean;
}

/** An HTTP error answered as `{ error, message, rejected? }`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    readonly rejected?: DsRejection[],
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const SIGNATURE_KEY_LENGTH: Record<SignatureScheme, number> = {
  [SignatureScheme.ED25519]: 32,
  [SignatureScheme.ED448]: 57,
  [SignatureScheme.ECDSA_SECP256R1_SHA256]: 65,
  [SignatureScheme.ECDSA_SECP384R1_SHA384]: 97,
  [SignatureScheme.ECDSA_SECP521R1_SHA512]: 133,
};

const TOKEN_PREFIX = "mlskp_";
const TOKEN_RE = /^mlskp_[A-Za-z0-9_-]{43}$/;
const TOKEN_CACHE_MAX = 10_000;
const TOKEN_CACHE_TTL_MS = 60_000;

const hex = (u: Uint8Array): string => Buffer.from(u).toString("hex");
const base64 = (u: Uint8Array): string => Buffer.from(u).toString("base64");
const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

function checkOptions(options: DeliveryServiceOptions): {
  limits: DeliveryServiceLimits;
  suites: readonly number[];
  maxLifetimeMs: number;
  cors: CorsPolicy | undefined;
} {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v <= 0) throw new TypeError(`limits.${k} must be a positive integer`);
  }
  if (limits.maxKeypackagesPerUpload > MAX_KEYPACKAGES_PER_UPLOAD) {
    throw new TypeError(`limits.maxKeypackagesPerUpload must be at most ${MAX_KEYPACKAGES_PER_UPLOAD}`);
  }
  const maxLifetimeMs = options.maxLifetimeMs ?? KEYPACKAGE_MAX_SPAN;
  if (!Number.isFinite(maxLifetimeMs) || maxLifetimeMs <= 0 || maxLifetimeMs > KEYPACKAGE_MAX_SPAN) {
    throw new TypeError(`maxLifetimeMs must be in (0, ${KEYPACKAGE_MAX_SPAN}] (84 days + 1 h)`);
  }
  const suites = options.ciphersuites ?? SUPPORTED_CIPHERSUITES;
  if (suites.length === 0 || suites.some((s) => !SUPPORTED_CIPHERSUITES.includes(s))) {
    throw new TypeError("ciphersuites must be a non-empty subset of SUPPORTED_CIPHERSUITES");
  }
  if (!options.dev && (options.enrollmentSecret === undefined || options.enrollmentSecret.length < 16)) {
    throw new TypeError("an enrollment secret of at least 16 characters is required unless dev is set");
  }
  const w = options.verifyWorkers;
  if (w !== undefined && (!Number.isInteger(w) || w < 0 || w > 64)) {
    throw new TypeError("verifyWorkers must be an integer in [0, 64]");
  }
  const cors =
    options.corsOrigins !== undefined && options.corsOrigins.length > 0
      ? new CorsPolicy(options.corsOrigins)
      : undefined;
  return { limits, suites, maxLifetimeMs, cors };
}

/** Ref lengths in hex characters of the accepted suites (the length of their hash). */
function refHexLengths(suites: readonly number[]): Set<number> {
  const bytes = { "SHA-256": 32, "SHA-384": 48, "SHA-512": 64 } as const;
  return new Set(suites.map((s) => 2 * bytes[hashOf(s as Ciphersuite)]));
}

/**
 * Build the Delivery Service. Call `listen()` on the result; `close()` stops the
 * maintenance timer and (by default) closes the store.
 */
export async function createDeliveryService(options: DeliveryServiceOptions): Promise<FastifyInstance> {
  const { limits, suites, maxLifetimeMs, cors } = checkOptions(options);
  if (options.requireX509 === true && (options.trustAnchors?.length ?? 0) === 0) {
    throw new TypeError("requireX509 needs at least one trust anchor");
  }
  const x509 =
    options.trustAnchors !== undefined && options.trustAnchors.length > 0
      ? new X509UploadPolicy({
          trustAnchors: options.trustAnchors,
          ...(options.intermediates !== undefined ? { intermediates: options.intermediates } : {}),
          ...(options.crls !== undefined ? { crls: options.crls } : {}),
          requireX509: options.requireX509 === true,
        })
      : undefined;
  const refLengths = refHexLengths(suites);
  const { store } = options;
  const clock = options.clock ?? (() => new Date());
  const dev = options.dev === true;
  const secretHash =
    options.enrollmentSecret !== undefined
      ? sha256(new TextEncoder().encode(options.enrollmentSecret))
      : undefined;
  const metrics = new DsMetrics(() => store.poolSizes(seconds(clock())));
  const authed = new WeakMap<FastifyRequest, DsClient>();
  const tokenCache = new Map<string, { client: DsClient; until: number }>();
  // Pool events: facts on the store's bus (every process on PostgreSQL), streams per client.
  const bus: DsEventBus = store.eventBus?.() ?? new LocalEventBus();
  const hub = new EventHub(bus, {
    perClient: limits.eventSubscribersPerClient,
    total: limits.eventSubscribers,
    ...(options.eventHeartbeatMs !== undefined ? { heartbeatMs: options.eventHeartbeatMs } : {}),
  });
  hub.registerMetrics(metrics.registry);
  /** Events are hints (the pool also syncs on a timer): a failed publish is logged, never an error. */
  const publish = (events: DsStoreEvent[]): void => {
    if (events.length === 0) return;
    bus.publish(events).catch((err: unknown) => app.log.warn({ err }, "event publish failed"));
  };

  const logger =
    options.logger === true
      ? { level: "info", redact: ["req.headers.authorization", `req.headers["${ENROLLMENT_SECRET_HEADER}"]`] }
      : (options.logger ?? false);
  const app = Fastify({
    logger,
    bodyLimit: limits.bodyLimitBytes,
    trustProxy: options.trustProxy === true,
    // The router's limit is the client id grammar's: a longer id is invalid anyway (414, ours).
    routerOptions: { maxParamLength: MAX_CLIENT_ID_LENGTH },
    // Strict: no type coercion (a number is not a base64 string; query strings are parsed by
    // hand), and unknown properties are refused, never silently stripped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Requests arriving while closing get our 503 (onRequest below), not Fastify's body.
    return503OnClosing: false,
    // Errors the router answers before any route: our body, not Fastify's.
    frameworkErrors: (err, request, reply) => {
      cors?.decorate(request, reply);
      const code = (err as { code?: string }).code;
      if (code === "FST_ERR_MAX_PARAM_LENGTH") {
        return sendError(
          reply,
          new HttpError(414, "uri_too_long", `a path parameter exceeds ${MAX_CLIENT_ID_LENGTH} characters`),
        );
      }
      if (code === "FST_ERR_BAD_URL")
        return sendError(reply, new HttpError(400, "bad_request", "malformed URL"));
      request.log.error({ err }, "router failed");
      return sendError(reply, new HttpError(500, "internal", "internal error"));
    },
    // Malformed HTTP (before Fastify sees a request): our body too.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const [status, reason, error, message] =
        err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? [408, "Request Timeout", "request_timeout", "the request took too long"]
          : err.code === "HPE_HEADER_OVERFLOW"
            ? [
                431,
                "Request Header Fields Too Large",
                "headers_too_large",
                "the request headers are too large",
              ]
            : [400, "Bad Request", "bad_request", "malformed HTTP request"];
      const body = JSON.stringify({ error, message } satisfies DsErrorBody);
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
  }) as unknown as FastifyInstance;

  // JSON only: a text/plain body is 415 like any other type.
  app.removeContentTypeParser("text/plain");

  app.setErrorHandler((err: unknown, request, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    const e = err as {
      statusCode?: number;
      code?: string;
      validation?: { instancePath?: string; keyword?: string }[];
      validationContext?: string;
      message?: string;
    };
    if (e.validation !== undefined) {
      const first = e.validation[0];
      if (first?.instancePath === "/clientId") {
        const where = e.validationContext === "params" ? "the path's client id" : "clientId";
        return sendError(
          reply,
          new HttpError(
            400,
            "invalid_client_id",
            `${where} is not <user-uuid>:<device-id-hex>@<domain> (lowercase, at most ${MAX_CLIENT_ID_LENGTH} characters)`,
          ),
        );
      }
      if (
        e.validationContext === "body" &&
        first?.instancePath === "/keyPackages" &&
        first.keyword === "maxItems"
      ) {
        return sendError(
          reply,
          new HttpError(
            400,
            "too_many_key_packages",
            `at most ${limits.maxKeypackagesPerUpload} key packages per request`,
          ),
        );
      }
      if (e.validationContext === "body" && /^\/refs\/\d+$/.test(first?.instancePath ?? "")) {
        return sendError(
          reply,
          new HttpError(
            400,
            "bad_request",
            `body${first?.instancePath}: a ref is 64, 96 or 128 lowercase hex characters`,
          ),
        );
      }
      return sendError(reply, new HttpError(400, "bad_request", e.message ?? "invalid request"));
    }
    if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return sendError(
        reply,
        new HttpError(413, "body_too_large", `the request body exceeds ${limits.bodyLimitBytes} bytes`),
      );
    }
    if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 415 ? "unsupported_media_type" : "bad_request";
      return sendError(reply, new HttpError(e.statusCode, code, e.message ?? "bad request"));
    }
    if (isStoreUnavailable(err)) {
      return sendError(reply, new HttpError(503, "store_unavailable", "the database cannot be reached"));
    }
    request.log.error({ err }, "request failed");
    return sendError(reply, new HttpError(500, "internal", "internal error"));
  });
  app.setNotFoundHandler((_request, reply) =>
    sendError(reply, new HttpError(404, "not_found", "no such route")),
  );

  // First hook of every request: refuse while closing; CORS headers on every answer.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    // open event streams would hold the server open: end them (clients reconnect elsewhere)
    await hub.close();
  });
  app.addHook("onRequest", async (request, reply) => {
    cors?.decorate(request, reply);
    if (closing) {
      reply.header("connection", "close");
      throw new HttpError(503, "shutting_down", "the server is shutting down");
    }
  });
  // Routes without a body schema take no body.
  app.addHook("preValidation", async (request) => {
    if (request.is404) return;
    const schema = request.routeOptions.schema as { body?: unknown } | undefined;
    if (schema?.body === undefined && request.body !== undefined && request.body !== null) {
      throw new HttpError(400, "bad_request", "this route takes no request body");
    }
  });
  if (cors !== undefined) {
    // Preflight: answered for every path (an unknown one then 404s on the actual request).
    app.options("*", { schema: { hide: true } }, async (request, reply) => {
      if (!cors.allows(request.headers.origin)) {
        throw new HttpError(403, "cors_origin_not_allowed", "this origin may not call the API");
      }
      cors.preflight(reply);
      return reply.code(204).send();
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "mls-keypackages Delivery Service",
        description:
          "MLS (RFC 9420) key package distribution. Binary fields are standard base64; refs are lowercase hex.",
        version: "1.0.0",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "Token returned by POST /v1/clients" },
          enrollment: { type: "apiKey", in: "header", name: ENROLLMENT_SECRET_HEADER },
        },
      },
    },
  });
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) =>
      new HttpError(ctx.statusCode, "rate_limited", `rate limit exceeded, retry in ${ctx.after}`),
  });

  // ── authentication ───────────────────────────────────────────────────────

  /**
   * Failed authentications per address: past `authFailuresPerWindow`, the address gets 429
   * for anything that would need a token lookup or a secret comparison (a token already in
   * the cache still works, so one bad client behind a NAT does not lock out the others).
   */
  const authFailures = new WindowCounter(limits.rateWindowMs);
  const authFailed = (request: FastifyRequest, reason: string, err: HttpError): never => {
    metrics.authFailures.inc({ reason });
    authFailures.add(request.ip);
    throw err;
  };
  const checkAuthBudget = (request: FastifyRequest, reply: FastifyReply | undefined): void => {
    if (authFailures.used(request.ip) < limits.authFailuresPerWindow) return;
    const after = Math.max(1, Math.ceil(authFailures.retryAfterMs(request.ip) / 1000));
    reply?.header("retry-after", String(after));
    metrics.authFailures.inc({ reason: "rate_limited" });
    throw new HttpError(
      429,
      "rate_limited",
      `too many failed authentications from this address, retry in ${after} s`,
    );
  };

  async function authenticate(request: FastifyRequest, reply?: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    if (header === undefined || !/^bearer /i.test(header)) {
      checkAuthBudget(request, reply);
      authFailed(
        request,
        "missing_token",
        new HttpError(401, "missing_token", "an Authorization: Bearer token is required"),
      );
      return;
    }
    const token = header.slice(7).trim();
    if (!TOKEN_RE.test(token)) {
      checkAuthBudget(request, reply);
      authFailed(request, "invalid_token", new HttpError(401, "invalid_token", "unknown token"));
    }
    const key = hex(sha256(new TextEncoder().encode(token)));
    const now = Date.now();
    let client = tokenCache.get(key);
    if (client === undefined || client.until < now) {
      checkAuthBudget(request, reply);
      const found = await store.clientByTokenHash(Buffer.from(key, "hex"));
      if (found === undefined) {
        return authFailed(request, "invalid_token", new HttpError(401, "invalid_token", "unknown token"));
      }
      if (tokenCache.size >= TOKEN_CACHE_MAX) tokenCache.clear();
      client = { client: found, until: now + TOKEN_CACHE_TTL_MS };
      tokenCache.set(key, client);
    }
    authed.set(request, client.client);
  }

  /** Authenticated, and the path's client must be the caller. */
  async function authenticateOwner(request: FastifyRequest, reply?: FastifyReply): Promise<void> {
    await authenticate(request, reply);
    const { clientId } = request.params as { clientId: string };
    if (authed.get(request)?.clientId !== clientId) {
      authFailed(
        request,
        "forbidden",
        new HttpError(403, "forbidden", "the token does not belong to this client"),
      );
    }
  }

  const caller = (request: FastifyRequest): DsClient => {
    const c = authed.get(request);
    if (c === undefined) throw new HttpError(401, "missing_token", "not authenticated");
    return c;
  };

  /** Drop a client from the token cache (its signature keys changed). */
  const forgetClient = (clientId: string): void => {
    for (const [k, v] of tokenCache) if (v.client.clientId === clientId) tokenCache.delete(k);
  };
  /**
   * The client as stored now (its signature keys may have been rotated, also by another
   * process); its token cache entries are dropped, so the next request looks it up too.
   */
  const refreshClient = async (clientId: string): Promise<DsClient | undefined> => {
    forgetClient(clientId);
    return store.getClient(clientId);
  };

  const perClient = (max: number, groupId?: string) => ({
    rateLimit: {
      max,
      timeWindow: limits.rateWindowMs,
      keyGenerator: (request: FastifyRequest) => `client:${authed.get(request)?.clientId ?? request.ip}`,
      ...(groupId !== undefined ? { groupId } : {}),
    },
  });

  const checkSuite = (value: string | number): number => {
    const suite = Number(value);
    if (!suites.includes(suite))
      throw new HttpError(
        400,
        "unsupported_ciphersuite",
        `cipher suite ${suite} is not accepted by this server`,
      );
    return suite;
  };

  // ── operations ───────────────────────────────────────────────────────────

  app.get("/healthz", { schema: healthSchema }, async (_request, reply) => {
    try {
      await store.ping();
      return { status: "ok", store: store.kind };
    } catch {
      return reply.code(503).send({
        error: "store_unavailable",
        message: "the database cannot be reached",
      } satisfies DsErrorBody);
    }
  });

  app.get("/metrics", { schema: metricsSchema }, async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  // ── clients ──────────────────────────────────────────────────────────────

  app.post<{ Body: RegisterClientRequest }>(
    "/v1/clients",
    {
      schema: registerSchema,
      config: {
        rateLimit: { max: limits.registrationsPerWindow, timeWindow: limits.rateWindowMs },
      },
    },
    async (request, reply) => {
      if (!dev) {
        checkAuthBudget(request, reply);
        const given = request.headers[ENROLLMENT_SECRET_HEADER];
        const ok =
          secretHash !== undefined &&
          typeof given === "string" &&
          timingSafeEqual(sha256(new TextEncoder().encode(given)), secretHash);
        if (!ok) {
          authFailed(
            request,
            "enrollment_secret",
            new HttpError(
              401,
              "invalid_enrollment_secret",
              `a valid ${ENROLLMENT_SECRET_HEADER} header is required`,
            ),
          );
        }
      }
      const { userId, clientId, signatureKeys } = request.body;
      let parsed: ClientId;
      try {
        parsed = ClientId.parse(clientId);
      } catch (err) {
        if (MlsKeypackagesError.is(err)) throw new HttpError(400, "invalid_client_id", err.message);
        throw err;
      }
      if (parsed.userId() !== userId) {
        throw new HttpError(400, "client_user_mismatch", "the user part of clientId must equal userId");
      }
      const keys = new Map<number, Uint8Array>();
      for (const [k, v] of Object.entries(signatureKeys)) {
        const suite = Number(k);
        checkSuite(suite);
        const key = decodeBase64(v);
        const want = SIGNATURE_KEY_LENGTH[signatureSchemeOf(suite as Ciphersuite)];
        if (key === undefined || key.length !== want) {
          throw new HttpError(
            400,
            "invalid_signature_key",
            `suite ${suite}: expected ${want} bytes of base64 public key`,
          );
        }
        keys.set(suite, key);
      }
      const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
      const created = await store.createClient({
        clientId,
        userId,
        signatureKeys: keys,
        tokenHash: sha256(new TextEncoder().encode(token)),
        createdAt: seconds(clock()),
      });
      if (!created) throw new HttpError(409, "client_exists", "this client id is already registered");
      request.log.info({ clientId }, "client registered");
      return reply.code(201).send({ token } satisfies RegisterClientResponse);
    },
  );

  // ── key packages ─────────────────────────────────────────────────────────

  const ownVerifier =
    options.verifier === undefined && options.verifyWorkers !== undefined && options.verifyWorkers > 0
      ? new WorkerVerifier(options.verifyWorkers)
      : undefined;
  const verifier: PackageVerifier =
    options.verifier ??
    (options.verifyWorkers === 0 ? new InProcessVerifier() : (ownVerifier ?? sharedVerifier()));
  app.addHook("onReady", async () => verifier.warm());
  // Listening for other processes' events before the first subscriber (at most 5 s: a DS
  // whose database is slow still starts; events are hints).
  app.addHook("onReady", async () => {
    if (bus.ready === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([bus.ready(), new Promise<void>((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
  });
  const uploadBytes = new WindowCounter(limits.rateWindowMs);
  const uploadPackages = new WindowCounter(limits.rateWindowMs);

  const rateLimited = (reply: FastifyReply, counter: WindowCounter, key: string, what: string): HttpError => {
    const after = Math.max(1, Math.ceil(counter.retryAfterMs(key) / 1000));
    reply.header("retry-after", String(after));
    return new HttpError(429, "rate_limited", `${what} per client exceeded, retry in ${after} s`);
  };

  /** Upload bytes are counted before the body is read (`content-length`, else the body limit). */
  async function chargeUploadBytes(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const key = caller(request).clientId;
    const length = Number(request.headers["content-length"]);
    const bytes = Number.isSafeInteger(length) && length >= 0 ? length : limits.bodyLimitBytes;
    if (!uploadBytes.take(key, Math.min(bytes, limits.bodyLimitBytes), limits.uploadBytesPerWindow)) {
      metrics.uploads.inc({ result: "rejected" });
      throw rateLimited(reply, uploadBytes, key, `${limits.uploadBytesPerWindow} upload bytes per window`);
    }
  }

  /** Reject an upload's packages: 422 with one entry per package and the rule it broke. */
  const rejectWith = (rejected: DsRejection[], total: number): never => {
    metrics.uploads.inc({ result: "rejected" });
    for (const r of rejected) metrics.rejectedKeypackages.inc({ rule: r.rule });
    throw new HttpError(
      422,
      "invalid_key_packages",
      `${rejected.length} of ${total} key packages rejected`,
      rejected,
    );
  };

  /**
   * The budget checks and the validation of uploaded packages (against `client`'s registered
   * keys); the packages to store and the client they were validated against, or an HttpError.
   * `refresh`: on a key mismatch, look the client up again (another process may have rotated
   * its key) and validate once more.
   */
  async function validated(
    request: FastifyRequest,
    reply: FastifyReply,
    texts: readonly unknown[],
    client: DsClient,
    options: { refresh?: boolean } = {},
  ): Promise<{ packages: NewDsKeypackage[]; client: DsClient }> {
    if (texts.length > limits.maxKeypackagesPerUpload) {
      metrics.uploads.inc({ result: "rejected" });
      throw new HttpError(
        400,
        "too_many_key_packages",
        `at most ${limits.maxKeypackagesPerUpload} key packages per request`,
      );
    }
    // Bounded work: the package budget of the client, then room on the verification workers.
    if (!uploadPackages.take(client.clientId, texts.length, limits.uploadPackagesPerWindow)) {
      metrics.uploads.inc({ result: "rejected" });
      throw rateLimited(
        reply,
        uploadPackages,
        client.clientId,
        `${limits.uploadPackagesPerWindow} uploaded key packages per window`,
      );
    }
    if (verifier.pending > 0 && verifier.pending + texts.length > limits.maxQueuedVerifications) {
      metrics.uploads.inc({ result: "rejected" });
      reply.header("retry-after", "1");
      throw new HttpError(
        503,
        "overloaded",
        "too many key packages are waiting for verification, retry shortly",
      );
    }
    const run = (as: DsClient) =>
      validateUpload(
        texts,
        as,
        {
          now: clock(),
          maxLifetimeMs,
          ciphersuites: suites,
          maxKeypackageBytes: limits.maxKeypackageBytes,
        },
        {
          seenInitKeys: (hashes) => store.seenInitKeys(hashes),
          verifier,
          ...(x509 !== undefined ? { x509 } : {}),
        },
      ).catch((err: unknown) => {
        if (!(err instanceof VerifierUnavailableError)) throw err;
        request.log.error({ err }, "signature verification unavailable");
        metrics.uploads.inc({ result: "rejected" });
        reply.header("retry-after", "1");
        throw new HttpError(
          503,
          "verification_unavailable",
          "key packages cannot be verified right now, retry shortly",
        );
      });
    let v = await run(client);
    let as = client;
    // A signature key rotated by another process may be newer than the cached client: look again.
    if (
      !v.ok &&
      options.refresh === true &&
      v.rejected.some((r) => r.rule === "signature_key_mismatch" || r.rule === "signature_key_not_registered")
    ) {
      const fresh = await refreshClient(client.clientId);
      if (fresh !== undefined && signatureKeysDiffer(fresh, client)) {
        as = fresh;
        v = await run(fresh);
      }
    }
    if (!v.ok) return rejectWith(v.rejected, texts.length);
    return { packages: v.packages, client: as };
  }

  async function upload(
    request: FastifyRequest<{ Body: UploadRequest }>,
    reply: FastifyReply,
    replace: boolean,
  ): Promise<UploadResponse> {
    const texts = request.body.keyPackages;
    const { packages, client } = await validated(request, reply, texts, caller(request), { refresh: true });
    const reusedRejections = (hashes: Uint8Array[]): DsRejection[] => {
      const want = new Set(hashes.map(hex));
      return packages.flatMap((p, index) =>
        want.delete(hex(p.initKeyHash))
          ? [
              {
                index,
                rule: "init_key_reused" as const,
                message: "this init key was seen before by this server",
              },
            ]
          : [],
      );
    };
    // (replays were refused by validateUpload; the store re-checks atomically)
    const r = await store.addKeypackages(client, packages, {
      maxStoredPerClient: limits.maxStoredPerClient,
      ...(replace ? { replaceSuites: [...new Set(packages.map((p) => p.ciphersuite))] } : {}),
    });
    if (!r.ok) {
      if (r.reason === "init_key_reused") return rejectWith(reusedRejections(r.initKeyHashes), texts.length);
      if (r.reason === "signature_key_changed") {
        // A rotation committed after validation: these packages are bound to the old key.
        forgetClient(client.clientId);
        const changed = new Set(r.ciphersuites);
        return rejectWith(
          packages.flatMap((p, index) =>
            changed.has(p.ciphersuite)
              ? [
                  {
                    index,
                    rule: "signature_key_mismatch" as const,
                    message: `the signature key of cipher suite ${p.ciphersuite} was rotated meanwhile`,
                  },
                ]
              : [],
          ),
          texts.length,
        );
      }
      metrics.uploads.inc({ result: "rejected" });
      throw new HttpError(
        409,
        "pool_full",
        `a client may hold at most ${limits.maxStoredPerClient} key packages (${r.stored} stored)`,
      );
    }
    metrics.uploads.inc({ result: "accepted" });
    metrics.uploadedKeypackages.inc(packages.length);
    return { refs: packages.map((p) => hex(p.ref)), removed: r.removed };
  }

  app.post<{ Body: UploadRequest; Params: { clientId: string } }>(
    "/v1/clients/:clientId/key-packages",
    {
      schema: uploadSchema,
      onRequest: authenticateOwner,
      preParsing: chargeUploadBytes,
      config: perClient(limits.uploadsPerWindow),
    },
    async (request, reply) => reply.code(201).send(await upload(request, reply, false)),
  );

  app.put<{ Body: UploadRequest; Params: { clientId: string } }>(
    "/v1/clients/:clientId/key-packages",
    {
      schema: replaceSchema,
      onRequest: authenticateOwner,
      preParsing: chargeUploadBytes,
      config: perClient(limits.uploadsPerWindow),
    },
    async (request, reply) => upload(request, reply, true),
  );

  app.get<{ Params: { clientId: string }; Querystring: { ciphersuite: string; validAt?: string } }>(
    "/v1/clients/:clientId/key-packages/count",
    { schema: countSchema, onRequest: authenticateOwner, config: perClient(limits.readsPerWindow) },
    async (request): Promise<CountResponse> => {
      const suite = checkSuite(request.query.ciphersuite);
      // validAt (Unix ms): what will still be valid then (notBefore ≤ t < notAfter)
      const { validAt } = request.query;
      const at = validAt !== undefined ? Math.floor(Number(validAt) / 1000) : seconds(clock());
      const n = await store.countKeypackages(caller(request), suite, at);
      return { ciphersuite: suite, count: n.regular, lastResort: n.lastResort };
    },
  );

  app.delete<{ Params: { clientId: string }; Body: DeleteRequest }>(
    "/v1/clients/:clientId/key-packages",
    { schema: deleteSchema, onRequest: authenticateOwner, config: perClient(limits.readsPerWindow) },
    async (request): Promise<DeleteResponse> => {
      const bad = request.body.refs.find((r) => !refLengths.has(r.length));
      if (bad !== undefined) {
        throw new HttpError(
          400,
          "bad_request",
          `a ref of the accepted suites is ${[...refLengths].sort().join(" or ")} lowercase hex characters`,
        );
      }
      const refs = request.body.refs.map((r) => new Uint8Array(Buffer.from(r, "hex")));
      return { deleted: await store.deleteKeypackages(caller(request), refs) };
    },
  );

  app.post<{ Params: { userId: string }; Querystring: { ciphersuite: string } }>(
    "/v1/users/:userId/key-packages/claim",
    { schema: claimSchema, onRequest: authenticate, config: perClient(limits.claimsPerWindow) },
    async (request, reply): Promise<ClaimResponse> => {
      const claimer = caller(request);
      const suite = checkSuite(request.query.ciphersuite);
      const key = idempotencyKey(request.headers["idempotency-key"]);
      const end = metrics.claimSeconds.startTimer();
      const r = await store.claim(request.params.userId, suite, claimer.clientId, seconds(clock()), {
        limit: {
          max: limits.claimsPerTargetUser,
          windowSeconds: Math.ceil(limits.claimTargetWindowMs / 1000),
        },
        ...(key !== undefined
          ? { idempotency: { key, windowSeconds: Math.ceil(limits.idempotencyWindowMs / 1000) } }
          : {}),
      });
      end();
      if (r === undefined) throw new HttpError(404, "unknown_user", "no client of this user is registered");
      if (r.keyMismatch === true)
        throw new HttpError(
          422,
          "idempotency_key_reused",
          "this Idempotency-Key was used for another user or suite",
        );
      if (r.limited !== undefined) {
        void reply.header("retry-after", String(Math.max(1, r.limited.retryAfter)));
        throw new HttpError(
          429,
          "rate_limited",
          `at most ${limits.claimsPerTargetUser} claims of one user's key packages per client per ${Math.ceil(limits.claimTargetWindowMs / 1000)} s; retry in ${r.limited.retryAfter} s`,
        );
      }
      if (r.replayed === true) void reply.header("idempotent-replayed", "true");
      else {
        metrics.claims.inc();
        metrics.purged.inc(r.purged);
        metrics.exhausted.inc(r.exhausted.length);
        for (const k of r.keyPackages)
          metrics.claimedKeypackages.inc({ kind: k.lastResort ? "last_resort" : "regular" });
        publish(
          r.keyPackages.map((k) => ({
            kind: "claimed",
            clientId: k.clientId,
            ciphersuite: suite,
            ref: hex(k.ref),
            lastResort: k.lastResort,
            remaining: k.remaining ?? 0,
          })),
        );
      }
      return {
        keyPackages: r.keyPackages.map((k) => ({
          clientId: k.clientId,
          ref: hex(k.ref),
          keyPackage: base64(k.keyPackage),
          lastResort: k.lastResort,
        })),
        exhausted: r.exhausted,
      };
    },
  );

  // ── the client's own pool: refs, key rotation, events (issue #13) ─────────

  app.get<{
    Params: { clientId: string };
    Querystring: { ciphersuite?: string; limit?: string; cursor?: string };
  }>(
    "/v1/clients/:clientId/key-packages",
    { schema: listSchema, onRequest: authenticateOwner, config: perClient(limits.readsPerWindow) },
    async (request): Promise<ListKeypackagesResponse> => {
      const q = request.query;
      const suite = q.ciphersuite !== undefined ? checkSuite(q.ciphersuite) : undefined;
      const limit = q.limit !== undefined ? Number(q.limit) : DEFAULT_LIST_LIMIT;
      if (limit > MAX_LIST_LIMIT)
        throw new HttpError(400, "bad_request", `limit must be between 1 and ${MAX_LIST_LIMIT}`);
      const r = await store.listKeypackages(caller(request), {
        limit,
        ...(suite !== undefined ? { ciphersuite: suite } : {}),
        ...(q.cursor !== undefined ? { after: new Uint8Array(Buffer.from(q.cursor, "hex")) } : {}),
      });
      const keyPackages = r.keyPackages.map((k) => ({
        ref: hex(k.ref),
        ciphersuite: k.ciphersuite,
        lastResort: k.lastResort,
        notBefore: k.notBefore,
        notAfter: k.notAfter,
      }));
      const last = keyPackages[keyPackages.length - 1];
      return r.more && last !== undefined ? { keyPackages, nextCursor: last.ref } : { keyPackages };
    },
  );

  app.post<{ Params: { clientId: string }; Body: RotateSignatureKeyRequest }>(
    "/v1/clients/:clientId/signature-keys/rotate",
    {
      schema: rotateSchema,
      onRequest: authenticateOwner,
      preParsing: chargeUploadBytes,
      config: perClient(limits.uploadsPerWindow),
    },
    async (request, reply): Promise<RotateSignatureKeyResponse> => {
      const { ciphersuite, signatureKey, oldSignatureKey, proof, keyPackages } = request.body;
      const suite = checkSuite(ciphersuite);
      const newKey = decodeBase64(signatureKey);
      const want = SIGNATURE_KEY_LENGTH[signatureSchemeOf(suite as Ciphersuite)];
      if (newKey === undefined || newKey.length !== want)
        throw new HttpError(
          400,
          "invalid_signature_key",
          `suite ${suite}: expected ${want} bytes of base64 public key`,
        );
      const signature = decodeBase64(proof);
      if (signature === undefined) throw new HttpError(400, "bad_request", "proof is not standard base64");
      // The key registered now (this process's cache may predate another rotation).
      const current = await refreshClient(caller(request).clientId);
      const oldKey = current?.signatureKeys.get(suite);
      if (current === undefined || oldKey === undefined)
        throw new HttpError(
          400,
          "signature_key_not_registered",
          `no signature key registered for cipher suite ${suite}`,
        );
      if (oldSignatureKey !== undefined && !sameKey(decodeBase64(oldSignatureKey), oldKey))
        throw new HttpError(
          409,
          "stale_signature_key",
          "oldSignatureKey is not the registered signature key (rotated meanwhile?); nothing was changed",
        );
      if (sameKey(oldKey, newKey))
        throw new HttpError(400, "same_signature_key", "the new signature key is the registered one");
      // Proof of possession of the new key: RFC 9420 §5.1.2 VerifyWithLabel over the content
      // binding client, suite, old and new key (one signature: on the event loop).
      const content = rotationProofContent(current.clientId, suite, oldKey, newKey);
      const impl = await ciphersuiteImpl(suite);
      const proven = await verifyWithLabel(
        newKey,
        ROTATION_PROOF_LABEL,
        content,
        signature,
        impl.signature,
      ).catch(() => false);
      if (!proven)
        throw new HttpError(
          422,
          "invalid_proof",
          "proof is not the new key's signature over the rotation content (docs/ds.md)",
        );
      // The new packages: validated like an upload, against the NEW key.
      const signer: DsClient = {
        ...current,
        signatureKeys: new Map(current.signatureKeys).set(suite, newKey),
      };
      const { packages } = await validated(request, reply, keyPackages, signer);
      const foreign = packages.flatMap((p, index) =>
        p.ciphersuite !== suite
          ? [
              {
                index,
                rule: "ciphersuite" as const,
                message: `a rotation of cipher suite ${suite} carries packages of that suite only`,
              },
            ]
          : [],
      );
      if (foreign.length > 0) return rejectWith(foreign, keyPackages.length);
      const r = await store.rotateSignatureKey(current, suite, oldKey, newKey, packages, {
        maxStoredPerClient: limits.maxStoredPerClient,
      });
      forgetClient(current.clientId);
      if (!r.ok) {
        if (r.reason === "stale_signature_key")
          throw new HttpError(
            409,
            "stale_signature_key",
            "the registered signature key changed meanwhile (another rotation); nothing was changed",
          );
        if (r.reason === "init_key_reused") {
          const reused = new Set(r.initKeyHashes.map(hex));
          return rejectWith(
            packages.flatMap((p, index) =>
              reused.delete(hex(p.initKeyHash))
                ? [
                    {
                      index,
                      rule: "init_key_reused" as const,
                      message: "this init key was seen before by this server",
                    },
                  ]
                : [],
            ),
            keyPackages.length,
          );
        }
        throw new HttpError(
          409,
          "pool_full",
          `a client may hold at most ${limits.maxStoredPerClient} key packages (${r.stored} stored)`,
        );
      }
      request.log.info(
        { clientId: current.clientId, ciphersuite: suite, deleted: r.deleted },
        "signature key rotated",
      );
      metrics.uploads.inc({ result: "accepted" });
      metrics.uploadedKeypackages.inc(packages.length);
      publish([{ kind: "rotated", clientId: current.clientId, ciphersuite: suite, deleted: r.deleted }]);
      return { deleted: r.deleted, refs: packages.map((p) => hex(p.ref)) };
    },
  );

  app.get<{ Params: { clientId: string }; Querystring: { lowWater?: string; ciphersuite?: string } }>(
    "/v1/clients/:clientId/events",
    { schema: eventsSchema, onRequest: authenticateOwner, config: perClient(limits.readsPerWindow) },
    async (request, reply) => {
      const { clientId } = caller(request);
      const q = request.query;
      const filter: SubscriptionFilter = {
        ...(q.lowWater !== undefined ? { lowWater: Number(q.lowWater) } : {}),
        ...(q.ciphersuite !== undefined ? { ciphersuite: checkSuite(q.ciphersuite) } : {}),
      };
      const refused = hub.refusal(clientId);
      if (refused === "closed") throw new HttpError(503, "shutting_down", "the server is shutting down");
      if (refused !== undefined) {
        reply.header("retry-after", "30");
        throw new HttpError(
          429,
          "too_many_subscribers",
          refused === "per_client"
            ? `at most ${limits.eventSubscribersPerClient} event streams per client`
            : `at most ${limits.eventSubscribers} event streams per server`,
        );
      }
      const headers: Record<string, string | number | string[]> = {};
      for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
      reply.hijack();
      hub.open(clientId, filter, reply.raw, headers);
      return reply;
    },
  );

  // ── maintenance and shutdown ─────────────────────────────────────────────

  const interval = options.maintenanceIntervalMs ?? 10 * 60_000;
  let timer: NodeJS.Timeout | undefined;
  let purging = false; // a batched purge may outlast the interval: never run two at once
  if (interval > 0) {
    timer = setInterval(() => {
      if (purging) return;
      purging = true;
      store
        .purgeExpired(seconds(clock()))
        .then(
          (r) => metrics.purged.inc(r.keypackages),
          (err: unknown) => app.log.error({ err }, "purge failed"),
        )
        .finally(() => (purging = false));
    }, interval);
    timer.unref();
  }
  app.addHook("onClose", async () => {
    if (timer !== undefined) clearInterval(timer);
    await ownVerifier?.close();
    if (options.closeStore !== false) await store.close();
  });

  return app;
}

function signatureKeysDiffer(a: DsClient, b: DsClient): boolean {
  if (a.signatureKeys.size !== b.signatureKeys.size) return true;
  for (const [suite, key] of a.signatureKeys) if (!sameKey(key, b.signatureKeys.get(suite))) return true;
  return false;
}

/** `Idempotency-Key` (an sf-string or a bare token): 1–255 visible ASCII characters, else 400. */
function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const raw = Array.isArray(header) ? undefined : header.trim();
  const key = raw !== undefined && /^".*"$/.test(raw) ? raw.slice(1, -1) : raw;
  if (key === undefined || !/^[\x21-\x7e]{1,255}$/.test(key))
    throw new HttpError(400, "bad_request", "Idempotency-Key must be 1 to 255 visible ASCII characters");
  return key;
}

function sendError(reply: FastifyReply, err: HttpError): FastifyReply {
  const body: DsErrorBody = { error: err.error, message: err.message };
  if (err.rejected !== undefined) body.rejected = err.rejected;
  return reply.code(err.statusCode).send(body);
}

/**
 * A database that cannot be reached (down, restarting, connection dropped or timed out): the
 * request may be retried, so it answers 503 `store_unavailable`, never 500. PostgreSQL SQLSTATE
 * classes 08 (connection exception) and 57P (operator intervention: shutdown, restart).
 */
function isStoreUnavailable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === "string" && (/^08/.test(code) || /^57P0/.test(code))) return true;
  if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE") return true;
  return (
    typeof message === "string" &&
    /Connection terminated|is not queryable|timeout exceeded when trying to connect|the database system is (starting up|shutting down)/.test(
      message,
    )
  );
}
