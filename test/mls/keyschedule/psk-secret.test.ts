/** psk_secret.json (RFC 9420 §8.4) through our psk_secret (src/mls/keyschedule/psk.ts). */
import { expect } from "vitest";
import { pskSecret } from "../../../src/mls/keyschedule/psk.js";
import { PskTypes } from "../../../src/mls/keyschedule/types.js";
import { PROVIDERS, bytesToHex, hex, vectorTests } from "../../vectors/helpers.js";

interface PskSecretVector {
  cipher_suite: number;
  psks: { psk_id: string; psk: string; psk_nonce: string }[];
  psk_secret: string;
}

vectorTests<PskSecretVector>("psk_secret.json", PROVIDERS, async (v, cs) => {
  const psks = v.psks.map((p) => ({
    id: { pskType: PskTypes.external, pskId: hex(p.psk_id), pskNonce: hex(p.psk_nonce) },
    psk: hex(p.psk),
  }));
  expect(bytesToHex(await pskSecret(cs, psks))).toBe(v.psk_secret);
});
