/**
 * Without `mls-keypackages/x509` (src/pki/index.ts) imported, X.509 features fail with the typed
 * `X509SupportNotLoaded` error, Basic credentials work, and importing the subpath registers the
 * backend. This file must not import src/pki/index.ts (nor test/x509/helpers.ts) statically.
 */
import { describe, expect, it } from "vitest";
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  ErrorCode,
  MlsKeypackagesError,
} from "../../src/index.js";
import { CredentialTypes } from "../../src/mls/credential/types.js";
import { x509BackendOrUndefined } from "../../src/pki/backend.js";
import { x509AuthenticationService } from "../../src/pki/authentication.js";
// The development CA module alone does not register the backend (only src/pki/index.ts does).
import { createDevCa, devKeyAlgorithmFor } from "../../src/pki/devCa.js";

const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const CLIENT = "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.example";
const MESSAGE = 'X.509 support is not loaded: import "mls-keypackages/x509" once (it registers itself)';

function expectNotLoaded(f: () => unknown): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(MlsKeypackagesError.is(caught)).toBe(true);
  expect((caught as MlsKeypackagesError).code).toBe(ErrorCode.X509SupportNotLoaded);
  expect((caught as Error).message).toBe(MESSAGE);
}

describe("X.509 support not loaded (mls-keypackages/x509 not imported)", () => {
  it("refuses X.509 uses with X509SupportNotLoaded, keeps Basic working, and registers on import", async () => {
    expect(x509BackendOrUndefined()).toBeUndefined();
    const ca = await createDevCa({ algorithm: "Ed25519" });
    const dev = await ca.issueDevice({
      clientId: ClientId.parse(CLIENT),
      handle: "alice",
      displayName: "Alice",
      algorithm: devKeyAlgorithmFor(SUITE),
    });
    const input = { certificateChain: dev.chainPem, privateKey: dev.privateKeyPem as string };
    expectNotLoaded(() => Credential.x509(SUITE, input));

    const cc = await CoreCrypto.open(await Database.inMemory());
    await expect(cc.pki.addTrustAnchor(ca.root.pem)).rejects.toMatchObject({
      code: ErrorCode.X509SupportNotLoaded,
    });
    // Basic credentials and key packages need no X.509 code.
    const ref = await cc.transaction((tx) =>
      tx.addCredential(Credential.basic(SUITE, ClientId.parse(CLIENT))),
    );
    const kp = await cc.transaction((tx) => tx.generateKeypackage(ref));
    expect(kp.clientId()?.toString()).toBe(CLIENT);

    // The authentication service: an X.509 credential is refused when enforcing, handed to the
    // application's service when not (x509Policy.enforce false).
    const seen: string[] = [];
    const inner = {
      validate: () => {
        seen.push("inner");
        return { ok: true as const };
      },
    };
    const authInput = {
      credential: { credentialType: CredentialTypes.x509, certificates: dev.chain },
      signatureKey: new Uint8Array(32),
      ciphersuite: SUITE,
      context: "keypackage" as const,
    };
    const trust = () => Promise.resolve({ anchors: [ca.root.der] });
    const now = () => new Date();
    await expect(x509AuthenticationService(inner, trust, now).validate(authInput)).rejects.toMatchObject({
      code: ErrorCode.X509SupportNotLoaded,
    });
    expect(seen).toEqual([]);
    await expect(
      x509AuthenticationService(inner, trust, now, { enforce: false }).validate(authInput),
    ).resolves.toEqual({ ok: true });
    expect(seen).toEqual(["inner"]);

    // Importing the subpath registers the backend: the same input now makes a credential.
    await import("../../src/pki/index.js");
    expect(x509BackendOrUndefined()).toBeDefined();
    const credential = Credential.x509(SUITE, input);
    expect(credential.clientId.toString()).toBe(CLIENT);
    await cc.close();
  });
});
