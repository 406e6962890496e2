import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Device, PG_URL, ROOT, SECRET, dropSchema, http, spawnCli, uniqueSchema } from "./helpers.js";

describe("mlskp serve", () => {
  it("refuses to start without an enrollment secret outside --dev", () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "bin/mlskp.js"), "serve", "--db", ":memory:", "--port", "0"],
      {
        env: { ...process.env, MLSKP_USE_SOURCE: "1", MLSKP_ENROLLMENT_SECRET: "" },
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/MLSKP_ENROLLMENT_SECRET/);
  });

  it("rejects bad options", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "bin/mlskp.js"), "serve", "--ciphersuites", "1,99"], {
      env: { ...process.env, MLSKP_USE_SOURCE: "1" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ciphersuites/);
  });

  it("serves PostgreSQL with the secret from a file, and stops cleanly on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-cli-"));
    const schema = uniqueSchema("cli");
    let stop = async (): Promise<void> => undefined;
    try {
      writeFileSync(join(dir, "secret"), `${SECRET}\n`);
      const s = await spawnCli([
        "--db",
        PG_URL,
        "--pg-schema",
        schema,
        "--enrollment-secret-file",
        join(dir, "secret"),
      ]);
      stop = s.stop;
      expect(await http(s.url, "GET", "/healthz")).toEqual({
        status: 200,
        json: { status: "ok", store: "postgres" },
      });
      const d = await Device.create();
      await expect(d.register(s.url, null)).rejects.toMatchObject({ status: 401 });
      const ds = await d.register(s.url, SECRET);
      await ds.upload(await d.generate(1));
      expect(await ds.count(1)).toEqual({ count: 1, lastResort: 0 });
      const exited = new Promise<number | null>((resolve) => s.proc.once("exit", (code) => resolve(code)));
      s.proc.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      await stop();
      rmSync(dir, { recursive: true, force: true });
      await dropSchema(schema);
    }
  });

  it("serves SQLite in dev mode with the secret from the environment ignored", async () => {
    const s = await spawnCli(["--db", ":memory:", "--dev"], { MLSKP_ENROLLMENT_SECRET: SECRET });
    try {
      expect((await http(s.url, "GET", "/healthz")).json).toEqual({ status: "ok", store: "sqlite" });
      const ds = await (await Device.create()).register(s.url, null);
      expect(ds.token).toMatch(/^mlskp_/);
    } finally {
      await s.stop();
    }
  });
});
