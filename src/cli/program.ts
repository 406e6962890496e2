/** The `mlskp` command line (Node.js). */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { SUPPORTED_CIPHERSUITES, type Ciphersuite } from "../mls/ciphersuite.js";
import { parseCorsOrigins } from "../ds/cors.js";
import { isPostgresUrl, openStore } from "../ds/open.js";
import { createDeliveryService, type DeliveryServiceLimits } from "../ds/server.js";
import { pkiCommand } from "./pkiDevCa.js";
import { poolCommand } from "./pool.js";

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer");
  return n;
}

function suiteList(value: string): Ciphersuite[] {
  const suites = value.split(",").map((s) => Number(s.trim()));
  if (suites.some((s) => !SUPPORTED_CIPHERSUITES.includes(s as Ciphersuite))) {
    throw new InvalidArgumentError(
      `expected a comma-separated subset of ${SUPPORTED_CIPHERSUITES.join(",")}`,
    );
  }
  return suites as Ciphersuite[];
}

function corsOriginList(value: string): string[] {
  try {
    return parseCorsOrigins(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

interface ServeOptions {
  db: string;
  port: number;
  host: string;
  dev?: boolean;
  pgSchema?: string;
  pgPoolSize?: number;
  pgPartitions?: number;
  enrollmentSecretFile?: string;
  maxLifetimeMs?: number;
  ciphersuites?: Ciphersuite[];
  uploadsPerMinute?: number;
  claimsPerMinute?: number;
  registrationsPerMinute?: number;
  claimsPerTargetUser?: number;
  idempotencyWindowMs?: number;
  trustProxy?: boolean;
  uploadPackagesPerMinute?: number;
  uploadBytesPerMinute?: number;
  authFailuresPerMinute?: number;
  verifyWorkers?: number;
  corsOrigin?: string[];
  trustAnchor?: string[];
  intermediate?: string[];
  crl?: string[];
  requireX509?: boolean;
  logLevel: string;
}

/** Collect a repeatable option's values. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A PEM (text) or DER (binary) file of certificates or CRLs. */
function readPemOrDer(path: string): string | Uint8Array {
  const bytes = readFileSync(path);
  const text = bytes.toString("latin1");
  return text.includes("-----BEGIN ") ? bytes.toString("utf8") : new Uint8Array(bytes);
}

/** Start the Delivery Service; resolves once it listens. SIGINT/SIGTERM close it. */
async function serve(o: ServeOptions): Promise<void> {
  let secret = process.env.MLSKP_ENROLLMENT_SECRET;
  if (o.enrollmentSecretFile !== undefined) secret = readFileSync(o.enrollmentSecretFile, "utf8").trim();
  if (!o.dev && (secret === undefined || secret.length < 16)) {
    throw new Error(
      "set MLSKP_ENROLLMENT_SECRET (16+ characters) or --enrollment-secret-file, or run with --dev",
    );
  }
  if (o.requireX509 === true && (o.trustAnchor ?? []).length === 0) {
    throw new Error("--require-x509 needs at least one --trust-anchor");
  }
  const store = await openStore(o.db, {
    ...(o.pgSchema !== undefined ? { pgSchema: o.pgSchema } : {}),
    ...(o.pgPoolSize !== undefined ? { pgPoolSize: o.pgPoolSize } : {}),
    ...(o.pgPartitions !== undefined ? { pgPartitions: o.pgPartitions } : {}),
  });
  const limits: Partial<DeliveryServiceLimits> = { rateWindowMs: 60_000 };
  if (o.uploadsPerMinute !== undefined) limits.uploadsPerWindow = o.uploadsPerMinute;
  if (o.claimsPerMinute !== undefined) limits.claimsPerWindow = o.claimsPerMinute;
  if (o.registrationsPerMinute !== undefined) limits.registrationsPerWindow = o.registrationsPerMinute;
  if (o.uploadPackagesPerMinute !== undefined) limits.uploadPackagesPerWindow = o.uploadPackagesPerMinute;
  if (o.uploadBytesPerMinute !== undefined) limits.uploadBytesPerWindow = o.uploadBytesPerMinute;
  if (o.authFailuresPerMinute !== undefined) limits.authFailuresPerWindow = o.authFailuresPerMinute;
  if (o.claimsPerTargetUser !== undefined) limits.claimsPerTargetUser = o.claimsPerTargetUser;
  if (o.idempotencyWindowMs !== undefined) limits.idempotencyWindowMs = o.idempotencyWindowMs;
  const app = await createDeliveryService({
    store,
    dev: o.dev === true,
    ...(secret !== undefined ? { enrollmentSecret: secret } : {}),
    ...(o.maxLifetimeMs !== undefined ? { maxLifetimeMs: o.maxLifetimeMs } : {}),
    ...(o.ciphersuites !== undefined ? { ciphersuites: o.ciphersuites } : {}),
    limits,
    trustProxy: o.trustProxy === true,
    ...(o.verifyWorkers !== undefined ? { verifyWorkers: o.verifyWorkers } : {}),
    ...(o.corsOrigin !== undefined ? { corsOrigins: o.corsOrigin } : {}),
    ...(o.trustAnchor !== undefined ? { trustAnchors: o.trustAnchor.map(readPemOrDer) } : {}),
    ...(o.intermediate !== undefined ? { intermediates: o.intermediate.map(readPemOrDer) } : {}),
    ...(o.crl !== undefined ? { crls: o.crl.map(readPemOrDer) } : {}),
    ...(o.requireX509 === true ? { requireX509: true } : {}),
    logger:
      o.logLevel === "silent"
        ? false
        : { level: o.logLevel, redact: ["req.headers.authorization", 'req.headers["x-enrollment-secret"]'] },
  });
  const address = await app.listen({ port: o.port, host: o.host });
  const kind = isPostgresUrl(o.db) ? "postgres" : "sqlite";
  process.stdout.write(
    `mlskp ds listening on ${address} (store: ${kind}${o.dev ? ", dev: open enrollment" : ""})\n`,
  );
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

export function buildProgram(): Command {
  const program = new Command("mlskp").description("MLS key package tools").showHelpAfterError();
  program
    .command("serve")
    .description("run the key package Delivery Service")
    .addOption(
      new Option("--db <spec>", "SQLite file, :memory:, or postgres:// URL")
        .env("MLSKP_DB")
        .default("mlskp-ds.db"),
    )
    .addOption(
      new Option("--port <n>", "TCP port (0: any free port)")
        .env("MLSKP_PORT")
        .argParser(nonNegativeInt)
        .default(8080),
    )
    .addOption(new Option("--host <address>", "address to listen on").env("MLSKP_HOST").default("127.0.0.1"))
    .option("--dev", "open enrollment (no secret needed); never in production")
    .option("--trust-proxy", "take the client address from X-Forwarded-For (behind a reverse proxy)")
    .addOption(new Option("--pg-schema <name>", "PostgreSQL schema for the tables").env("MLSKP_PG_SCHEMA"))
    .addOption(
      new Option("--pg-pool-size <n>", "PostgreSQL connections per process").argParser(nonNegativeInt),
    )
    .addOption(
      new Option(
        "--pg-partitions <n>",
        "hash-partition a new ds_keypackages table by user id into n partitions",
      ).argParser(nonNegativeInt),
    )
    .option(
      "--enrollment-secret-file <path>",
      "read the enrollment secret from a file (else MLSKP_ENROLLMENT_SECRET)",
    )
    .addOption(
      new Option("--max-lifetime-ms <ms>", "longest accepted lifetime span").argParser(nonNegativeInt),
    )
    .addOption(new Option("--ciphersuites <list>", "accepted cipher suites, e.g. 1,2,3").argParser(suiteList))
    .addOption(
      new Option("--uploads-per-minute <n>", "uploads per client per minute").argParser(nonNegativeInt),
    )
    .addOption(
      new Option("--claims-per-minute <n>", "claims per claiming client per minute").argParser(
        nonNegativeInt,
      ),
    )
    .addOption(
      new Option(
        "--claims-per-target-user <n>",
        "claims by one client of one target user per hour, across processes (default 30)",
      ).argParser(nonNegativeInt),
    )
    .addOption(
      new Option(
        "--idempotency-window-ms <ms>",
        "how long a claim's answer is kept for a retry with its Idempotency-Key (default 600000)",
      ).argParser(nonNegativeInt),
    )
    .addOption(
      new Option("--registrations-per-minute <n>", "registrations per IP address per minute").argParser(
        nonNegativeInt,
      ),
    )
    .addOption(
      new Option(
        "--upload-packages-per-minute <n>",
        "key packages uploaded per client per minute (default 10000)",
      ).argParser(nonNegativeInt),
    )
    .addOption(
      new Option(
        "--upload-bytes-per-minute <n>",
        "upload body bytes per client per minute (default 16 MiB)",
      ).argParser(nonNegativeInt),
    )
    .addOption(
      new Option(
        "--auth-failures-per-minute <n>",
        "failed authentications per IP address per minute (default 60)",
      ).argParser(nonNegativeInt),
    )
    .addOption(
      new Option(
        "--verify-workers <n>",
        "signature verification threads (default: cores − 1, at most 8; 0: none)",
      ).argParser(nonNegativeInt),
    )
    .addOption(
      new Option(
        "--cors-origin <origin,...>",
        "origins whose pages may call the API (CORS; * for any); default off",
      )
        .env("MLSKP_CORS_ORIGIN")
        .argParser(corsOriginList),
    )
    .option(
      "--trust-anchor <file>",
      "PEM/DER root certificate(s) accepted for X509 credentials (repeatable); without it only Basic",
      collect,
    )
    .option(
      "--intermediate <file>",
      "PEM/DER intermediate CA certificate(s) chains may omit (repeatable)",
      collect,
    )
    .option("--crl <file>", "PEM/DER CRL checked for X509 credentials (repeatable)", collect)
    .option("--require-x509", "refuse key packages with a Basic credential (needs --trust-anchor)")
    .addOption(
      new Option("--log-level <level>", "request log level")
        .choices(["silent", "fatal", "error", "warn", "info", "debug"])
        .env("MLSKP_LOG_LEVEL")
        .default("info"),
    )
    .action(async (options: ServeOptions) => {
      await serve(options);
    });
  program.addCommand(pkiCommand());
  program.addCommand(poolCommand());
  return program;
}

/** Run the CLI with `argv` (as in `process.argv`). */
export async function runCli(argv: readonly string[] = process.argv): Promise<void> {
  await buildProgram().parseAsync([...argv]);
}
