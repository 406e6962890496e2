/**
 * `mlskp pool status|sync` against a DS process (`mlskp serve`), on an encrypted SQLite keystore:
 * registration on first sync, the report, idempotence, and every documented exit code.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientId, CoreCrypto, Credential, Database, DatabaseKey } from "../../src/index.js";
import { ROOT, SECRET, SUITE1, spawnCli } from "../ds/helpers.js";

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI (from source) and collect its output; never hangs longer than `timeoutMs`. */
function mlskp(args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "bin/mlskp.js"), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        MLSKP_USE_SOURCE: "1",
        MLSKP_KEYSTORE_KEY: "",
        MLSKP_ENROLLMENT_SECRET: "",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe("mlskp pool", () => {
  let dir = "";
  let keystore = "";
  let url = "";
  let stop = async (): Promise<void> => undefined;
  const key = DatabaseKey.generate();
  const keyHex = Buffer.from(key.bytes()).toString("hex");
  const clientId = ClientId.parse("5b0c8f7e-2d1a-4c3b-9e8f-7a6b5c4d3e2f:c11@example.com");

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mlskp-pool-cli-"));
    keystore = join(dir, "device.keystore");
    writeFileSync(join(dir, "secret"), `${SECRET}\n`);
    writeFileSync(join(dir, "key.hex"), `${keyHex}\n`);
    const cc = await CoreCrypto.open(await Database.open(keystore, key));
    await cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE1, clientId)));
    await cc.close();
    const s = await spawnCli(["--db", ":memory:"], { MLSKP_ENROLLMENT_SECRET: SECRET });
    url = s.url;
    stop = s.stop;
  }, 120_000);

  afterAll(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("exit codes: 2 usage, 5 keystore, 4 refused by the DS, 3 DS unreachable", async () => {
    const k = { MLSKP_KEYSTORE_KEY: keyHex };
    const [noKey, noDs, wrongKey, missing, unregistered, badSecret, down] = await Promise.all([
      mlskp(["pool", "status", "--keystore", keystore, "--ds", url]),
      mlskp(["pool", "sync", "--keystore", keystore], k),
      mlskp(["pool", "status", "--keystore", keystore, "--ds", url], { MLSKP_KEYSTORE_KEY: "11".repeat(32) }),
      mlskp(["pool", "status", "--keystore", join(dir, "nope"), "--ds", url], k),
      mlskp(["pool", "sync", "--keystore", keystore, "--ds", url], k),
      mlskp(["pool", "sync", "--keystore", keystore, "--ds", url, "--register"], {
        ...k,
        MLSKP_ENROLLMENT_SECRET: "not-the-secret-at-all",
      }),
      mlskp(["pool", "sync", "--keystore", keystore, "--ds", "http://127.0.0.1:9", "--register"], k),
    ]);
    expect(noKey.status).toBe(2);
    expect(noKey.stderr).toMatch(/MLSKP_KEYSTORE_KEY/);
    expect(noDs.status).toBe(2);
    expect(noDs.stderr).toMatch(/--ds/);
    expect(wrongKey.status).toBe(5);
    expect(missing.status).toBe(5);
    expect(missing.stderr).toMatch(/no keystore/);
    expect(unregistered.status).toBe(4);
    expect(unregistered.stderr).toMatch(/--register/);
    expect(badSecret.status).toBe(4);
    expect(badSecret.stderr).toMatch(/enrollment/);
    expect(down.status).toBe(3);
  }, 400_000);

  it("registers on first sync, fills the pool, then syncs idempotently and reports status", async () => {
    const first = await mlskp([
      "pool",
      "sync",
      "--keystore",
      keystore,
      "--ds",
      url,
      "--key-file",
      join(dir, "key.hex"),
      "--register",
      "--enrollment-secret-file",
      join(dir, "secret"),
      "--json",
    ]);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    const r1 = JSON.parse(first.stdout) as Record<string, unknown>;
    expect(r1).toMatchObject({ generated: 101, uploaded: 101, lastResort: "created", dsCountAtHorizon: 100 });

    // The account is in the keystore now: no --register needed, nothing to do.
    const second = await mlskp(["pool", "sync", "--keystore", keystore, "--ds", url, "--json"], {
      MLSKP_KEYSTORE_KEY: keyHex,
    });
    expect(second.status).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ generated: 0, uploaded: 0, deletedOnDs: 0 });

    const status = await mlskp(["pool", "status", "--keystore", keystore, "--ds", url, "--json"], {
      MLSKP_KEYSTORE_KEY: keyHex,
    });
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      credential: { clientId: clientId.toString(), ciphersuite: SUITE1 },
      dsCount: 100,
      dsLastResort: 1,
      belowLowWater: false,
    });
    const human = await mlskp(["pool", "status", "--keystore", keystore, "--ds", url], {
      MLSKP_KEYSTORE_KEY: keyHex,
    });
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/on the DS\s+100 valid now/);
  }, 400_000);
});
