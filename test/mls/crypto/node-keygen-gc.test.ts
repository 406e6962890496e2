/**
 * Regression guard for a Node 20 deadlock: JWK-exporting a KeyObject made by
 * generateKeyPairSync while the GC finalizes its KeyGenJob self-deadlocks on
 * the key's mutex. Our provider never does that; this runs a GC-heavy child
 * process and fails if it hangs.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

test("node provider key generation survives heavy GC (no KeyGenJob/JWK deadlock)", () => {
  const script = fileURLToPath(new URL("./fixtures/keygen-stress.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--max-semi-space-size=1", "--import", "tsx", script, "4000"], {
    encoding: "utf8",
    timeout: 45_000,
    killSignal: "SIGKILL",
  });
  expect(r.error, "child process timed out (deadlock?)").toBeUndefined();
  expect(r.stderr).toBe("");
  expect(r.stdout.trim()).toBe("ok 4000 64");
}, 60_000);
