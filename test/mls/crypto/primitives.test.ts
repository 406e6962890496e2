/**
 * Direct primitive tests for every RFC 9420 suite (1..7): each of our
 * providers against ts-mls's own default (WebCrypto + @hpke) and noble
 * providers, in both directions, plus key interchange between our providers.
 */
import { describe, expect, test } from "vitest";
import {
  defaultCryptoProvider,
  nobleCryptoProvider,
  type CiphersuiteImpl,
  type CryptoProvider,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { bytesToHex, leftPad, utf8 } from "../../../src/mls/crypto/bytes.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { createWebCryptoProvider, webCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";

const SUITES = [1, 2, 3, 4, 5, 6, 7] as const;
const OURS: ReadonlyArray<readonly [string, CryptoProvider]> = [
  ["node", nodeCryptoProvider],
  ["webcrypto", webCryptoProvider],
  ["webcrypto-noble", createWebCryptoProvider({ nativeEd25519: false, nativeX25519: false })],
];
const REFS: ReadonlyArray<readonly [string, CryptoProvider]> = [
  ["ts-mls default", defaultCryptoProvider],
  ["ts-mls noble", nobleCryptoProvider],
];
const NSK: Record<number, number> = { 1: 32, 2: 32, 3: 32, 4: 56, 5: 66, 6: 56, 7: 48 };

const impl = (p: CryptoProvider, suite: number): Promise<CiphersuiteImpl> =>
  p.getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId));
const rand = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
const hx = bytesToHex;

const matrix = OURS.flatMap(([o, op]) =>
  REFS.flatMap(([r, rp]) => SUITES.map((s) => [`${o} vs ${r}`, s, op, rp] as const)),
);

