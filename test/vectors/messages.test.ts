/**
 * messages.json (RFC 9420 §6, §10, §12): every field decodes through OUR codecs
 * (src/mls/<folder>/codec.ts) and re-encodes byte for byte; the KeyPackage signatures (§10.1,
 * §7.2) verify through our §5.1.2 VerifyWithLabel over our KeyPackageTBS / LeafNodeTBS, a
 * tampered init_key does not, and the KeyPackageRefs (§5.2) agree across providers.
 * ts-mls plays no part here.
 */
import { describe, expect, test } from "vitest";
import { decodeExact, encode, type Reader, type Writer } from "../../src/mls/codec/index.js";
import { verifyWithLabel, makeKeyPackageRef } from "../../src/mls/crypto/labels.js";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import { readCommit, readProposalBody, writeCommit, writeProposalBody } from "../../src/mls/framing/codec.js";
import { ProposalTypes, WireFormats, type Proposal } from "../../src/mls/framing/types.js";
import {
  readGroupSecrets,
  readMlsMessage,
  writeGroupSecrets,
  writeMlsMessage,
} from "../../src/mls/group/codec.js";
import type { MlsMessage } from "../../src/mls/group/types.js";
import { writeKeyPackage, writeKeyPackageTbs, writeLeafNodeTbs } from "../../src/mls/keypackage/codec.js";
import type { KeyPackage } from "../../src/mls/keypackage/types.js";
import { readRatchetTree, writeRatchetTree } from "../../src/mls/tree/codec.js";
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

/** Decodes all of `h` with `read`, re-encodes with `write`, expects the same bytes. */
function roundTrip<T>(field: string, h: string, read: (r: Reader) => T, write: (w: Writer, v: T) => void): T {
  const v = decodeExact(hex(h), read);
  expect(bytesToHex(encode(v, write)), field).toBe(h);
  return v;
}

const MLS_MESSAGES = [
  ["mls_welcome", WireFormats.mls_welcome],
  ["mls_group_info", WireFormats.mls_group_info],
  ["mls_key_package", WireFormats.mls_key_package],
  ["public_message_application", WireFormats.mls_public_message],
  ["public_message_proposal", WireFormats.mls_public_message],
  ["public_message_commit", WireFormats.mls_public_message],
  ["private_message", WireFormats.mls_private_message],
] as const;

/** The proposal fields hold a proposal's body (`Add`, `Update`, …) without its proposal_type. */
const PROPOSALS = [
  ["add_proposal", ProposalTypes.add],
  ["update_proposal", ProposalTypes.update],
  ["remove_proposal", ProposalTypes.remove],
  ["pre_shared_key_proposal", ProposalTypes.psk],
  ["re_init_proposal", ProposalTypes.reinit],
  ["external_init_proposal", ProposalTypes.external_init],
  ["group_context_extensions_proposal", ProposalTypes.group_context_extensions],
] as const;

/** §6: the content type each public message field carries. */
const PUBLIC_CONTENT_TYPES = {
  public_message_application: 1,
  public_message_proposal: 2,
  public_message_commit: 3,
} as const;

function keyPackageOf(h: string): KeyPackage {
  const m = decodeExact(hex(h), readMlsMessage);
  if (m.wireFormat !== WireFormats.mls_key_package) throw new Error("not a KeyPackage");
  return m.keyPackage;
}

describe.skipIf(vectors === undefined)("messages vectors", () => {
  test.each(cases(vectors))("codec round trips %s", (_label, v) => {
    for (const [field, wireFormat] of MLS_MESSAGES) {
      const m: MlsMessage = roundTrip(field, v[field], readMlsMessage, writeMlsMessage);
      expect(m.wireFormat, field).toBe(wireFormat);
      if (m.wireFormat === WireFormats.mls_public_message && field in PUBLIC_CONTENT_TYPES)
        expect(m.publicMessage.content.contentType, field).toBe(
          PUBLIC_CONTENT_TYPES[field as keyof typeof PUBLIC_CONTENT_TYPES],
        );
    }
    const tree = roundTrip("ratchet_tree", v.ratchet_tree, readRatchetTree, writeRatchetTree);
    // §12.4.3.3: the decoded tree is padded to a full width 2^(d+1)-1.
    expect(Number.isInteger(Math.log2(tree.length + 1))).toBe(true);
    roundTrip("group_secrets", v.group_secrets, readGroupSecrets, writeGroupSecrets);
    for (const [field, type] of PROPOSALS) {
      const p: Proposal = roundTrip(field, v[field], (r) => readProposalBody(r, type), writeProposalBody);
      expect(p.proposalType, field).toBe(type);
    }
    roundTrip("commit", v.commit, readCommit, writeCommit);
  });

  describe.each(PROVIDERS)("%s provider", (_name, provider) => {
    test("KeyPackage signatures verify and KeyPackageRefs agree across providers", async () => {
      const refs: string[] = [];
      for (const v of vectors ?? []) {
        const kp = keyPackageOf(v.mls_key_package);
        const cs = await ciphersuiteImpl(kp.ciphersuite, provider);
        const key = kp.leafNode.signatureKey;
        // §10.1: SignWithLabel(leaf_node.signature_key, "KeyPackageTBS", KeyPackageTBS).
        const tbs = encode(kp, writeKeyPackageTbs);
        expect(await verifyWithLabel(key, "KeyPackageTBS", tbs, kp.signature, cs.signature)).toBe(true);
        // §7.2: SignWithLabel(signature_key, "LeafNodeTBS", LeafNodeTBS), source key_package.
        const leafTbs = encode(kp.leafNode, (w, l) => writeLeafNodeTbs(w, l));
        expect(await verifyWithLabel(key, "LeafNodeTBS", leafTbs, kp.leafNode.signature, cs.signature)).toBe(
          true,
        );
        const tampered: KeyPackage = { ...kp, initKey: kp.initKey.map((b, i) => (i === 0 ? b ^ 1 : b)) };
        const tamperedTbs = encode(tampered, writeKeyPackageTbs);
        expect(await verifyWithLabel(key, "KeyPackageTBS", tamperedTbs, kp.signature, cs.signature)).toBe(
          false,
        );
        // §5.2: KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", the encoded KeyPackage).
        const encoded = encode(kp, writeKeyPackage);
        expect(bytesToHex(encoded)).toBe(v.mls_key_package.slice(8)); // after version and wire_format
        refs.push(bytesToHex(await makeKeyPackageRef(encoded, cs.hash)));
      }
      expect(refs).toHaveLength(vectors?.length ?? 0);
      refsByProvider.push(refs);
      if (refsByProvider.length > 1) expect(refs).toEqual(refsByProvider[0]);
    });
  });
});

const refsByProvider: string[][] = [];
