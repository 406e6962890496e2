/**
 * `mlskp pool status|sync`: the key package pool of a device's keystore, from the command line.
 *
 * Exit codes (also in docs/pool.md):
 *   0 ok · 1 other error · 2 usage (missing or bad option, no database key) ·
 *   3 Delivery Service unreachable (network, timeout, 5xx) · 4 refused by the Delivery Service
 *   (not registered, bad token or enrollment secret, 4xx) · 5 keystore (missing file, wrong key,
 *   no or several matching credentials).
 */
import { existsSync, readFileSync } from "node:fs";
import cliProgress from "cli-progress";
import { Command, InvalidArgumentError, Option } from "commander";
import { MlsKeypackagesError } from "../errors.js";
import { ClientId } from "../credential/clientId.js";
import type { CredentialRef } from "../credential/credentialRef.js";
import { SUPPORTED_CIPHERSUITES, type Ciphersuite } from "../mls/ciphersuite.js";
import { hexToBytes } from "../mls/crypto/bytes.js";
import { toHex } from "../keystore/staging.js";
import { Database } from "../keystore/database.js";
import { DatabaseKey } from "../keystore/databaseKey.js";
import { CoreCrypto } from "../session.js";
import { TransactionContext } from "../transaction/context.js";
import { DeliveryServiceClient, DeliveryServiceError } from "../ds/client.js";
import type { PoolStatus, PoolSyncReport } from "../pool/pool.js";

export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  dsUnreachable: 3,
  dsRefused: 4,
  keystore: 5,
} as const;

/** An error with the exit code it maps to. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "CliError";
  }
}

interface PoolCliOptions {
  keystore: string;
  ds: string;
  keyFile?: string;
  clientId?: string;
  ciphersuite?: Ciphersuite;
  register?: boolean;
  enrollmentSecretFile?: string;
  target?: number;
  lowWater?: number;
  json?: boolean;
}

/** The DS account of this device, kept in the (encrypted) keystore's `kv` table. */
interface DsAccount {
  url: string;
  clientId: string;
  token: string;
}

const accountKey = (clientId: ClientId): string => `mlskp.cli.ds/${toHex(clientId.bytes())}`;

/** A transaction that can also read and write the CLI's `kv` row (the DS account). */
class CliTransaction extends TransactionContext {
  readAccount(key: string): Promise<DsAccount | undefined> {
    return this.run(async ({ store }) => {
      const row = await store.get("kv", key);
      if (row === undefined) return undefined;
      return JSON.parse(new TextDecoder().decode(row.value)) as DsAccount;
    });
  }

  writeAccount(key: string, account: DsAccount): Promise<void> {
    return this.run(async ({ store }) => {
      store.write("kv", key, { key, value: new TextEncoder().encode(JSON.stringify(account)) });
    });
  }
}

async function cliTransaction<R>(cc: CoreCrypto, fn: (tx: CliTransaction) => Promise<R>): Promise<R> {
  const release = await cc.database.lock.acquire();
  const tx = new CliTransaction(cc.database, () => cc.now(), release);
  try {
    const r = await fn(tx);
    await tx.finish();
    return r;
  } catch (err) {
    if (!tx.isFinished) await tx.abort().catch(() => undefined);
    throw err;
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer");
  return n;
}

function suite(value: string): Ciphersuite {
  const n = Number(value);
  if (!SUPPORTED_CIPHERSUITES.includes(n as Ciphersuite)) {
    throw new InvalidArgumentError(`expected one of ${SUPPORTED_CIPHERSUITES.join(",")}`);
  }
  return n as Ciphersuite;
}

/** The keystore key: `MLSKP_KEYSTORE_KEY` (64 hex characters) or `--key-file` (hex text or 32 raw bytes). */
export function databaseKey(keyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): DatabaseKey {
  let bytes: Uint8Array;
  if (keyFile !== undefined) {
    const raw = readFileSync(keyFile);
    const text = raw.toString("latin1").trim();
    bytes = /^[0-9a-fA-F]{64}$/.test(text) ? hexToBytes(text.toLowerCase()) : new Uint8Array(raw);
  } else {
    const hex = env.MLSKP_KEYSTORE_KEY?.trim();
    if (hex === undefined || hex === "") {
      throw new CliError(EXIT.usage, "set MLSKP_KEYSTORE_KEY (64 hex characters) or pass --key-file");
    }
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
      throw new CliError(EXIT.usage, "MLSKP_KEYSTORE_KEY must be 64 hex characters (32 bytes)");
    }
    bytes = hexToBytes(hex.toLowerCase());
  }
  try {
    return new DatabaseKey(bytes);
  } catch (err) {
    throw new CliError(EXIT.usage, "the key file must hold 32 bytes (raw, or 64 hex characters)", {
      cause: err,
    });
  }
}

