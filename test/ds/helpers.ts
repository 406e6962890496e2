import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  Keypackage,
  type CredentialRef,
} from "../../src/index.js";
import { defaultCryptoProvider, getCiphersuiteImpl } from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { decodeKeyPackage, encodeKeyPackage, signKeyPackage } from "ts-mls/keyPackage.js";
import { signLeafNodeKeyPackage } from "ts-mls/leafNode.js";
import type { KeyPackage as MlsKeyPackage } from "ts-mls";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import { buildKeyPackage } from "../../src/mls/keypackage/build.js";
import { createDeliveryService, type DeliveryServiceOptions } from "../../src/ds/server.js";
import { DeliveryServiceClient } from "../../src/ds/client.js";
import type { DeliveryServiceStore } from "../../src/ds/store.js";

export const SUITE1 = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
export const SUITE2 = Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
export const SECRET = "test-enrollment-secret-0123456789";
export const PG_URL = process.env.MLSKP_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A fresh, unique PostgreSQL schema name for this test run. */
export function uniqueSchema(tag: string): string {
  return `mlskp_t_${tag}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

export function randomUserId(): string {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A device: a CoreCrypto session with one credential per suite. */
export class Device {
  private constructor(
    readonly cc: CoreCrypto,
    readonly clientId: ClientId,
    readonly creds: Map<Ciphersuite, CredentialRef>,
    readonly keys: Map<Ciphersuite, Uint8Array>,
    /** The credentials with their private keys (to craft packages in tests). */
    readonly credentials: Map<Ciphersuite, Credential>,
  ) {}

  static async create(
    options: { userId?: string; device?: string; suites?: Ciphersuite[]; clock?: () => Date } = {},
  ): Promise<Device> {
    const userId = options.userId ?? randomUserId();
    const clientId = ClientId.parse(
      `${userId}:${options.device ?? randomBytes(4).toString("hex")}@example.com`,
    );
    const cc = await CoreCrypto.open(
      await Database.inMemory(),
      options.clock ? { clock: options.clock } : {},
    );
    const creds = new Map<Ciphersuite, CredentialRef>();
    const keys = new Map<Ciphersuite, Uint8Array>();
    const credentials = new Map<Ciphersuite, Credential>();
    for (const suite of options.suites ?? [SUITE1]) {
      const c = Credential.basic(suite, clientId);
      keys.set(suite, c.publicKey);
      credentials.set(suite, c);
      creds.set(suite, await cc.transaction((tx) => tx.addCredential(c)));
    }
    return new Device(cc, clientId, creds, keys, credentials);
  }

  get id(): string {
    return this.clientId.toString();
  }

  get userId(): string {
    return this.clientId.userId();
  }

  async generate(
    n: number,
    options: { suite?: Ciphersuite; lastResort?: boolean; lifetime?: number } = {},
  ): Promise<Keypackage[]> {
    const cred = this.creds.get(options.suite ?? SUITE1);
    if (cred === undefined) throw new Error("no credential for that suite");
    return this.cc.transaction(async (tx) => {
      const out: Keypackage[] = [];
      for (let i = 0; i < n; i++) {
        out.push(
          await tx.generateKeypackage(cred, options.lifetime, { lastResort: options.lastResort === true }),
        );
      }
      return out;
    });
  }

  /** Register with the DS and return a client holding the token. */
  /** `secret` null: send none. */
  async register(baseUrl: string, secret: string | null = SECRET): Promise<DeliveryServiceClient> {
    const client = new DeliveryServiceClient({ baseUrl });
    await client.register({
      clientId: this.clientId,
      signatureKeys: this.keys,
      ...(secret !== null ? { enrollmentSecret: secret } : {}),
    });
    return client;
  }
}

/** A DS listening on 127.0.0.1 on an ephemeral port, in this process. */
export async function startServer(
  store: DeliveryServiceStore,
  options: Partial<DeliveryServiceOptions> = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const app = await createDeliveryService({
    store,
    enrollmentSecret: SECRET,
    maintenanceIntervalMs: 0,
    ...options,
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return { url, close: () => app.close() };
}

const children = new Set<ChildProcess>();
// Never leave a server behind, whatever happens to the test.
process.once("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

/** `mlskp serve` in a child process (from the TypeScript source); resolves with its URL once it listens. */
export async function spawnCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const proc = spawn(
    process.execPath,
    [`${ROOT}bin/mlskp.js`, "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warn", ...args],
    {
      cwd: ROOT,
      env: { ...process.env, MLSKP_USE_SOURCE: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    // generous: under the full suite on 2 cores, loading the CLI from source can take long
    const timer = setTimeout(() => reject(new Error(`CLI did not start in time: ${err}`)), 90_000);
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`CLI exited with ${code}: ${err}`));
    });
  });
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    await exited;
  };
  return { url, proc, stop };
}

/** Raw JSON request (for what the typed client will not send). */
export async function http(
  url: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined || options.rawBody !== undefined)
    headers["content-type"] = "application/json";
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(url + path, {
    method,
    headers,
    ...(options.rawBody !== undefined
      ? { body: options.rawBody }
      : options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}

/** Build a package directly (any lifetime, suite of the credential), bypassing the library's checks. */
export async function craft(
  credential: Credential,
  o: { notBefore: number; notAfter: number; lastResort?: boolean },
): Promise<Uint8Array> {
  const built = await buildKeyPackage(await ciphersuiteImpl(credential.ciphersuite), {
    ciphersuite: credential.ciphersuite,
    credential: credential.encoded,
    signaturePublicKey: credential.publicKey,
    signaturePrivateKey: credential.signaturePrivateKey(),
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    lastResort: o.lastResort === true,
  });
  return built.bytes;
}

/**
 * Decode, change, and re-sign (leaf node and key package) with the credential's key: an attack
 * input built with ts-mls (its structures and signer), independent of the engine under test.
 */
export async function tamper(
  bytes: Uint8Array,
  credential: Credential,
  change: (kp: MlsKeyPackage) => MlsKeyPackage,
  options: { resignLeaf?: boolean } = {},
): Promise<Uint8Array> {
  const cs = await getCiphersuiteImpl(
    getCiphersuiteFromId(credential.ciphersuite as CiphersuiteId),
    defaultCryptoProvider,
  );
  const decoded = decodeKeyPackage(bytes, 0);
  if (decoded === undefined || decoded[1] !== bytes.length) throw new Error("tamper: not a KeyPackage");
  const kp = change(structuredClone(decoded[0]));
  let leafNode = kp.leafNode;
  if (options.resignLeaf === true) {
    const { signature: _old, ...tbs } = leafNode as MlsKeyPackage["leafNode"] & { signature: Uint8Array };
    leafNode = (await signLeafNodeKeyPackage(
      tbs as Parameters<typeof signLeafNodeKeyPackage>[0],
      credential.signaturePrivateKey(),
      cs.signature,
    )) as MlsKeyPackage["leafNode"];
  }
  const { signature: _sig, ...kpTbs } = { ...kp, leafNode };
  const signed = await signKeyPackage(
    kpTbs as Parameters<typeof signKeyPackage>[0],
    credential.signaturePrivateKey(),
    cs.signature,
  );
  return encodeKeyPackage(signed);
}

/** Flip the low bit of the last byte (inside the key package signature). */
export function flipLast(bytes: Uint8Array): Uint8Array {
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
  return bytes;
}

export const b64 = (u: Uint8Array): string => Buffer.from(u).toString("base64");
export const hexOf = (u: Uint8Array): string => Buffer.from(u).toString("hex");