describe.each(matrix)("%s, suite %i", (_label, suite, ourP, refP) => {
  test("hash, HMAC and HKDF agree", async () => {
    const [ours, ref] = await Promise.all([impl(ourP, suite), impl(refP, suite)]);
    for (const len of [0, 1, 55, 64, 1000]) {
      const data = rand(len);
      expect(hx(await ours.hash.digest(data))).toBe(hx(await ref.hash.digest(data)));
      // (ts-mls's default provider cannot HMAC with an empty key; see the empty-key test below)
      const key = rand(1 + (len % 97));
      const mac = await ours.hash.mac(key, data);
      expect(hx(mac)).toBe(hx(await ref.hash.mac(key, data)));
      expect(await ours.hash.verifyMac(key, mac, data)).toBe(true);
      expect(await ours.hash.verifyMac(key, mac.subarray(1), data)).toBe(false);
      mac[0]! ^= 1;
      expect(await ours.hash.verifyMac(key, mac, data)).toBe(false);
    }
    expect(ours.kdf.size).toBe(ref.kdf.size);
    for (const salt of [new Uint8Array(0), rand(ours.kdf.size)]) {
      const ikm = rand(48);
      const prk = await ours.kdf.extract(salt, ikm);
      expect(hx(prk)).toBe(hx(await ref.kdf.extract(salt, ikm)));
      for (const len of [1, 16, ours.kdf.size, 3 * ours.kdf.size + 5]) {
        const info = rand(len);
        expect(hx(await ours.kdf.expand(prk, info, len))).toBe(hx(await ref.kdf.expand(prk, info, len)));
      }
    }
    await expect(ours.kdf.expand(rand(32), new Uint8Array(0), 255 * ours.kdf.size + 1)).rejects.toThrow();
  });

  test("signatures interoperate in both directions", async () => {
    const [ours, ref] = await Promise.all([impl(ourP, suite), impl(refP, suite)]);
    const msg = rand(200);

    const mine = await ours.signature.keygen();
    const sig = await ours.signature.sign(mine.signKey, msg);
    expect(await ref.signature.verify(mine.publicKey, msg, sig)).toBe(true);
    expect(await ours.signature.verify(mine.publicKey, msg, sig)).toBe(true);
    expect(await ours.signature.verify(mine.publicKey, rand(200), sig)).toBe(false);

    // ts-mls's default provider emits 48-byte PKCS#8 Ed25519 keys; ours must sign with those.
    const theirs = await ref.signature.keygen();
    const sig2 = await ours.signature.sign(theirs.signKey, msg);
    expect(await ref.signature.verify(theirs.publicKey, msg, sig2)).toBe(true);
    const sig3 = await ref.signature.sign(theirs.signKey, msg);
    expect(await ours.signature.verify(theirs.publicKey, msg, sig3)).toBe(true);
    if (suite === 1 || suite === 3 || suite === 4 || suite === 6) expect(hx(sig2)).toBe(hx(sig3)); // RFC 8032 is deterministic

    // The reference verifies signatures made with our key through its own key format.
    expect(await ref.signature.verify(mine.publicKey, msg, await ref.signature.sign(mine.signKey, msg))).toBe(
      true,
    );

    // Garbage is rejected, never thrown.
    expect(await ours.signature.verify(mine.publicKey, msg, rand(sig.length))).toBe(false);
    expect(await ours.signature.verify(rand(mine.publicKey.length), msg, sig)).toBe(false);
    expect(await ours.signature.verify(new Uint8Array(0), msg, sig)).toBe(false);
    expect(await ours.signature.verify(mine.publicKey, msg, new Uint8Array(0))).toBe(false);
  });

  test("HPKE seal/open and secret export interoperate in both directions", async () => {
    const [ours, ref] = await Promise.all([impl(ourP, suite), impl(refP, suite)]);
    expect(ours.hpke.keyLength).toBe(ref.hpke.keyLength);
    expect(ours.hpke.nonceLength).toBe(ref.hpke.nonceLength);
    const info = rand(20);
    const aad = rand(7);
    const pt = rand(100);

    // our key pair, their sender
    const mine = await ours.hpke.generateKeyPair();
    const minePub = await ours.hpke.exportPublicKey(mine.publicKey);
    const minePriv = await ours.hpke.exportPrivateKey(mine.privateKey);
    expect(minePriv.length).toBe(NSK[suite]);
    const c1 = await ref.hpke.seal(await ref.hpke.importPublicKey(minePub), pt, info, aad);
    expect(hx(await ours.hpke.open(mine.privateKey, c1.enc, c1.ct, info, aad))).toBe(hx(pt));
    expect(
      hx(await ours.hpke.open(await ours.hpke.importPrivateKey(minePriv), c1.enc, c1.ct, info, aad)),
    ).toBe(hx(pt));
    await expect(ours.hpke.open(mine.privateKey, c1.enc, c1.ct, info, rand(7))).rejects.toThrow();
    const e1 = await ref.hpke.exportSecret(await ref.hpke.importPublicKey(minePub), utf8("ctx"), 42, info);
    expect(hx(await ours.hpke.importSecret(mine.privateKey, utf8("ctx"), e1.enc, 42, info))).toBe(
      hx(e1.secret),
    );

    // their key pair, our sender
    const theirs = await ref.hpke.generateKeyPair();
    const theirPub = await ours.hpke.importPublicKey(await ref.hpke.exportPublicKey(theirs.publicKey));
    const c2 = await ours.hpke.seal(theirPub, pt, info, aad);
    expect(hx(await ref.hpke.open(theirs.privateKey, c2.enc, c2.ct, info, aad))).toBe(hx(pt));
    const c3 = await ours.hpke.seal(theirPub, pt, info); // no aad
    expect(hx(await ref.hpke.open(theirs.privateKey, c3.enc, c3.ct, info))).toBe(hx(pt));
    const e2 = await ours.hpke.exportSecret(theirPub, utf8("ctx"), 17, info);
    expect(hx(await ref.hpke.importSecret(theirs.privateKey, utf8("ctx"), e2.enc, 17, info))).toBe(
      hx(e2.secret),
    );
    // their private key imported into ours
    const theirPriv = await ours.hpke.importPrivateKey(await ref.hpke.exportPrivateKey(theirs.privateKey));
    expect(hx(await ours.hpke.open(theirPriv, c2.enc, c2.ct, info, aad))).toBe(hx(pt));

    // DeriveKeyPair (RFC 9180 Section 7.1.3) agrees, including the P-curve rejection sampling.
    for (let i = 0; i < 3; i++) {
      const ikm = rand(ours.kdf.size);
      const a = await ours.hpke.deriveKeyPair(ikm);
      const b = await ref.hpke.deriveKeyPair(ikm);
      expect(hx(await ours.hpke.exportPublicKey(a.publicKey))).toBe(
        hx(await ref.hpke.exportPublicKey(b.publicKey)),
      );
      expect(hx(await ours.hpke.exportPrivateKey(a.privateKey))).toBe(
        hx(leftPad(await ref.hpke.exportPrivateKey(b.privateKey), NSK[suite]!)),
      );
    }
  });

  test("AEAD agrees and rejects forgeries", async () => {
    const [ours, ref] = await Promise.all([impl(ourP, suite), impl(refP, suite)]);
    const key = rand(ours.hpke.keyLength);
    const nonce = rand(ours.hpke.nonceLength);
    for (const aad of [undefined, new Uint8Array(0), rand(13)]) {
      const pt = rand(33);
      const ct = await ours.hpke.encryptAead(key, nonce, aad, pt);
      expect(hx(ct)).toBe(hx(await ref.hpke.encryptAead(key, nonce, aad, pt)));
      expect(hx(await ref.hpke.decryptAead(key, nonce, aad, ct))).toBe(hx(pt));
      expect(hx(await ours.hpke.decryptAead(key, nonce, aad, ct))).toBe(hx(pt));
      ct[ct.length - 1]! ^= 1;
      await expect(ours.hpke.decryptAead(key, nonce, aad, ct)).rejects.toThrow();
    }
    await expect(ours.hpke.decryptAead(key, nonce, undefined, new Uint8Array(5))).rejects.toThrow();
    await expect(ours.hpke.encryptAead(key.subarray(1), nonce, undefined, rand(3))).rejects.toThrow();
  });
});

