/**
 * crypto-basics.json (RFC 9420 Sections 5.1-5.2, 8, 9) through src/mls/crypto/labels.ts:
 * RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret, SignWithLabel/VerifyWithLabel and
 * EncryptWithLabel/DecryptWithLabel, for every suite, with every provider; the synchronous
 * twins too where the provider has them (node:crypto).
 */
import { expect } from "vitest";
import {
  decryptWithLabel,
  deriveSecret,
  deriveSecretSync,
  deriveTreeSecret,
  deriveTreeSecretSync,
  encryptWithLabel,
  expandWithLabel,
  expandWithLabelSync,
  refHash,
  refHashSync,
  signWithLabel,
  signWithLabelSync,
  verifyWithLabel,
  verifyWithLabelSync,
} from "../../src/mls/crypto/labels.js";
import { isSyncDigestHash, isSyncExpandKdf, syncSignatureOf } from "../../src/mls/crypto/types.js";
import type { CryptoBasics } from "../browser/vector-checks.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

/** None: every case passes with every provider. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<CryptoBasics>("crypto-basics.json", PROVIDERS, async (v, cs) => {
  const signer = syncSignatureOf(cs.signature);

  const r = v.ref_hash;
  expect(bytesToHex(await refHash(r.label, hex(r.value), cs.hash))).toBe(r.out);
  if (isSyncDigestHash(cs.hash)) expect(bytesToHex(refHashSync(r.label, hex(r.value), cs.hash))).toBe(r.out);

  const e = v.expand_with_label;
  expect(bytesToHex(await expandWithLabel(hex(e.secret), e.label, hex(e.context), e.length, cs.kdf))).toBe(
    e.out,
  );

  const d = v.derive_secret;
  expect(bytesToHex(await deriveSecret(hex(d.secret), d.label, cs.kdf))).toBe(d.out);

  const t = v.derive_tree_secret;
  expect(bytesToHex(await deriveTreeSecret(hex(t.secret), t.label, t.generation, t.length, cs.kdf))).toBe(
    t.out,
  );

  if (isSyncExpandKdf(cs.kdf)) {
    const kdf = cs.kdf;
    expect(bytesToHex(expandWithLabelSync(hex(e.secret), e.label, hex(e.context), e.length, kdf))).toBe(
      e.out,
    );
    expect(bytesToHex(deriveSecretSync(hex(d.secret), d.label, kdf))).toBe(d.out);
    expect(bytesToHex(deriveTreeSecretSync(hex(t.secret), t.label, t.generation, t.length, kdf))).toBe(t.out);
  }

  const s = v.sign_with_label;
  expect(await verifyWithLabel(hex(s.pub), s.label, hex(s.content), hex(s.signature), cs.signature)).toBe(
    true,
  );
  const sig = await signWithLabel(hex(s.priv), s.label, hex(s.content), cs.signature);
  expect(await verifyWithLabel(hex(s.pub), s.label, hex(s.content), sig, cs.signature)).toBe(true);
  const deterministic = [1, 3, 4, 6].includes(v.cipher_suite);
  if (deterministic) {
    // EdDSA is deterministic (RFC 8032): our signature must be byte-identical.
    expect(bytesToHex(sig)).toBe(s.signature);
  }
  // A flipped bit must not verify.
  const bad = hex(s.signature);
  bad[bad.length - 5]! ^= 0x01;
  expect(await verifyWithLabel(hex(s.pub), s.label, hex(s.content), bad, cs.signature)).toBe(false);
  // Another label must not verify either (the label is part of SignContent).
  expect(
    await verifyWithLabel(hex(s.pub), `${s.label}!`, hex(s.content), hex(s.signature), cs.signature),
  ).toBe(false);
  if (signer !== undefined) {
    expect(verifyWithLabelSync(hex(s.pub), s.label, hex(s.content), hex(s.signature), signer)).toBe(true);
    const sig2 = signWithLabelSync(hex(s.priv), s.label, hex(s.content), signer);
    expect(verifyWithLabelSync(hex(s.pub), s.label, hex(s.content), sig2, signer)).toBe(true);
    if (deterministic) expect(bytesToHex(sig2)).toBe(s.signature);
    expect(verifyWithLabelSync(hex(s.pub), s.label, hex(s.content), bad, signer)).toBe(false);
  }

  const h = v.encrypt_with_label;
  const priv = await cs.hpke.importPrivateKey(hex(h.priv));
  const pub = await cs.hpke.importPublicKey(hex(h.pub));
  const pt = await decryptWithLabel(
    priv,
    h.label,
    hex(h.context),
    hex(h.kem_output),
    hex(h.ciphertext),
    cs.hpke,
  );
  expect(bytesToHex(pt)).toBe(h.plaintext);
  const fresh = await encryptWithLabel(pub, h.label, hex(h.context), hex(h.plaintext), cs.hpke);
  expect(
    bytesToHex(await decryptWithLabel(priv, h.label, hex(h.context), fresh.enc, fresh.ct, cs.hpke)),
  ).toBe(h.plaintext);
  // Another label or context must not decrypt (EncryptContext is the HPKE info).
  await expect(
    decryptWithLabel(priv, `${h.label}!`, hex(h.context), fresh.enc, fresh.ct, cs.hpke),
  ).rejects.toThrow();
  // The serialized keys round-trip (RFC 9180 Serialize/DeserializePrivateKey).
  expect(bytesToHex(await cs.hpke.exportPublicKey(pub))).toBe(h.pub);
  expect(bytesToHex(await cs.hpke.exportPrivateKey(priv))).toBe(
    h.priv.padStart(2 * (await cs.hpke.exportPrivateKey(priv)).length, "0"),
  );
});
