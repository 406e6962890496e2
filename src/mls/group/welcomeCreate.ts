/**
 * RFC 9420 §12.4.3.1 making a Welcome for the members a commit adds:
 *
 *   welcome_secret = DeriveSecret(KDF.Extract(joiner_secret, psk_secret), "welcome")
 *   encrypted_group_info = AEAD.Seal(welcome_key, welcome_nonce, "", GroupInfo)
 *   encrypted_group_secrets = EncryptWithLabel(init_key, "Welcome", encrypted_group_info, GroupSecrets)
 *
 * Each joiner's GroupSecrets carries the joiner_secret, the path secret of the lowest node of
 * the committer's path above it (when the commit has a path), and the PSK ids.
 */
import { encode } from "../codec/index.js";
import { encryptWithLabel, makeKeyPackageRef } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { writeKeyPackage } from "../keypackage/codec.js";
import type { KeyPackage } from "../keypackage/types.js";
import { welcomeKeyNonce, welcomeSecret } from "../keyschedule/schedule.js";
import type { PreSharedKeyId } from "../keyschedule/types.js";
import { writeGroupSecrets } from "./codec.js";
import { encodedGroupInfo } from "./groupInfo.js";
import type { EncryptedGroupSecrets, GroupInfo, Welcome } from "./types.js";

/** A member the Welcome is for. */
export interface Joiner {
  readonly keyPackage: KeyPackage;
  /** The encoded key package when known (its KeyPackageRef hashes these bytes, §5.2). */
  readonly keyPackageBytes?: Uint8Array;
  /** §12.4.3.1 path_secret of the common ancestor of the committer and this joiner. */
  readonly pathSecret: Uint8Array | undefined;
}

export interface WelcomeInput {
  readonly groupInfo: GroupInfo;
  readonly joinerSecret: Uint8Array;
  readonly pskSecret: Uint8Array;
  /** welcome_secret when the key schedule derived it already (else from joinerSecret, pskSecret). */
  readonly welcomeSecret?: Uint8Array;
  readonly pskIds: readonly PreSharedKeyId[];
  readonly joiners: readonly Joiner[];
}

/** §12.4.3.1 the Welcome of `input.joiners` into the group `input.groupInfo` describes. */
export async function createWelcome(cs: CiphersuiteImpl, input: WelcomeInput): Promise<Welcome> {
  const ws = input.welcomeSecret ?? (await welcomeSecret(cs, input.joinerSecret, input.pskSecret));
  const { key, nonce } = await welcomeKeyNonce(cs, ws);
  if (ws !== input.welcomeSecret) ws.fill(0); // a given one is the caller's to zero
  const encryptedGroupInfo = await cs.hpke.encryptAead(
    key,
    nonce,
    new Uint8Array(0),
    encodedGroupInfo(input.groupInfo),
  );
  key.fill(0);
  const secrets = await Promise.all(
    input.joiners.map(async (j): Promise<EncryptedGroupSecrets> => {
      const plaintext = encode(
        { joinerSecret: input.joinerSecret, pathSecret: j.pathSecret, psks: input.pskIds },
        writeGroupSecrets,
      );
      const initKey = await cs.hpke.importPublicKey(j.keyPackage.initKey);
      const { ct, enc } = await encryptWithLabel(initKey, "Welcome", encryptedGroupInfo, plaintext, cs.hpke);
      plaintext.fill(0);
      const newMember = await makeKeyPackageRef(
        j.keyPackageBytes ?? encode(j.keyPackage, writeKeyPackage),
        cs.hash,
      );
      return { newMember, encryptedGroupSecrets: { kemOutput: enc, ciphertext: ct } };
    }),
  );
  return { ciphersuite: input.groupInfo.groupContext.ciphersuite, secrets, encryptedGroupInfo };
}
