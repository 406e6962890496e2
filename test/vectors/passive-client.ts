/**
 * Driver for the passive-client-*.json scenarios (test-vectors.md "Passive Client Scenarios")
 * through OUR engine (src/mls/group): join from the Welcome with `verifyWelcome`/`joinGroup`,
 * given the vector's private keys, its external PSKs and (when the Welcome has none) its ratchet
 * tree; then feed every proposal and commit to `receiveMessage`, checking the epoch
 * authenticator after the join and after every epoch.
 *
 * The session clock is set inside the key package's lifetime (some vectors' lifetimes ended
 * long ago): lifetimes are checked at that time, as a client would have at the vector's date.
 */
import { expect } from "vitest";
import { decodeExact } from "../../src/mls/codec/index.js";
import { defaultAuthenticationService } from "../../src/mls/credential/authentication.js";
import { bytesEqual, bytesToHex, hexToBytes } from "../../src/mls/crypto/bytes.js";
import type { CiphersuiteImpl } from "../../src/mls/crypto/types.js";
import { readMlsMessage } from "../../src/mls/group/codec.js";
import { receiveMessage } from "../../src/mls/group/message.js";
import type { GroupState } from "../../src/mls/group/state.js";
import { joinGroup, parseWelcome, verifyWelcome } from "../../src/mls/group/welcome.js";
import { WireFormats } from "../../src/mls/framing/types.js";
import type { KeyPackage } from "../../src/mls/keypackage/types.js";
import type { PreSharedKeyId } from "../../src/mls/keyschedule/types.js";
import { readRatchetTree } from "../../src/mls/tree/codec.js";

/** One passive-client-*.json case. */
export interface PassiveClientVector {
  cipher_suite: number;
  external_psks: { psk_id: string; psk: string }[];
  key_package: string;
  signature_priv: string;
  encryption_priv: string;
  init_priv: string;
  welcome: string;
  ratchet_tree: string | null;
  initial_epoch_authenticator: string;
  epochs: { proposals: string[]; commit: string; epoch_authenticator: string }[];
}

/** The vector's KeyPackage and its encoding (the MLSMessage body, whose hash is the KeyPackageRef). */
function keyPackageOf(v: PassiveClientVector): { keyPackage: KeyPackage; bytes: Uint8Array } {
  const all = hexToBytes(v.key_package);
  const m = decodeExact(all, readMlsMessage);
  if (m.wireFormat !== WireFormats.mls_key_package) throw new Error("not a KeyPackage");
  return { keyPackage: m.keyPackage, bytes: all.subarray(4) };
}

/**
 * The files' generation dates: passive-client-welcome.json 2023-03-03 (its key packages' own
 * not_before), the other two 2024-03-14 (their key packages have lifetime 0..2^64-1, the other
 * members' leaves 1710422003..1741958003).
 */
const GENERATED_2024 = 1710422003n + 3600n;

/** The session time of a vector: shortly after its key package's not_before, or its generation date. */
export function vectorNow(kp: KeyPackage): bigint {
  const nb = kp.leafNode.lifetime?.notBefore ?? 0n;
  return nb === 0n ? GENERATED_2024 : nb + 60n;
}

export async function runPassiveClient(v: PassiveClientVector, cs: CiphersuiteImpl): Promise<GroupState> {
  const { keyPackage, bytes } = keyPackageOf(v);
  const psks = v.external_psks.map((p) => ({ id: hexToBytes(p.psk_id), psk: hexToBytes(p.psk) }));
  const psk = (id: PreSharedKeyId): Uint8Array | undefined =>
    id.pskType === 1 ? psks.find((p) => bytesEqual(p.id, id.pskId))?.psk : undefined;
  const options = { now: vectorNow(keyPackage), authenticationService: defaultAuthenticationService, psk };

  const joinable = await verifyWelcome(
    cs,
    parseWelcome(hexToBytes(v.welcome)),
    {
      keyPackage,
      keyPackageBytes: bytes,
      initPrivateKey: hexToBytes(v.init_priv),
      encryptionPrivateKey: hexToBytes(v.encryption_priv),
      signaturePrivateKey: hexToBytes(v.signature_priv),
    },
    {
      ...options,
      ...(v.ratchet_tree === null
        ? {}
        : { ratchetTree: decodeExact(hexToBytes(v.ratchet_tree), readRatchetTree) }),
    },
  );
  let state = await joinGroup(joinable);
  expect(bytesToHex(state.keys.epochAuthenticator)).toBe(v.initial_epoch_authenticator);

  for (const [i, epoch] of v.epochs.entries()) {
    for (const p of epoch.proposals) {
      const r = await receiveMessage(state, hexToBytes(p), options);
      expect(r.kind, `epoch ${i + 1} proposal`).toBe("proposal");
      state = r.state;
    }
    const r = await receiveMessage(state, hexToBytes(epoch.commit), options);
    expect(r.kind, `epoch ${i + 1} commit`).toBe("commit");
    state = r.state;
    expect(bytesToHex(state.keys.epochAuthenticator), `epoch ${i + 1}`).toBe(epoch.epoch_authenticator);
  }
  return state;
}
