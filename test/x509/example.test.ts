import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

describe("npm start -- --x509 (examples/main.ts)", () => {
  it("runs the lifecycle with X.509 credentials: identities verified, renewal as a rotation", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "examples/main.ts", "--x509"],
      {
        encoding: "utf8",
        timeout: 240_000,
        env: { ...process.env, CI: "true" },
      },
    );
    expect(stdout).toContain("(X.509 credentials from a development CA)");
    expect(stdout).toContain("DS: 100 regular + 1 last resort");
    expect(stdout).toContain('Bob → Alice: "Hello Alice!"');
    expect(stdout).toMatch(
      /Bob sees Alice as "Alice" \(wireapp:\/\/%40alice@example\.com\), certificate Valid, serial [0-9a-f]+; conversation Verified/,
    );
    expect(stdout).toContain(
      "Alice's certificate is renewed (new key, new certificate): a credential rotation",
    );
    expect(stdout).toContain(
      'the in-flight Welcome (old key\'s package) still works: joined "demo-conversation-2"',
    );
    expect(stdout).toContain("DS refused it: HTTP 422, rule lifetime_expired");
  }, 300_000);
});
