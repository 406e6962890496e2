/**
 * JSON schemas of the routes: request validation, response serialization and the OpenAPI
 * document. Requests are strict: unknown properties are refused (never stripped), and the
 * client id grammar below is the one the router's `maxParamLength` is sized from.
 */

const UUID_BODY = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const UUID = `^${UUID_BODY}$`;

/** Longest DNS name (RFC 1035 §2.3.4), the domain part of a client id. */
export const MAX_DOMAIN_LENGTH = 253;
/** Longest device id: 64 bits in lowercase hex. */
export const MAX_DEVICE_ID_LENGTH = 16;
/** Longest client id the DS accepts: `<uuid 36>:<device ≤ 16>@<domain ≤ 253>` = 307 characters. */
export const MAX_CLIENT_ID_LENGTH = 36 + 1 + MAX_DEVICE_ID_LENGTH + 1 + MAX_DOMAIN_LENGTH;

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
/**
 * The client id grammar of the DS (Wire's form, stricter than `ClientId.parse`):
 * `<user-uuid>:<device-id>@<domain>`, the uuid in lowercase, the device id 1–16 lowercase hex
 * digits, the domain a lowercase DNS name (labels of `a-z 0-9 -`, 1–63 characters, not starting
 * or ending with `-`, joined by `.`, at most 253 characters). No whitespace, control
 * characters, NUL, uppercase or non-ASCII anywhere.
 */
export const CLIENT_ID_PATTERN = `^${UUID_BODY}:[0-9a-f]{1,${MAX_DEVICE_ID_LENGTH}}@(?=[a-z0-9.-]{1,${MAX_DOMAIN_LENGTH}}$)${LABEL}(?:\\.${LABEL})*$`;
export const CLIENT_ID_RE = new RegExp(CLIENT_ID_PATTERN);

/** Lowercase hex of a KeyPackageRef: the hash length of a suite (SHA-256, SHA-384 or SHA-512). */
export const REF_PATTERN = "^(?:[0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128})$";

const clientIdString = {
  type: "string",
  minLength: 1,
  maxLength: MAX_CLIENT_ID_LENGTH,
  pattern: CLIENT_ID_PATTERN,
  description:
    "`<user-uuid>:<device-id-hex>@<domain>`: lowercase uuid, 1–16 lowercase hex digits, a lowercase DNS name; at most 307 characters",
} as const;

export const errorSchema = {
  type: "object",
  required: ["error", "message"],
  properties: {
    error: { type: "string", description: "Stable error code" },
    message: { type: "string" },
    rejected: {
      type: "array",
      description: "For `invalid_key_packages`: every rejected package with the rule it broke",
      items: {
        type: "object",
        required: ["index", "rule", "message"],
        properties: { index: { type: "integer" }, rule: { type: "string" }, message: { type: "string" } },
      },
    },
  },
} as const;

const errors = { "4xx": errorSchema, "5xx": errorSchema } as const;
const bearer = [{ bearer: [] }];

const clientIdParams = {
  type: "object",
  required: ["clientId"],
  additionalProperties: false,
  properties: {
    clientId: { ...clientIdString, description: `${clientIdString.description}, URL-encoded` },
  },
} as const;

const suiteQuery = {
  type: "object",
  required: ["ciphersuite"],
  additionalProperties: false,
  properties: {
    ciphersuite: {
      type: "string",
      pattern: "^[1-9][0-9]{0,4}$",
      description: "RFC 9420 cipher suite code point (decimal)",
    },
  },
} as const;

const uploadBody = {
  type: "object",
  required: ["keyPackages"],
  additionalProperties: false,
  properties: {
    keyPackages: {
      type: "array",
      minItems: 1,
      maxItems: 1000,
      description: "Base64 (standard, padded) TLS-encoded KeyPackages; at most 1000 per request",
      items: { type: "string" },
    },
  },
} as const;

const uploadResponse = {
  type: "object",
  required: ["refs", "removed"],
  properties: {
    refs: { type: "array", items: { type: "string" }, description: "Hex KeyPackageRefs in request order" },
    removed: { type: "integer", description: "Packages replaced (PUT) or superseded last-resort packages" },
  },
} as const;