/** Map any error to the CLI's exit codes. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof DeliveryServiceError) {
    return err.status === 0 || err.status >= 500 ? EXIT.dsUnreachable : EXIT.dsRefused;
  }
  if (MlsKeypackagesError.is(err)) {
    const code = String(err.code);
    if (/Keystore|Database|Credential/.test(code)) return EXIT.keystore;
  }
  return EXIT.error;
}

async function pickCredential(cc: CoreCrypto, o: PoolCliOptions): Promise<CredentialRef> {
  const clientId = o.clientId !== undefined ? ClientId.parse(o.clientId) : undefined;
  const found = await cc.transaction((tx) =>
    tx.findCredentials({
      ...(clientId !== undefined ? { clientId } : {}),
      ...(o.ciphersuite !== undefined ? { ciphersuite: o.ciphersuite } : {}),
    }),
  );
  if (found.length === 0) throw new CliError(EXIT.keystore, "no matching credential in this keystore");
  const ids = new Set(found.map((c) => c.clientId().toString()));
  const suites = new Set(found.map((c) => c.ciphersuite()));
  if (ids.size > 1) throw new CliError(EXIT.usage, "several client ids in this keystore: pass --client-id");
  if (suites.size > 1)
    throw new CliError(EXIT.usage, "several cipher suites in this keystore: pass --ciphersuite");
  // After a rotation both credentials are stored; the pool follows its own record of the current one.
  return found[found.length - 1]!;
}

async function dsClient(
  cc: CoreCrypto,
  credential: CredentialRef,
  o: PoolCliOptions,
): Promise<DeliveryServiceClient> {
  const key = accountKey(credential.clientId());
  const url = o.ds.replace(/\/+$/, "");
  const account = await cliTransaction(cc, (tx) => tx.readAccount(key));
  if (account !== undefined && account.url === url) {
    return new DeliveryServiceClient({ baseUrl: url, clientId: account.clientId, token: account.token });
  }
  if (o.register !== true) {
    throw new CliError(
      EXIT.dsRefused,
      `this keystore has no account on ${url}: run \`mlskp pool sync --register\` (with --enrollment-secret-file) once`,
    );
  }
  let secret = process.env.MLSKP_ENROLLMENT_SECRET;
  if (o.enrollmentSecretFile !== undefined) secret = readFileSync(o.enrollmentSecretFile, "utf8").trim();
  const ds = new DeliveryServiceClient({ baseUrl: url });
  const token = await ds.register({
    clientId: credential.clientId(),
    signatureKeys: { [credential.ciphersuite()]: credential.publicKey() },
    ...(secret !== undefined && secret !== "" ? { enrollmentSecret: secret } : {}),
  });
  await cliTransaction(cc, (tx) =>
    tx.writeAccount(key, { url, clientId: credential.clientId().toString(), token }),
  );
  return ds;
}

function printStatus(s: PoolStatus): string {
  return [
    `credential      ${s.credential.clientId().toString()} (suite ${s.credential.ciphersuite()})`,
    `on the DS       ${s.dsCount} valid now, ${s.dsCountAtHorizon} still valid at the rotation horizon, last resort ${s.dsLastResort}`,
    `in the keystore ${s.local.up} up, ${s.local.gone} in grace period, ${s.local.new + s.local.sending + s.local.rotating} pending, ${s.local.untracked} untracked`,
    `rotation        ${s.rotationPending ? "pending (the next sync finishes it)" : "none pending"}`,
    `top-up due      ${s.belowLowWater ? "yes" : "no"}`,
  ].join("\n");
}

function printReport(r: PoolSyncReport): string {
  return [
    `generated ${r.generated}, uploaded ${r.uploaded}, rotated ${r.rotated}, deleted on the DS ${r.deletedOnDs}, pruned locally ${r.prunedLocally}`,
    `last resort ${r.lastResort}; DS: ${r.dsCount ?? "?"} valid now, ${r.dsCountAtHorizon} at the horizon; ${r.requests} requests, ${r.durationMs} ms`,
  ].join("\n");
}

async function runPool(command: "status" | "sync", o: PoolCliOptions): Promise<void> {
  const key = databaseKey(o.keyFile);
  if (!existsSync(o.keystore)) throw new CliError(EXIT.keystore, `no keystore at ${o.keystore}`);
  const steps = command === "sync" ? ["opening the keystore", "reaching the DS", "syncing", "done"] : [];
  const bar =
    steps.length > 0 && process.stderr.isTTY === true && o.json !== true
      ? new cliProgress.SingleBar(
          { format: "  {bar} {value}/{total} {stage}", stream: process.stderr, hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(steps.length - 1, 0, { stage: steps[0] });
  let database: Database;
  try {
    database = await Database.open(o.keystore, key);
  } catch (err) {
    bar?.stop();
    throw new CliError(EXIT.keystore, `cannot open the keystore: ${(err as Error).message}`, { cause: err });
  }
  const cc = await CoreCrypto.open(database);
  try {
    const credential = await pickCredential(cc, o);
    bar?.update(1, { stage: steps[1] });
    const ds = await dsClient(cc, credential, o);
    const pool = cc.keypackagePool({
      ds,
      credential,
      ...(o.target !== undefined ? { target: o.target } : {}),
      ...(o.lowWater !== undefined ? { lowWater: o.lowWater } : {}),
    });
    if (command === "status") {
      const s = await pool.status();
      process.stdout.write(
        o.json === true
          ? JSON.stringify({
              ...s,
              credential: {
                clientId: s.credential.clientId().toString(),
                ciphersuite: s.credential.ciphersuite(),
              },
            }) + "\n"
          : printStatus(s) + "\n",
      );
      return;
    }
    bar?.update(2, { stage: steps[2] });
    const r = await pool.sync();
    bar?.update(3, { stage: steps[3] });
    bar?.stop();
    process.stdout.write(o.json === true ? JSON.stringify(r) + "\n" : printReport(r) + "\n");
  } finally {
    bar?.stop();
    await cc.close();
  }
}

/** `mlskp pool …` */
export function poolCommand(): Command {
  const pool = new Command("pool").description(
    "keep this device's key packages on a Delivery Service healthy (exit codes: 0 ok, 1 error, 2 usage, 3 DS unreachable, 4 refused by the DS, 5 keystore)",
  );
  // Usage errors exit with 2 (commander's default is 1).
  pool.exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  });
  const common = (c: Command): Command =>
    c
      .requiredOption("--keystore <path>", "the encrypted SQLite keystore")
      .requiredOption("--ds <url>", "the Delivery Service, e.g. http://127.0.0.1:8080")
      .option("--key-file <path>", "the keystore key (32 bytes, raw or hex); else MLSKP_KEYSTORE_KEY (hex)")
      .option("--client-id <id>", "which client, when the keystore holds several")
      .addOption(new Option("--ciphersuite <n>", "which cipher suite, when several").argParser(suite))
      .addOption(
        new Option("--target <n>", "packages to keep on the DS (default 100)").argParser(positiveInt),
      )
      .addOption(new Option("--low-water <n>", "top up under this many (default 25)").argParser(positiveInt))
      .option("--json", "print the result as JSON");
  const act =
    (command: "status" | "sync") =>
    async (o: PoolCliOptions): Promise<void> => {
      try {
        await runPool(command, o);
      } catch (err) {
        process.stderr.write(`mlskp pool ${command}: ${(err as Error).message}\n`);
        process.exit(exitCodeOf(err));
      }
    };
  pool.addCommand(
    common(
      new Command("status").description("counts on the DS and in the keystore, without changing anything"),
    )
      .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage))
      .action(act("status")),
  );
  pool.addCommand(
    common(new Command("sync").description("bring the keystore and the DS into agreement (one pool.sync())"))
      .option("--register", "register this client with the DS first if this keystore has no account there")
      .option("--enrollment-secret-file <path>", "the DS enrollment secret (else MLSKP_ENROLLMENT_SECRET)")
      .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage))
      .action(act("sync")),
  );
  return pool;
}
