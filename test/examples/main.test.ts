import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// Async: a blocking child would starve the test worker's RPC with vitest (its "onTaskUpdate" timeout).
const run = async (file: string, timeout: number, env: NodeJS.ProcessEnv = process.env): Promise<string> =>
  (await promisify(execFile)(process.execPath, ["--import", "tsx", file], { encoding: "utf8", timeout, env }))
    .stdout;

describe("npm start (examples/main.ts)", () => {
  it("runs the whole lifecycle and shows the package consumed exactly once", async () => {
    const out = await run("examples/main.ts", 240_000, { ...process.env, CI: "true" });
    expect(out).toContain("DS: 100 regular + 1 last resort");
    expect(out).toMatch(/Alice's keystore: 101 → 100 valid packages/);
    expect(out).toContain("the same Welcome again → OrphanWelcome");
    expect(out).toContain('Bob → Alice: "Hello Alice!"');
    expect(out).toContain('Alice → Bob: "Hi Bob, got your Welcome."');
    expect(out).toContain("DS refused it: HTTP 422, rule lifetime_expired");
    // The pool: one sync fills it, the Welcome is noticed, a rotation swaps everything at once.
    expect(out).toMatch(/generated 101, uploaded 101, deleted on the DS 0, last resort created/);
    expect(out).toMatch(/the pool saw 1 package consumed; sync: generated 0, uploaded 0/);
    expect(out).toMatch(
      /\{"count":98,"lastResort":1\} \(old key\) → \{"count":100,"lastResort":1\} \(new key\)/,
    );
    expect(out).toContain(
      'the in-flight Welcome (old key\'s package) still works: joined "demo-conversation-2"',
    );
  }, 300_000);

  it("the quickstart example runs", async () => {
    const out = await run("examples/quickstart.ts", 120_000);
    expect(out).toContain("valid key packages: 8");
    expect(out).toContain("after pruning expired ones: 5 valid");
  }, 150_000);
});
