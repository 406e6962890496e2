import { describe, expect, it } from "vitest";
import { defaultCryptoProvider } from "ts-mls";
import { getCryptoProvider, useCryptoProvider, webCryptoProvider } from "../../src/index.js";
import { memorySession, withCredential } from "../helpers/session.js";

describe("crypto provider override", () => {
  it("useCryptoProvider switches every operation and undefined restores the default", async () => {
    const before = getCryptoProvider();
    try {
      for (const provider of [webCryptoProvider, defaultCryptoProvider]) {
        useCryptoProvider(provider);
        expect(getCryptoProvider()).toBe(provider);
        const { cc, clock } = await memorySession();
        const cred = await withCredential(cc);
        const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
        await kp.verify({ now: clock.now() });
      }
    } finally {
      useCryptoProvider(undefined);
    }
    expect(getCryptoProvider()).toBe(before);
  });
});
