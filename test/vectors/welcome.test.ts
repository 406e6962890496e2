/**
 * welcome.json (RFC 9420 Section 12.4.3.1): KeyPackageRef, HPKE decryption
 * of the GroupSecrets with init_priv, GroupInfo decryption, confirmation tag
 * and GroupInfo signature.
 */
import { expect } from "vitest";
import { verifyGroupInfoConfirmationTag, verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { decodeMlsMessage, encodeMlsMessage } from "ts-mls/message.js";
import { decryptGroupInfo, decryptGroupSecrets } from "ts-mls/welcome.js";
import { constantTimeEqual } from "../../src/mls/crypto/bytes.js";
import type { WelcomeVector } from "../browser/vector-checks.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<WelcomeVector>("welcome.json", PROVIDERS, async (v, cs) => {
  const w = decodeMlsMessage(hex(v.welcome), 0)?.[0];
  if (w === undefined || w.wireformat !== "mls_welcome") throw new Error("not a Welcome");
  const kp = decodeMlsMessage(hex(v.key_package), 0)?.[0];
  if (kp === undefined || kp.wireformat !== "mls_key_package") throw new Error("not a KeyPackage");
  expect(bytesToHex(encodeMlsMessage(w))).toBe(v.welcome);
  expect(bytesToHex(encodeMlsMessage(kp))).toBe(v.key_package);
  expect(await verifyKeyPackage(kp.keyPackage, cs.signature)).toBe(true);

  const ref = await makeKeyPackageRef(kp.keyPackage, cs.hash);
  expect(w.welcome.secrets.some((s) => constantTimeEqual(s.newMember, ref))).toBe(true);

  const initKey = await cs.hpke.importPrivateKey(hex(v.init_priv));
  const secrets = await decryptGroupSecrets(initKey, ref, w.welcome, cs.hpke);
  if (secrets === undefined) throw new Error("GroupSecrets did not decrypt");
  const pskSecret = new Uint8Array(cs.kdf.size);
  const gi = await decryptGroupInfo(w.welcome, secrets.joinerSecret, pskSecret, cs);
  if (gi === undefined) throw new Error("GroupInfo did not decrypt");
  expect(await verifyGroupInfoConfirmationTag(gi, secrets.joinerSecret, pskSecret, cs)).toBe(true);
  expect(await verifyGroupInfoSignature(gi, hex(v.signer_pub), cs.signature)).toBe(true);
});
