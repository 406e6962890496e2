import { afterEach, describe, expect, test } from "vitest";
import { defaultCryptoProvider, type CryptoProvider } from "ts-mls";
import {
  ciphersuiteImpl,
  ciphersuiteName,
  defaultProvider,
  getCryptoProvider,
  isNodeRuntime,
  selectCryptoProvider,
  setCryptoProvider,
} from "../../../src/mls/crypto/index.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";

afterEach(() => setCryptoProvider(undefined));

describe("provider selection", () => {
  test("selects the node:crypto provider under Node", async () => {
    expect(isNodeRuntime()).toBe(true);
    expect(await selectCryptoProvider()).toBe(nodeCryptoProvider);
    expect(await selectCryptoProvider()).toBe(await selectCryptoProvider());
  });

  test("defaultProvider() resolves lazily and honours the override", async () => {
    const cs = {
      hash: "SHA-256",
      hpke: { kem: "DHKEM-X25519-HKDF-SHA256", aead: "AES128GCM", kdf: "HKDF-SHA256" },
      signature: "Ed25519",
      name: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
    } as const;
    const viaDefault = await defaultProvider().getCiphersuiteImpl(cs);
    expect(viaDefault).toBe(await nodeCryptoProvider.getCiphersuiteImpl(cs));
    let calls = 0;
    const spy: CryptoProvider = {
      getCiphersuiteImpl(c) {
        calls++;
        return defaultCryptoProvider.getCiphersuiteImpl(c);
      },
    };
    setCryptoProvider(spy);
    expect(getCryptoProvider()).toBe(spy);
    await defaultProvider().getCiphersuiteImpl(cs);
    expect(calls).toBe(1);
    setCryptoProvider(undefined);
    expect(getCryptoProvider()).not.toBe(spy);
  });

  test("ciphersuiteImpl caches per (provider, suite)", async () => {
    const a = await ciphersuiteImpl(1, nodeCryptoProvider);
    expect(await ciphersuiteImpl(1, nodeCryptoProvider)).toBe(a);
    expect(a.name).toBe("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519");
    const b = await ciphersuiteImpl(7, nodeCryptoProvider);
    expect(b.name).toBe(ciphersuiteName(7));
    expect(ciphersuiteImpl(1, nodeCryptoProvider)).toBe(ciphersuiteImpl(1, nodeCryptoProvider));
    await expect(ciphersuiteImpl(9999, nodeCryptoProvider)).rejects.toThrow(/unknown/);
    expect(() => ciphersuiteName(0)).toThrow();
    // ML-KEM suites are outside RFC 9420's 1..7 and not implemented by our providers.
    await expect(ciphersuiteImpl(77, nodeCryptoProvider)).rejects.toThrow(/unsupported/);
  });
});
