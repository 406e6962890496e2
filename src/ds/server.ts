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
  signatureSchemeOf,
  type Ciphersuite,
} from "../mls/ciphersuite.js";
import { DsMetrics } from "./metrics.js";
import {
  claimSchema,
  countSchema,
  deleteSchema,
  healthSchema,
  metricsSchema,
  registerSchema,
  replaceSchema,
  uploadSchema,
} from "./schemas.js";
import type { DeliveryServiceStore, DsClient } from "./store.js";
import { decodeBase64, sha256, validateUpload } from "./validation.js";
import {
  ENROLLMENT_SECRET_HEADER,
  MAX_KEYPACKAGES_PER_UPLOAD,
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
  return { limits, suites, maxLifetimeMs };
}

/**
 * Build the Delivery Service. Call `listen()` on the result; `close()` stops the
 * maintenance timer and (by default) closes the store.
 */
export async function createDeliveryService(options: DeliveryServiceOptions): Promise<FastifyInstance> {
  const { limits, suites, maxLifetimeMs } = checkOptions(options);
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

  const logger =
    options.logger === true
      ? { level: "info", redact: ["req.headers.authorization", `req.headers["${ENROLLMENT_SECRET_HEADER}"]`] }
      : (options.logger ?? false);
  const app = Fastify({
    logger,
    bodyLimit: limits.bodyLimitBytes,
    trustProxy: options.trustProxy === true,
    // No type coercion: a number is not a base64 string (query strings are parsed by hand).
    ajv: { customOptions: { coerceTypes: false } },
  }) as unknown as FastifyInstance;

  app.setErrorHandler((err: unknown, request, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    const e = err as { statusCode?: number; code?: string; validation?: unknown; message?: string };
    if (e.validation !== undefined)
      return sendError(reply, new HttpError(400, "bad_request", e.message ?? "invalid request"));
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
    request.log.error({ err }, "request failed");
    return sendError(reply, new HttpError(500, "internal", "internal error"));
  });
  app.setNotFoundHandler((_request, reply) =>
    sendError(reply, new HttpError(404, "not_found", "no such route")),
  );

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

  async function authenticate(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    if (header === undefined || !/^bearer /i.test(header)) {
      metrics.authFailures.inc({ reason: "missing_token" });
      throw new HttpError(401, "missing_token", "an Authorization: Bearer token is required");
    }
    const token = header.slice(7).trim();
    if (!TOKEN_RE.test(token)) {
      metrics.authFailures.inc({ reason: "invalid_token" });
      throw new HttpError(401, "invalid_token", "unknown token");
    }
    const key = hex(sha256(new TextEncoder().encode(token)));
    const now = Date.now();
    let client = tokenCache.get(key);
    if (client === undefined || client.until < now) {
      const found = await store.clientByTokenHash(Buffer.from(key, "hex"));
      if (found === undefined) {
        metrics.authFailures.inc({ reason: "invalid_token" });
        throw new HttpError(401, "invalid_token", "unknown token");
      }
      if (tokenCache.size >= TOKEN_CACHE_MAX) tokenCache.clear();
      client = { client: found, until: now + TOKEN_CACHE_TTL_MS };
      tokenCache.set(key, client);
    }
    authed.set(request, client.client);
  }

  /** Authenticated, and the path's client must be the caller. */
  async function authenticateOwner(request: FastifyRequest): Promise<void> {
    await authenticate(request);
    const { clientId } = request.params as { clientId: string };
    if (authed.get(request)?.clientId !== clientId) {
      metrics.authFailures.inc({ reason: "forbidden" });
      throw new HttpError(403, "forbidden", "the token does not belong to this client");
    }
  }

  const caller = (request: FastifyRequest): DsClient => {
    const c = authed.get(request);
    if (c === undefined) throw new HttpError(401, "missing_token", "not authenticated");
    return c;
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
        const given = request.headers[ENROLLMENT_SECRET_HEADER];
        const ok =
          secretHash !== undefined &&
          typeof given === "string" &&
          timingSafeEqual(sha256(new TextEncoder().encode(given)), secretHash);
        if (!ok) {
          metrics.authFailures.inc({ reason: "enrollment_secret" });
          throw new HttpError(
            401,
            "invalid_enrollment_secret",
            `a valid ${ENROLLMENT_SECRET_HEADER} header is required`,
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

  async function upload(
    request: FastifyRequest<{ Body: UploadRequest }>,
    replace: boolean,
  ): Promise<UploadResponse> {
    const client = caller(request);
    const texts = request.body.keyPackages;
    if (texts.length > limits.maxKeypackagesPerUpload) {
      metrics.uploads.inc({ result: "rejected" });
      throw new HttpError(
        400,
        "too_many_key_packages",
        `at most ${limits.maxKeypackagesPerUpload} key packages per request`,
      );
    }
    const rejectWith = (rejected: DsRejection[]): never => {
      metrics.uploads.inc({ result: "rejected" });
      for (const r of rejected) metrics.rejectedKeypackages.inc({ rule: r.rule });
      throw new HttpError(
        422,
        "invalid_key_packages",
        `${rejected.length} of ${texts.length} key packages rejected`,
        rejected,
      );
    };
    const v = await validateUpload(texts, client, {
      now: clock(),
      maxLifetimeMs,
      ciphersuites: suites,
      maxKeypackageBytes: limits.maxKeypackageBytes,
    });
    if (!v.ok) return rejectWith(v.rejected);
    const { packages } = v;
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
    const seen = await store.seenInitKeys(packages.map((p) => p.initKeyHash));
    if (seen.length > 0) return rejectWith(reusedRejections(seen));
    const r = await store.addKeypackages(client, packages, {
      maxStoredPerClient: limits.maxStoredPerClient,
      ...(replace ? { replaceSuites: [...new Set(packages.map((p) => p.ciphersuite))] } : {}),
    });
    if (!r.ok) {
      if (r.reason === "init_key_reused") return rejectWith(reusedRejections(r.initKeyHashes));
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
    { schema: uploadSchema, onRequest: authenticateOwner, config: perClient(limits.uploadsPerWindow) },
    async (request, reply) => reply.code(201).send(await upload(request, false)),
  );

  app.put<{ Body: UploadRequest; Params: { clientId: string } }>(
    "/v1/clients/:clientId/key-packages",
    { schema: replaceSchema, onRequest: authenticateOwner, config: perClient(limits.uploadsPerWindow) },
    async (request) => upload(request, true),
  );

  app.get<{ Params: { clientId: string }; Querystring: { ciphersuite: string } }>(
    "/v1/clients/:clientId/key-packages/count",
    { schema: countSchema, onRequest: authenticateOwner, config: perClient(limits.readsPerWindow) },
    async (request): Promise<CountResponse> => {
      const suite = checkSuite(request.query.ciphersuite);
      const n = await store.countKeypackages(caller(request).clientId, suite, seconds(clock()));
      return { ciphersuite: suite, count: n.regular, lastResort: n.lastResort };
    },
  );

  app.delete<{ Params: { clientId: string }; Body: DeleteRequest }>(
    "/v1/clients/:clientId/key-packages",
    { schema: deleteSchema, onRequest: authenticateOwner, config: perClient(limits.readsPerWindow) },
    async (request): Promise<DeleteResponse> => {
      const refs = request.body.refs.map((r) => new Uint8Array(Buffer.from(r, "hex")));
      return { deleted: await store.deleteKeypackages(caller(request).clientId, refs) };
    },
  );

  app.post<{ Params: { userId: string }; Querystring: { ciphersuite: string } }>(
    "/v1/users/:userId/key-packages/claim",
    { schema: claimSchema, onRequest: authenticate, config: perClient(limits.claimsPerWindow) },
    async (request): Promise<ClaimResponse> => {
      const claimer = caller(request);
      const suite = checkSuite(request.query.ciphersuite);
      const end = metrics.claimSeconds.startTimer();
      const r = await store.claim(request.params.userId, suite, claimer.clientId, seconds(clock()));
      end();
      if (r === undefined) throw new HttpError(404, "unknown_user", "no client of this user is registered");
      metrics.claims.inc();
      metrics.purged.inc(r.purged);
      metrics.exhausted.inc(r.exhausted.length);
      for (const k of r.keyPackages)
        metrics.claimedKeypackages.inc({ kind: k.lastResort ? "last_resort" : "regular" });
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

  // ── maintenance and shutdown ─────────────────────────────────────────────

  const interval = options.maintenanceIntervalMs ?? 10 * 60_000;
  let timer: NodeJS.Timeout | undefined;
  if (interval > 0) {
    timer = setInterval(() => {
      store.purgeExpired(seconds(clock())).then(
        (r) => metrics.purged.inc(r.keypackages),
        (err: unknown) => app.log.error({ err }, "purge failed"),
      );
    }, interval);
    timer.unref();
  }
  app.addHook("onClose", async () => {
    if (timer !== undefined) clearInterval(timer);
    if (options.closeStore !== false) await store.close();
  });

  return app;
}

function sendError(reply: FastifyReply, err: HttpError): FastifyReply {
  const body: DsErrorBody = { error: err.error, message: err.message };
  if (err.rejected !== undefined) body.rejected = err.rejected;
  return reply.code(err.statusCode).send(body);
}
