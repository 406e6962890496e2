/**
 * welcome.json (RFC 9420 §12.4.3.1) through OUR engine: the KeyPackageRef, the GroupSecrets
 * decrypted with init_priv (`openGroupSecrets`), the GroupInfo decrypted and decoded strictly
 * (`openGroupInfo`), its confirmation tag from the joiner's key schedule and its signature under
 * signer_pub. (The vectors carry no ratchet tree, so the full `verifyWelcome` is exercised by the
 * passive-client files.)
 */
import { expect } from "vitest";
import { decodeExact, encode } from "../../../src/mls/codec/index.js";
import { bytesToHex, hexToBytes } from "../../../src/mls/crypto/bytes.js";
import { makeKeyPackageRef, verifyWithLabel } from "../../../src/mls/crypto/labels.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { readMlsMessage, writeMlsMessage } from "../../../src/mls/group/codec.js";
import { groupInfoTbs } from "../../../src/mls/group/groupInfo.js";
import { openGroupInfo, openGroupSecrets, parseWelcome } from "../../../src/mls/group/welcome.js";
import { WireFormats } from "../../../src/mls/framing/types.js";
import { keyPackageSignContents } from "../../../src/mls/keypackage/validate.js";
import { epochSecretsFromJoiner, zeroSecret } from "../../../src/mls/keyschedule/schedule.js";
import { verifyConfirmationTag } from "../../../src/mls/keyschedule/transcript.js";
import { PROVIDERS, type SkippedVector, vectorTests } from "../../vectors/helpers.js";

interface WelcomeVector {
  cipher_suite: number;
  init_priv: string;
  key_package: string;
  signer_pub: string;
  welcome: string;
}

/** None: every case passes with every provider. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<WelcomeVector>("welcome.json", PROVIDERS, async (v, impl) => {
  const cs = impl as unknown as CiphersuiteImpl;
  const kpAll = hexToBytes(v.key_package);
  const kpMsg = decodeExact(kpAll, readMlsMessage);
  if (kpMsg.wireFormat !== WireFormats.mls_key_package) throw new Error("not a KeyPackage");
  expect(bytesToHex(encode(kpMsg, writeMlsMessage))).toBe(v.key_package);
  // The two signatures of the key package (§10.1). (Not the full verifyKeyPackage: case #6's
  // package does not list its own suite 7 in its capabilities.)
  const kp = kpMsg.keyPackage;
  const signed = keyPackageSignContents(kp);
  expect(await cs.signature.verify(kp.leafNode.signatureKey, signed.leaf, kp.leafNode.signature)).toBe(true);
  expect(await cs.signature.verify(kp.leafNode.signatureKey, signed.keyPackage, kp.signature)).toBe(true);

  const w = parseWelcome(hexToBytes(v.welcome));
  expect(w.ciphersuite).toBe(v.cipher_suite);
  const ref = await makeKeyPackageRef(kpAll.subarray(4), cs.hash);
  const secrets = await openGroupSecrets(cs, w.welcome, ref, hexToBytes(v.init_priv));
  const gi = await openGroupInfo(cs, w.welcome, secrets.joinerSecret, zeroSecret(cs));
  const epoch = await epochSecretsFromJoiner(cs, secrets.joinerSecret, zeroSecret(cs), gi.groupContext);
  await verifyConfirmationTag(
    cs,
    epoch.confirmationKey,
    gi.groupContext.confirmedTranscriptHash,
    gi.confirmationTag,
  );
  expect(
    await verifyWithLabel(
      hexToBytes(v.signer_pub),
      "GroupInfoTBS",
      groupInfoTbs(gi),
      gi.signature,
      cs.signature,
    ),
  ).toBe(true);
});