export const registerSchema = {
  tags: ["clients"],
  summary: "Register a client and get its bearer token",
  description: "Needs the enrollment secret in `x-enrollment-secret` unless the server runs in dev mode.",
  security: [{ enrollment: [] }],
  body: {
    type: "object",
    required: ["userId", "clientId", "signatureKeys"],
    additionalProperties: false,
    properties: {
      userId: { type: "string", pattern: UUID },
      clientId: clientIdString,
      signatureKeys: {
        type: "object",
        minProperties: 1,
        maxProperties: 16,
        description: "Cipher suite code point → base64 signature public key",
        propertyNames: { pattern: "^[1-9][0-9]{0,4}$" },
        additionalProperties: { type: "string", maxLength: 256 },
      },
    },
  },
  response: {
    201: { type: "object", required: ["token"], properties: { token: { type: "string" } } },
    ...errors,
  },
} as const;

export const uploadSchema = {
  tags: ["key-packages"],
  summary: "Upload key packages (all or nothing)",
  security: bearer,
  params: clientIdParams,
  body: uploadBody,
  response: { 201: uploadResponse, ...errors },
} as const;

export const replaceSchema = {
  tags: ["key-packages"],
  summary: "Replace every key package of the cipher suites present in the request, atomically",
  security: bearer,
  params: clientIdParams,
  body: uploadBody,
  response: { 200: uploadResponse, ...errors },
} as const;

export const countSchema = {
  tags: ["key-packages"],
  summary: "Count key packages of a cipher suite valid now, or at `validAt`",
  security: bearer,
  params: clientIdParams,
  querystring: {
    ...suiteQuery,
    properties: {
      ...suiteQuery.properties,
      validAt: {
        type: "string",
        pattern: "^(?:0|[1-9][0-9]{0,14})$",
        description: "Unix time in ms (default now): count packages with notBefore ≤ validAt < notAfter",
      },
    },
  },
  response: {
    200: {
      type: "object",
      required: ["ciphersuite", "count", "lastResort"],
      properties: {
        ciphersuite: { type: "integer" },
        count: { type: "integer" },
        lastResort: { type: "integer" },
      },
    },
    ...errors,
  },
} as const;

export const deleteSchema = {
  tags: ["key-packages"],
  summary: "Delete key packages by ref",
  security: bearer,
  params: clientIdParams,
  body: {
    type: "object",
    required: ["refs"],
    additionalProperties: false,
    properties: {
      refs: {
        type: "array",
        maxItems: 1000,
        items: { type: "string", pattern: REF_PATTERN },
        description:
          "Lowercase hex refs, each the hash length of an accepted suite (64, 96 or 128 characters)",
      },
    },
  },
  response: {
    200: { type: "object", required: ["deleted"], properties: { deleted: { type: "integer" } } },
    ...errors,
  },
} as const;

export const claimSchema = {
  tags: ["key-packages"],
  summary: "Claim one key package of every client of a user (except the caller)",
  security: bearer,
  params: {
    type: "object",
    required: ["userId"],
    additionalProperties: false,
    properties: { userId: { type: "string", pattern: UUID } },
  },
  querystring: suiteQuery,
  response: {
    200: {
      type: "object",
      required: ["keyPackages", "exhausted"],
      properties: {
        keyPackages: {
          type: "array",
          items: {
            type: "object",
            required: ["clientId", "ref", "keyPackage", "lastResort"],
            properties: {
              clientId: { type: "string" },
              ref: { type: "string", description: "hex" },
              keyPackage: { type: "string", description: "base64" },
              lastResort: { type: "boolean" },
            },
          },
        },
        exhausted: {
          type: "array",
          items: { type: "string" },
          description: "Clients with no package at all",
        },
      },
    },
    ...errors,
  },
} as const;

/** Strict standard base64 (padding required). */
export const BASE64_PATTERN = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

const optionalSuite = {
  type: "string",
  pattern: "^[1-9][0-9]{0,4}$",
  description: "RFC 9420 cipher suite code point (decimal); default every suite",
} as const;