describe.each(OURS)("%s HMAC/HKDF with empty keys", (_name, provider) => {
  test.each(SUITES)("suite %i matches @noble/hashes (ts-mls noble provider)", async (suite) => {
    const [ours, ref] = await Promise.all([impl(provider, suite), impl(nobleCryptoProvider, suite)]);
    const data = rand(40);
    const empty = new Uint8Array(0);
    expect(hx(await ours.hash.mac(empty, data))).toBe(hx(await ref.hash.mac(empty, data)));
    expect(await ours.hash.verifyMac(empty, await ref.hash.mac(empty, data), data)).toBe(true);
    expect(hx(await ours.kdf.extract(empty, empty))).toBe(hx(await ref.kdf.extract(empty, empty)));
  });
});

describe.each(SUITES)("key interchange node <-> webcrypto, suite %i", (suite) => {
  test("signature and HPKE keys made by one provider work in the other", async () => {
    const n = await impl(nodeCryptoProvider, suite);
    const w = await impl(webCryptoProvider, suite);
    const msg = rand(64);
    for (const [a, b] of [
      [n, w],
      [w, n],
    ] as const) {
      const k = await a.signature.keygen();
      expect(await b.signature.verify(k.publicKey, msg, await b.signature.sign(k.signKey, msg))).toBe(true);
      expect(await a.signature.verify(k.publicKey, msg, await b.signature.sign(k.signKey, msg))).toBe(true);
      const kp = await a.hpke.generateKeyPair();
      const pub = await a.hpke.exportPublicKey(kp.publicKey);
      const priv = await a.hpke.exportPrivateKey(kp.privateKey);
      const c = await b.hpke.seal(await b.hpke.importPublicKey(pub), msg, utf8("i"));
      expect(hx(await a.hpke.open(kp.privateKey, c.enc, c.ct, utf8("i")))).toBe(hx(msg));
      expect(hx(await b.hpke.open(await b.hpke.importPrivateKey(priv), c.enc, c.ct, utf8("i")))).toBe(
        hx(msg),
      );
      // the public key b derives from the private key equals a's
      const ikm = rand(32);
      const da = await a.hpke.deriveKeyPair(ikm);
      const db = await b.hpke.deriveKeyPair(ikm);
      expect(hx(await b.hpke.exportPublicKey(db.publicKey))).toBe(
        hx(await a.hpke.exportPublicKey(da.publicKey)),
      );
    }
  });
});

