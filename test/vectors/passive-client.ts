/**
 * Driver for the passive-client-*.json scenarios (test-vectors.md "Passive
 * Client Scenarios"): join from a Welcome with ts-mls's joinGroup, then feed
 * every proposal and commit through processPrivateMessage/processPublicMessage,
 * checking the epoch authenticator after the join and after every epoch.
 */
import { expect } from "vitest";
import type { CiphersuiteImpl, KeyPackage, PrivateKeyPackage } from "ts-mls";
import { joinGroup, makePskIndex } from "ts-mls/clientState.js";
import { decodeMlsMessage } from "ts-mls/message.js";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { bytesToBase64 } from "ts-mls/util/byteArray.js";
import { hpkePairMatches, processMessage, type PassiveClientVector } from "../browser/vector-checks.js";
import { bytesToHex, hex } from "./helpers.js";

export type { PassiveClientVector };

export async function runPassiveClient(v: PassiveClientVector, cs: CiphersuiteImpl): Promise<void> {
  const kpMsg = decodeMlsMessage(hex(v.key_package), 0)?.[0];
  if (kpMsg === undefined || kpMsg.wireformat !== "mls_key_package") throw new Error("not a KeyPackage");
  const kp: KeyPackage = kpMsg.keyPackage;
  const w = decodeMlsMessage(hex(v.welcome), 0)?.[0];
  if (w === undefined || w.wireformat !== "mls_welcome") throw new Error("not a Welcome");

  // The private keys given by the vector belong to the KeyPackage.
  expect(await hpkePairMatches(cs, kp.initKey, hex(v.init_priv))).toBe(true);
  expect(await hpkePairMatches(cs, kp.leafNode.hpkePublicKey, hex(v.encryption_priv))).toBe(true);
  const probe = new TextEncoder().encode("signature key check");
  const sig = await cs.signature.sign(hex(v.signature_priv), probe);
  expect(await cs.signature.verify(kp.leafNode.signaturePublicKey, probe, sig)).toBe(true);

  const keys: PrivateKeyPackage = {
    initPrivateKey: hex(v.init_priv),
    hpkePrivateKey: hex(v.encryption_priv),
    signaturePrivateKey: hex(v.signature_priv),
  };
  const tree = v.ratchet_tree === null ? undefined : decodeRatchetTree(hex(v.ratchet_tree), 0)?.[0];
  const psks: Record<string, Uint8Array> = {};
  for (const p of v.external_psks) psks[bytesToBase64(hex(p.psk_id))] = hex(p.psk);

  let state = await joinGroup(w.welcome, kp, keys, makePskIndex(undefined, psks), cs, tree);
  expect(bytesToHex(state.keySchedule.epochAuthenticator)).toBe(v.initial_epoch_authenticator);

  for (const [i, epoch] of v.epochs.entries()) {
    for (const p of epoch.proposals) state = await processMessage(state, p, psks, cs);
    state = await processMessage(state, epoch.commit, psks, cs);
    expect(bytesToHex(state.keySchedule.epochAuthenticator), `epoch ${i + 1}`).toBe(
      epoch.epoch_authenticator,
    );
  }
}
