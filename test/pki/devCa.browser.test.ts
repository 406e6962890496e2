/**
 * The development CA (src/pki/devCa.ts) is browser-safe: in headless Chromium it issues device
 * certificates for every leaf key algorithm under P-256 and Ed25519 CAs, and the chains validate
 * (validateCertificateChain) on the page's WebCrypto; expired and revoked ones are reported so.
 */
import { describe, expect, it } from "vitest";
import { withBrowserPage } from "../browser/harness.js";

describe("development CA in a browser", () => {
  it("issues and validates chains with the page's WebCrypto", async () => {
    const result = await withBrowserPage("test/pki/devCa-entry.ts", (page) =>
      page.evaluate(() =>
        (globalThis as unknown as { devCaTest: { run(): Promise<Record<string, string>> } }).devCaTest.run(),
      ),
    );
    const id = "0d8d0b6c-3a2b-4c1d-9e8f-7a6b5c4d3e2f:9ff0457928ebe5f4@wire.example";
    for (const ca of ["P-256", "Ed25519"]) {
      expect(result[`${ca}/Ed25519`]).toBe(`valid ${id} 32`);
      expect(result[`${ca}/P-256`]).toBe(`valid ${id} 32`);
      expect(result[`${ca}/P-384`]).toBe(`valid ${id} 48`);
      expect(result[`${ca}/P-521`]).toBe(`valid ${id} 66`);
      expect(result[`${ca}/expired`]).toBe("expired");
      expect(result[`${ca}/revoked`]).toBe("revoked");
    }
  }, 120_000);
});
