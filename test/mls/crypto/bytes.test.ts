import { describe, expect, test } from "vitest";
import { p256, p521 } from "@noble/curves/nist.js";
import {
  bytesToHex,
  compareBytes,
  concatBytes,
  constantTimeEqual,
  derToP1363,
  edSeed,
  fromBase64,
  fromBase64Url,
  hexToBytes,
  i2osp,
  leftPad,
  p1363ToDer,
  parseSec1PrivateKey,
  toBase64,
  toBase64Url,
  unwrapPkcs8,
  wrapPkcs8,
} from "../../../src/mls/crypto/bytes.js";
import { LruCache } from "../../../src/mls/crypto/lru.js";

const rand = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));

describe("bytes helpers", () => {
  test("base64 (padded) and hex match Buffer for every length 0..70", () => {
    for (let n = 0; n <= 70; n++) {
      const b = rand(n);
      expect(toBase64(b)).toBe(Buffer.from(b).toString("base64"));
      expect(bytesToHex(fromBase64(toBase64(b)))).toBe(bytesToHex(b));
      expect(bytesToHex(b)).toBe(Buffer.from(b).toString("hex"));
      expect(hexToBytes(bytesToHex(b).toUpperCase())).toEqual(b);
    }
    expect(() => hexToBytes("abc")).toThrow(TypeError);
    expect(() => hexToBytes("zz")).toThrow(TypeError);
  });
  test("base64url matches Buffer for every length 0..70", () => {
    for (let n = 0; n <= 70; n++) {
      const b = rand(n);
      const s = toBase64Url(b);
      expect(s).toBe(Buffer.from(b).toString("base64url"));
      expect(bytesToHex(fromBase64Url(s))).toBe(bytesToHex(b));
      expect(bytesToHex(fromBase64Url(Buffer.from(b).toString("base64")))).toBe(bytesToHex(b));
    }
    expect(() => fromBase64Url("a$b")).toThrow();
  });

  test("hex, i2osp, concat, compare, pad", () => {
    expect(bytesToHex(hexToBytes("00ff10"))).toBe("00ff10");
    expect(() => hexToBytes("abc")).toThrow();
    expect(bytesToHex(i2osp(258, 2))).toBe("0102");
    expect(() => i2osp(256, 1)).toThrow();
    expect(bytesToHex(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)))).toBe("010203");
    expect(compareBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(-1);
    expect(compareBytes(Uint8Array.of(2, 0), Uint8Array.of(1, 3))).toBe(1);
    expect(bytesToHex(leftPad(Uint8Array.of(5), 3))).toBe("000005");
    expect(bytesToHex(leftPad(Uint8Array.of(0, 0, 5), 2))).toBe("0005");
    expect(() => leftPad(Uint8Array.of(1, 0, 5), 2)).toThrow();
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(constantTimeEqual(Uint8Array.of(1), Uint8Array.of(1, 3))).toBe(false);
  });

  test("PKCS#8 wrapping matches node:crypto's own encoding", async () => {
    const { generateKeyPairSync } = await import("node:crypto");
    for (const [alg, type, n] of [
      ["Ed25519", "ed25519", 32],
      ["Ed448", "ed448", 57],
      ["X25519", "x25519", 32],
      ["X448", "x448", 56],
    ] as const) {
      // generateKeyPairSync with encodings exports inside the key-generation job (no KeyObject export).
      const { privateKey } = generateKeyPairSync(type as "ed25519", {
        privateKeyEncoding: { type: "pkcs8", format: "der" },
        publicKeyEncoding: { type: "spki", format: "der" },
      });
      const der = new Uint8Array(privateKey);
      expect(bytesToHex(wrapPkcs8(alg, der.subarray(der.length - n)))).toBe(bytesToHex(der));
      expect(bytesToHex(unwrapPkcs8(alg, der, n) ?? new Uint8Array(0))).toBe(
        bytesToHex(der.subarray(der.length - n)),
      );
      // Another length, another algorithm's OID, or extra bytes: not this minimal form.
      expect(unwrapPkcs8(alg, der, n + 1)).toBeUndefined();
      expect(unwrapPkcs8(alg === "X25519" ? "Ed25519" : "X25519", der, n)).toBeUndefined();
      expect(unwrapPkcs8(alg, concatBytes(der, Uint8Array.of(0)), n)).toBeUndefined();
      if (alg === "Ed25519" || alg === "Ed448")
        expect(bytesToHex(edSeed(alg, der))).toBe(bytesToHex(der.subarray(der.length - n)));
    }
    expect(() => edSeed("Ed25519", new Uint8Array(48))).toThrow();
  });

  test("ECDSA DER <-> P1363 agrees with @noble/curves and is strict", () => {
    for (const [curve, n] of [
      [p256, 32],
      [p521, 66],
    ] as const) {
      for (let i = 0; i < 20; i++) {
        const sk = curve.utils.randomSecretKey();
        const msg = rand(20);
        const der = curve.sign(msg, sk, { format: "der", lowS: false });
        const raw = derToP1363(der, n);
        expect(raw).toBeDefined();
        expect(bytesToHex(raw!)).toBe(bytesToHex(curve.Signature.fromBytes(der, "der").toBytes("compact")));
        expect(bytesToHex(p1363ToDer(raw!))).toBe(bytesToHex(der));
      }
    }
    const good = p1363ToDer(
      concatBytes(new Uint8Array(31).fill(0), Uint8Array.of(0x80), new Uint8Array(32).fill(1)),
    );
    expect(bytesToHex(good.subarray(0, 6))).toBe("302602020080");
    expect(derToP1363(good, 32)).toBeDefined();
    expect(derToP1363(concatBytes(good, Uint8Array.of(0)), 32)).toBeUndefined(); // trailing data
    expect(derToP1363(hexToBytes("3006020200010201 01".replace(" ", "")), 32)).toBeUndefined(); // non-minimal INTEGER
    expect(derToP1363(hexToBytes("30060201800201 01".replace(" ", "")), 32)).toBeUndefined(); // negative INTEGER
    expect(derToP1363(hexToBytes("3081060201010201 01".replace(" ", "")), 32)).toBeUndefined(); // non-minimal length
    expect(derToP1363(new Uint8Array(0), 32)).toBeUndefined();
  });
});

