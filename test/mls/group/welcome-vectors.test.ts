/**
 * welcome.json through OUR engine, checking exactly what test-vectors.md asks ("Verification"):
 *
 * - identify the entry of `welcome.secrets` for `key_package` (its KeyPackageRef, §5.2);
 * - decrypt the encrypted group secrets with `init_priv` (`openGroupSecrets`, §12.4.3.1);
 * - decrypt the encrypted group info (`openGroupInfo`, decoded strictly);
 * - verify the GroupInfo signature with `signer_pub` (§12.4.3).
 *
 * Plus the strict decoding and re-encoding of both messages. Not a full key package validation
 * (§10.1): the vector does not ask for it, and case #6's package does not list its own suite 7 in
 * its capabilities. The full `verifyWelcome` is exercised by the passive-client files.
 */
import { expect } from "vitest";
import { decodeExact, encode } from "../../../src/mls/codec/index.js";
import { bytesEqual, bytesToHex, hexToBytes } from "../../../src/mls/crypto/bytes.js";
import { makeKeyPackageRef, verifyWithLabel } from "../../../src/mls/crypto/labels.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { readMlsMessage, writeMlsMessage } from "../../../src/mls/group/codec.js";
import { groupInfoTbs } from "../../../src/mls/group/groupInfo.js";
import { openGroupInfo, openGroupSecrets, parseWelcome } from "../../../src/mls/group/welcome.js";
import { WireFormats } from "../../../src/mls/framing/types.js";
import { zeroSecret } from "../../../src/mls/keyschedule/schedule.js";
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
  const welcomeAll = hexToBytes(v.welcome);
  const welcomeMsg = decodeExact(welcomeAll, readMlsMessage);
  expect(bytesToHex(encode(welcomeMsg, writeMlsMessage))).toBe(v.welcome);

  const w = parseWelcome(welcomeAll);
  expect(w.ciphersuite).toBe(v.cipher_suite);
  // the entry of welcome.secrets for key_package: KeyPackageRef of the KeyPackage (MLSMessage header off)
  const ref = await makeKeyPackageRef(kpAll.subarray(4), cs.hash);
  expect(w.newMembers.some((m) => bytesEqual(m, ref))).toBe(true);
  // its group secrets, decrypted with init_priv; then the group info
  const secrets = await openGroupSecrets(cs, w.welcome, ref, hexToBytes(v.init_priv));
  const gi = await openGroupInfo(cs, w.welcome, secrets.joinerSecret, zeroSecret(cs));
  // the signature on the decrypted group info, with signer_pub
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
