/**
 * key-schedule.json (RFC 9420 Section 8): epoch secrets, external key pair
 * (KEM.DeriveKeyPair(external_secret), RFC 9180 Section 7.1.3) and exporter.
 */
import { expect } from "vitest";
import { getCiphersuiteNameFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { encodeGroupContext, type GroupContext } from "ts-mls/groupContext.js";
import { initializeEpoch, mlsExporter } from "ts-mls/keySchedule.js";
import type { KeyScheduleVector } from "../browser/vector-checks.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<KeyScheduleVector>("key-schedule.json", PROVIDERS, async (v, cs) => {
  let initSecret = hex(v.initial_init_secret);
  for (const [i, epoch] of v.epochs.entries()) {
    const gc: GroupContext = {
      version: "mls10",
      cipherSuite: getCiphersuiteNameFromId(v.cipher_suite as CiphersuiteId),
      groupId: hex(v.group_id),
      epoch: BigInt(i),
      treeHash: hex(epoch.tree_hash),
      confirmedTranscriptHash: hex(epoch.confirmed_transcript_hash),
      extensions: [],
    };
    expect(bytesToHex(encodeGroupContext(gc))).toBe(epoch.group_context);

    const s = await initializeEpoch(initSecret, hex(epoch.commit_secret), gc, hex(epoch.psk_secret), cs.kdf);
    expect(bytesToHex(s.joinerSecret)).toBe(epoch.joiner_secret);
    expect(bytesToHex(s.welcomeSecret)).toBe(epoch.welcome_secret);
    expect(bytesToHex(s.encryptionSecret)).toBe(epoch.encryption_secret);
    const ks = s.keySchedule;
    expect(bytesToHex(ks.initSecret)).toBe(epoch.init_secret);
    expect(bytesToHex(ks.senderDataSecret)).toBe(epoch.sender_data_secret);
    expect(bytesToHex(ks.exporterSecret)).toBe(epoch.exporter_secret);
    expect(bytesToHex(ks.externalSecret)).toBe(epoch.external_secret);
    expect(bytesToHex(ks.confirmationKey)).toBe(epoch.confirmation_key);
    expect(bytesToHex(ks.membershipKey)).toBe(epoch.membership_key);
    expect(bytesToHex(ks.resumptionPsk)).toBe(epoch.resumption_psk);
    expect(bytesToHex(ks.epochAuthenticator)).toBe(epoch.epoch_authenticator);

    // external_pub == SerializePublicKey(DeriveKeyPair(external_secret).pk)
    const kp = await cs.hpke.deriveKeyPair(hex(epoch.external_secret));
    expect(bytesToHex(await cs.hpke.exportPublicKey(kp.publicKey))).toBe(epoch.external_pub);

    const ex = epoch.exporter;
    expect(bytesToHex(await mlsExporter(ks.exporterSecret, ex.label, hex(ex.context), ex.length, cs))).toBe(
      ex.secret,
    );
    initSecret = ks.initSecret;
  }
});
