/** RFC 9420 §5.3.1: the default authentication service. */
import { describe, expect, it } from "vitest";
import { defaultAuthenticationService, type AuthenticationInput } from "../../../src/mls/credential/index.js";

const input = (credential: AuthenticationInput["credential"]): AuthenticationInput => ({
  credential,
  signatureKey: new Uint8Array(32),
  ciphersuite: 1,
  context: "keypackage",
});

describe("defaultAuthenticationService", () => {
  it("accepts a Basic credential with an identity and an X.509 chain with a certificate", async () => {
    expect(
      await defaultAuthenticationService.validate(
        input({ credentialType: 1, identity: Uint8Array.of(0x61) }),
      ),
    ).toEqual({
      ok: true,
    });
    expect(
      await defaultAuthenticationService.validate(
        input({ credentialType: 2, certificates: [Uint8Array.of(0x30)] }),
      ),
    ).toEqual({ ok: true });
  });

  it("refuses an empty Basic identity and an empty X.509 chain, with a reason", async () => {
    const basic = await defaultAuthenticationService.validate(
      input({ credentialType: 1, identity: new Uint8Array(0) }),
    );
    expect(basic.ok).toBe(false);
    expect(basic.ok ? "" : basic.reason).toMatch(/empty Basic/);
    const x509 = await defaultAuthenticationService.validate(input({ credentialType: 2, certificates: [] }));
    expect(x509.ok).toBe(false);
    expect(x509.ok ? "" : x509.reason).toMatch(/X\.509/);
  });
});