describe.each(OURS)("%s edge cases", (_name, provider) => {
  test("rejects malformed HPKE keys and low-order X25519 points", async () => {
    const cs = await impl(provider, 1);
    await expect(cs.hpke.importPublicKey(new Uint8Array(31))).rejects.toThrow();
    await expect(cs.hpke.importPrivateKey(new Uint8Array(33))).rejects.toThrow();
    // u = 0 is a low-order point: DH output is all zero (RFC 9180 Section 7.1.4).
    const zero = await cs.hpke.importPublicKey(new Uint8Array(32));
    await expect(cs.hpke.seal(zero, rand(4), new Uint8Array(0))).rejects.toThrow();
    const p256 = await impl(provider, 2);
    const notOnCurve = new Uint8Array(65);
    notOnCurve[0] = 4;
    notOnCurve[64] = 7;
    await expect(
      p256.hpke.seal(await p256.hpke.importPublicKey(notOnCurve), rand(4), new Uint8Array(0)),
    ).rejects.toThrow();
    await expect(p256.hpke.importPublicKey(rand(33))).rejects.toThrow();
    await expect(p256.hpke.importPrivateKey(new Uint8Array(32))).rejects.toThrow(); // zero scalar
    await expect(p256.hpke.importPrivateKey(new Uint8Array(32).fill(0xff))).rejects.toThrow(); // >= order
  });

  test("accepts P-521 scalars without their leading zero byte (65 bytes)", async () => {
    const cs = await impl(provider, 5);
    let kp = await cs.hpke.generateKeyPair();
    let priv = await cs.hpke.exportPrivateKey(kp.privateKey);
    while (priv[0] !== 0) {
      kp = await cs.hpke.generateKeyPair();
      priv = await cs.hpke.exportPrivateKey(kp.privateKey);
    }
    const short = await cs.hpke.importPrivateKey(priv.subarray(1));
    const c = await cs.hpke.seal(kp.publicKey, utf8("x"), new Uint8Array(0));
    expect(hx(await cs.hpke.open(short, c.enc, c.ct, new Uint8Array(0)))).toBe(hx(utf8("x")));
    let sk = await cs.signature.keygen();
    while (sk.signKey[0] !== 0) sk = await cs.signature.keygen();
    const sig = await cs.signature.sign(sk.signKey.subarray(1), utf8("m"));
    expect(await cs.signature.verify(sk.publicKey, utf8("m"), sig)).toBe(true);
  });

  test("HPKE keys from another suite or another provider are refused", async () => {
    const a = await impl(provider, 1);
    const b = await impl(provider, 2);
    const kp = await a.hpke.generateKeyPair();
    await expect(b.hpke.exportPublicKey(kp.publicKey)).rejects.toThrow();
    const foreign = await (await impl(defaultCryptoProvider, 1)).hpke.generateKeyPair();
    await expect(a.hpke.exportPrivateKey(foreign.privateKey)).rejects.toThrow();
  });

  test("Ed25519 signing keys: seed, PKCS#8 and seed||pub forms sign identically", async () => {
    const cs = await impl(provider, 1);
    const k = await cs.signature.keygen();
    expect(k.signKey.length).toBe(32);
    expect(k.publicKey.length).toBe(32);
    const msg = utf8("hello");
    const s1 = await cs.signature.sign(k.signKey, msg);
    const pkcs8 = new Uint8Array([
      0x30,
      0x2e,
      0x02,
      0x01,
      0x00,
      0x30,
      0x05,
      0x06,
      0x03,
      0x2b,
      0x65,
      0x70,
      0x04,
      0x22,
      0x04,
      0x20,
      ...k.signKey,
    ]);
    expect(hx(await cs.signature.sign(pkcs8, msg))).toBe(hx(s1));
    expect(hx(await cs.signature.sign(new Uint8Array([...k.signKey, ...k.publicKey]), msg))).toBe(hx(s1));
    await expect(cs.signature.sign(new Uint8Array(31), msg)).rejects.toThrow();
  });

  test("key sizes match RFC 9420 / RFC 9180 encodings for every suite", async () => {
    const sizes: Record<number, [number, number, number, number]> = {
      // [signKey, signaturePublicKey, hpkePriv, hpkePub]
      1: [32, 32, 32, 32],
      2: [32, 65, 32, 65],
      3: [32, 32, 32, 32],
      4: [57, 57, 56, 56],
      5: [66, 133, 66, 133],
      6: [57, 57, 56, 56],
      7: [48, 97, 48, 97],
    };
    for (const suite of SUITES) {
      const cs = await impl(provider, suite);
      const s = await cs.signature.keygen();
      const h = await cs.hpke.generateKeyPair();
      const got = [
        s.signKey.length,
        s.publicKey.length,
        (await cs.hpke.exportPrivateKey(h.privateKey)).length,
        (await cs.hpke.exportPublicKey(h.publicKey)).length,
      ];
      expect(got, `suite ${suite}`).toEqual(sizes[suite]);
      if (suite === 2 || suite === 5 || suite === 7) {
        expect(s.publicKey[0]).toBe(4);
        // ECDSA signatures are DER (RFC 9420 Section 5.1.2 via TLS 1.3): SEQUENCE tag first.
        expect((await cs.signature.sign(s.signKey, utf8("m")))[0]).toBe(0x30);
      }
      expect(cs.rng.randomBytes(17).length).toBe(17);
    }
  });
});