export const listSchema = {
  tags: ["key-packages"],
  summary: "List the caller's stored key packages (refs and lifetimes), by ref, paginated",
  security: bearer,
  params: clientIdParams,
  querystring: {
    type: "object",
    additionalProperties: false,
    properties: {
      ciphersuite: optionalSuite,
      limit: { type: "string", pattern: "^[1-9][0-9]{0,3}$", description: "Page size, 1–1000 (default 500)" },
      cursor: {
        type: "string",
        pattern: REF_PATTERN,
        description: "`nextCursor` of the previous page (opaque)",
      },
    },
  },
  response: {
    200: {
      type: "object",
      required: ["keyPackages"],
      properties: {
        keyPackages: {
          type: "array",
          items: {
            type: "object",
            required: ["ref", "ciphersuite", "lastResort", "notBefore", "notAfter"],
            properties: {
              ref: { type: "string", description: "hex" },
              ciphersuite: { type: "integer" },
              lastResort: { type: "boolean" },
              notBefore: { type: "integer", description: "Unix seconds" },
              notAfter: { type: "integer", description: "Unix seconds" },
            },
          },
        },
        nextCursor: { type: "string", description: "Present when more refs follow" },
      },
    },
    ...errors,
  },
} as const;

export const rotateSchema = {
  tags: ["clients"],
  summary: "Rotate the signature key of a cipher suite (proof of possession of the new key)",
  description:
    "In one transaction: the old key must still be registered; the new key replaces it, every key package of the suite is deleted, and `keyPackages` (signed by the new key) are stored.",
  security: bearer,
  params: clientIdParams,
  body: {
    type: "object",
    required: ["ciphersuite", "signatureKey", "proof", "keyPackages"],
    additionalProperties: false,
    properties: {
      ciphersuite: { type: "integer", minimum: 1, maximum: 65535 },
      signatureKey: {
        type: "string",
        minLength: 4,
        maxLength: 256,
        pattern: BASE64_PATTERN,
        description: "Base64 new signature public key",
      },
      oldSignatureKey: {
        type: "string",
        minLength: 4,
        maxLength: 256,
        pattern: BASE64_PATTERN,
        description:
          "Base64 signature key the proof binds (optional): 409 `stale_signature_key` when it is no longer the registered one",
      },
      proof: {
        type: "string",
        minLength: 4,
        maxLength: 512,
        pattern: BASE64_PATTERN,
        description:
          'Base64 SignWithLabel(new key, "mlskp rotate signature key", client_id<V> || uint16 ciphersuite || old_key<V> || new_key<V>)',
      },
      keyPackages: {
        type: "array",
        minItems: 0,
        maxItems: 1000,
        description: "Base64 TLS-encoded KeyPackages signed by the new key; at most 1000",
        items: { type: "string" },
      },
    },
  },
  response: {
    200: {
      type: "object",
      required: ["deleted", "refs"],
      properties: {
        deleted: { type: "integer", description: "Packages of the suite deleted (bound to the old key)" },
        refs: { type: "array", items: { type: "string" }, description: "Hex refs of the stored packages" },
      },
    },
    ...errors,
  },
} as const;

export const eventsSchema = {
  tags: ["clients"],
  summary: "Server-Sent Events about the caller's key packages",
  description:
    "`text/event-stream`: `claimed`, `last_resort_claimed`, `low_water` (with `lowWater`), `rotated`; a `: ping` comment every 15 s.",
  security: bearer,
  params: clientIdParams,
  querystring: {
    type: "object",
    additionalProperties: false,
    properties: {
      lowWater: {
        type: "string",
        pattern: "^(?:0|[1-9][0-9]{0,2}|1000)$",
        description:
          "Send `low_water` when fewer regular packages than this are left after a claim (at most 1000)",
      },
      ciphersuite: optionalSuite,
    },
  },
  produces: ["text/event-stream"],
  response: { ...errors },
} as const;

/** Routes without parameters refuse any query string parameter. */
const noQuery = { type: "object", additionalProperties: false, properties: {} } as const;

export const healthSchema = {
  tags: ["operations"],
  summary: "Liveness and database reachability",
  querystring: noQuery,
  response: {
    200: { type: "object", properties: { status: { type: "string" }, store: { type: "string" } } },
    503: errorSchema,
  },
} as const;

export const metricsSchema = {
  tags: ["operations"],
  summary: "Prometheus metrics (text exposition format)",
  querystring: noQuery,
  produces: ["text/plain"],
} as const;