describe("SEC1 ECPrivateKey parsing", () => {
  test("extracts the scalar and point node:crypto exports, for every NIST curve", async () => {
    const { createPrivateKey, createECDH } = await import("node:crypto");
    for (const [crv, ossl, n] of [
      ["P-256", "prime256v1", 32],
      ["P-384", "secp384r1", 48],
      ["P-521", "secp521r1", 66],
    ] as const) {
      for (let i = 0; i < 5; i++) {
        const e = createECDH(ossl);
        e.generateKeys();
        const d = leftPad(new Uint8Array(e.getPrivateKey()), n);
        const pub = new Uint8Array(e.getPublicKey());
        const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64url");
        const key = createPrivateKey({
          key: { kty: "EC", crv, d: b64(d), x: b64(pub.subarray(1, 1 + n)), y: b64(pub.subarray(1 + n)) },
          format: "jwk",
        });
        const parsed = parseSec1PrivateKey(new Uint8Array(key.export({ type: "sec1", format: "der" })));
        expect(bytesToHex(leftPad(parsed.d, n))).toBe(bytesToHex(d));
        expect(bytesToHex(parsed.pub!)).toBe(bytesToHex(pub));
      }
    }
    expect(() => parseSec1PrivateKey(Uint8Array.of(0x31, 0))).toThrow();
    expect(() => parseSec1PrivateKey(Uint8Array.of(0x30, 5, 2, 1, 1))).toThrow();
  });
});

describe("LruCache", () => {
  test("evicts the least recently used entry", () => {
    const c = new LruCache<number>(2);
    c.set("a", 1);
    c.set("b", 2);
    expect(c.get("a")).toBe(1);
    c.set("c", 3);
    expect(c.get("b")).toBeUndefined();
    expect(c.get("a")).toBe(1);
    expect(c.get("c")).toBe(3);
    expect(c.size).toBe(2);
    c.delete("a");
    expect(c.peek("a")).toBeUndefined();
    c.clear();
    expect(c.size).toBe(0);
  });
});
