/**
 * X.509 in real headless Chromium (WebCrypto, no Node module): development CA, validation
 * statuses, an X.509 credential, its key package and the identity of a conversation member.
 */
import { describe, expect, test } from "vitest";
import { withBrowserPage } from "../browser/harness.js";

describe("X.509 in headless Chromium", () => {
  test("Ed25519, P-256, P-384 and P-521 device certificates: validation, credential, identity", async () => {
    const results = await withBrowserPage("test/x509/x509-entry.ts", async (page) => {
      const out: Record<number, Record<string, string>> = {};
      for (const suite of [1, 2, 7, 5]) {
        out[suite] = await page.evaluate(
          (s) =>
            (
              globalThis as unknown as { x509Test: { run(s: number): Promise<Record<string, string>> } }
            ).x509Test.run(s),
          suite,
        );
      }
      return out;
    });
    for (const suite of [1, 2, 7, 5]) {
      expect(results[suite], `suite ${suite}`).toEqual({
        valid: "valid",
        expired: "expired",
        revoked: "revoked",
        unknownRoot: "invalid",
        clientId: "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.example",
        capped: "true",
        identity: "Valid wireapp://%40alice@wire.example Alice",
        state: "Verified",
      });
    }
  }, 180_000);
});
