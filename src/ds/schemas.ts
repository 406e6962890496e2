/** JSON schemas of the routes: request validation, response serialization and the OpenAPI document. */

const UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

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
  properties: {
    clientId: {
      type: "string",
      minLength: 1,
      maxLength: 512,
      description: "`<user-uuid>:<device-id-hex>@<domain>`, URL-encoded",
    },
  },
} as const;

const suiteQuery = {
  type: "object",
  required: ["ciphersuite"],
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
      clientId: { type: "string", minLength: 1, maxLength: 512 },
      signatureKeys: {
        type: "object",
        minProperties: 1,
        description: "Cipher suite code point → base64 signature public key",
        propertyNames: { pattern: "^[1-9][0-9]{0,4}$" },
        additionalProperties: { type: "string" },
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
  summary: "Count valid, unexpired key packages of a cipher suite",
  security: bearer,
  params: clientIdParams,
  querystring: suiteQuery,
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
        items: { type: "string", pattern: "^[0-9a-f]{2,128}$" },
        description: "Hex refs",
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
  params: { type: "object", required: ["userId"], properties: { userId: { type: "string", pattern: UUID } } },
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

export const healthSchema = {
  tags: ["operations"],
  summary: "Liveness and database reachability",
  response: {
    200: { type: "object", properties: { status: { type: "string" }, store: { type: "string" } } },
    503: errorSchema,
  },
} as const;

export const metricsSchema = {
  tags: ["operations"],
  summary: "Prometheus metrics (text exposition format)",
  produces: ["text/plain"],
} as const;
