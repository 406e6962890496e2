/**
 * messages.json (RFC 9420 Sections 6, 10, 12): TLS decode/encode round trips
 * through ts-mls codecs for every message type, plus KeyPackage signature
 * verification (RFC 9420 Section 10.1) and KeyPackageRef with each provider.
 */
import { describe, expect, test } from "vitest";
import { getCiphersuiteFromName } from "ts-mls";
import type { Decoder } from "ts-mls/codec/tlsDecoder.js";
import type { Encoder } from "ts-mls/codec/tlsEncoder.js";
import { decodeCommit, encodeCommit } from "ts-mls/commit.js";
import { decodeGroupSecrets, encodeGroupSecrets } from "ts-mls/groupSecrets.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { decodeMlsMessage, encodeMlsMessage } from "ts-mls/message.js";
import {
  decodeAdd,
  decodeExternalInit,
  decodeGroupContextExtensions,
  decodePSK,
  decodeReinit,
  decodeRemove,
  decodeUpdate,
  encodeAdd,
  encodeExternalInit,
  encodeGroupContextExtensions,
  encodePSK,
  encodeReinit,
  encodeRemove,
  encodeUpdate,
} from "ts-mls/proposal.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import {
  PROVIDERS,
  type SkippedVector,
  reportMissing,
  bytesToHex,
  cases,
  hex,
  loadVectors,
} from "./helpers.js";

interface MessagesVector {
  mls_welcome: string;
  mls_group_info: string;
  mls_key_package: string;
  ratchet_tree: string;
  group_secrets: string;
  add_proposal: string;
  update_proposal: string;
  remove_proposal: string;
  pre_shared_key_proposal: string;
  re_init_proposal: string;
  external_init_proposal: string;
  group_context_extensions_proposal: string;
  commit: string;
  public_message_application: string;
  public_message_proposal: string;
  public_message_commit: string;
  private_message: string;
}

/** None: every case decodes and re-encodes byte for byte. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

const vectors = loadVectors<MessagesVector>("messages.json");
reportMissing("messages.json", vectors);

function roundTrip<T>(h: string, decode: Decoder<T>, encode: Encoder<T>): T {
  const bytes = hex(h);
  const d = decode(bytes, 0);
  if (d === undefined) throw new Error("decode failed");
  expect(d[1]).toBe(bytes.length);
  expect(bytesToHex(encode(d[0]))).toBe(h);
  return d[0];
}

const MLS_MESSAGES = [
  ["mls_welcome", "mls_welcome"],
  ["mls_group_info", "mls_group_info"],
  ["mls_key_package", "mls_key_package"],
  ["public_message_application", "mls_public_message"],
  ["public_message_proposal", "mls_public_message"],
  ["public_message_commit", "mls_public_message"],
  ["private_message", "mls_private_message"],
] as const;

describe.skipIf(vectors === undefined)("messages vectors", () => {
  test.each(cases(vectors))("codec round trips %s", (_label, v) => {
    for (const [field, wireformat] of MLS_MESSAGES) {
      const m = roundTrip(v[field], decodeMlsMessage, encodeMlsMessage);
      expect(m.wireformat, field).toBe(wireformat);
    }
    roundTrip(v.ratchet_tree, decodeRatchetTree, encodeRatchetTree);
    roundTrip(v.group_secrets, decodeGroupSecrets, encodeGroupSecrets);
    roundTrip(v.add_proposal, decodeAdd, encodeAdd);
    roundTrip(v.update_proposal, decodeUpdate, encodeUpdate);
    roundTrip(v.remove_proposal, decodeRemove, encodeRemove);
    roundTrip(v.pre_shared_key_proposal, decodePSK, encodePSK);
    roundTrip(v.re_init_proposal, decodeReinit, encodeReinit);
    roundTrip(v.external_init_proposal, decodeExternalInit, encodeExternalInit);
    roundTrip(
      v.group_context_extensions_proposal,
      decodeGroupContextExtensions,
      encodeGroupContextExtensions,
    );
    roundTrip(v.commit, decodeCommit, encodeCommit);
  });

  describe.each(PROVIDERS)("%s provider", (_name, provider) => {
    test("KeyPackage signatures verify and KeyPackageRefs agree across providers", async () => {
      const refs: string[] = [];
      for (const v of vectors ?? []) {
        const m = decodeMlsMessage(hex(v.mls_key_package), 0)?.[0];
        if (m === undefined || m.wireformat !== "mls_key_package") throw new Error("not a KeyPackage");
        const kp = m.keyPackage;
        const cs = await provider.getCiphersuiteImpl(getCiphersuiteFromName(kp.cipherSuite));
        expect(await verifyKeyPackage(kp, cs.signature)).toBe(true);
        expect(await verifyLeafNodeSignatureKeyPackage(kp.leafNode, cs.signature)).toBe(true);
        const tampered = { ...kp, initKey: new Uint8Array(kp.initKey).map((b, i) => (i === 0 ? b ^ 1 : b)) };
        expect(await verifyKeyPackage(tampered, cs.signature)).toBe(false);
        refs.push(bytesToHex(await makeKeyPackageRef(kp, cs.hash)));
      }
      expect(refs).toHaveLength(vectors?.length ?? 0);
      refsByProvider.push(refs);
      if (refsByProvider.length > 1) expect(refs).toEqual(refsByProvider[0]);
    });
  });
});

const refsByProvider: string[][] = [];
