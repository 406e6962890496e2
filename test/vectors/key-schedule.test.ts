/**
 * key-schedule.json (RFC 9420 §8) through our key schedule (src/mls/keyschedule): GroupContext
 * encoding, epoch secrets, external key pair (KEM.DeriveKeyPair(external_secret), RFC 9180
 * §7.1.3) and exporter.
 */
import { expect } from "vitest";
import { encode } from "../../src/mls/codec/index.js";
import { writeGroupContext } from "../../src/mls/keyschedule/codec.js";
import {
  externalKeyPair,
  groupContextBytes,
  mlsExporter,
  nextEpochSecrets,
  welcomeSecret,
} from "../../src/mls/keyschedule/schedule.js";
import type { GroupContext } from "../../src/mls/keyschedule/types.js";
import type { KeyScheduleVector } from "../browser/vector-checks.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

/** None: every case passes with every provider. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<KeyScheduleVector>("key-schedule.json", PROVIDERS, async (v, cs) => {
  let initSecret = hex(v.initial_init_secret);
  for (const [i, epoch] of v.epochs.entries()) {
    const groupContext: GroupContext = {
      version: 1,
      ciphersuite: v.cipher_suite,
      groupId: hex(v.group_id),
      epoch: BigInt(i),
      treeHash: hex(epoch.tree_hash),
      confirmedTranscriptHash: hex(epoch.confirmed_transcript_hash),
      extensions: [],
    };
    expect(bytesToHex(encode(groupContext, writeGroupContext))).toBe(epoch.group_context);
    expect(bytesToHex(groupContextBytes(groupContext))).toBe(epoch.group_context);

    const pskSecret = hex(epoch.psk_secret);
    const { joinerSecret, secrets: s } = await nextEpochSecrets(cs, {
      initSecret,
      commitSecret: hex(epoch.commit_secret),
      pskSecret,
      groupContext,
    });
    expect(bytesToHex(joinerSecret)).toBe(epoch.joiner_secret);
    expect(bytesToHex(await welcomeSecret(cs, joinerSecret, pskSecret))).toBe(epoch.welcome_secret);
    expect(bytesToHex(s.encryptionSecret)).toBe(epoch.encryption_secret);
    expect(bytesToHex(s.initSecret)).toBe(epoch.init_secret);
    expect(bytesToHex(s.senderDataSecret)).toBe(epoch.sender_data_secret);
    expect(bytesToHex(s.exporterSecret)).toBe(epoch.exporter_secret);
    expect(bytesToHex(s.externalSecret)).toBe(epoch.external_secret);
    expect(bytesToHex(s.confirmationKey)).toBe(epoch.confirmation_key);
    expect(bytesToHex(s.membershipKey)).toBe(epoch.membership_key);
    expect(bytesToHex(s.resumptionPsk)).toBe(epoch.resumption_psk);
    expect(bytesToHex(s.epochAuthenticator)).toBe(epoch.epoch_authenticator);

    // external_pub == SerializePublicKey(DeriveKeyPair(external_secret).pk)
    expect(bytesToHex((await externalKeyPair(cs, s.externalSecret)).publicKey)).toBe(epoch.external_pub);

    const ex = epoch.exporter;
    expect(bytesToHex(await mlsExporter(cs, s.exporterSecret, ex.label, hex(ex.context), ex.length))).toBe(
      ex.secret,
    );
    initSecret = s.initSecret;
  }
});
