import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("npm start (examples/main.ts)", () => {
  it("runs the whole lifecycle and shows the package consumed exactly once", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "examples/main.ts"], {
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, CI: "true" },
    });
    expect(out).toContain("DS: 100 regular + 1 last resort");
    expect(out).toMatch(/Alice's keystore: 101 → 100 valid packages/);
    expect(out).toContain("the same Welcome again → OrphanWelcome");
    expect(out).toContain('Bob → Alice: "Hello Alice!"');
    expect(out).toContain('Alice → Bob: "Hi Bob, got your Welcome."');
    expect(out).toContain("DS refused it: HTTP 422, rule lifetime_expired");
  }, 150_000);

  it("the quickstart example runs", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "examples/quickstart.ts"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(out).toContain("valid key packages: 8");
    expect(out).toContain("after pruning expired ones: 5 valid");
  }, 90_000);
});
