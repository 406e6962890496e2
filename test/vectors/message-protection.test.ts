/**
 * message-protection.json (RFC 9420 §6) through our framing (src/mls/framing): unprotect the
 * given PublicMessage/PrivateMessage for proposal, commit and application content, then
 * protect each again and unprotect it. Application data as a PublicMessage is refused.
 */
import { describe, expect, test } from "vitest";
import { decodeExact, encode } from "../../src/mls/codec/index.js";
import type { CiphersuiteImpl } from "../../src/mls/crypto/types.js";
import { readCommit, readProposal, writeCommit, writeProposal } from "../../src/mls/framing/codec.js";
import { protectPrivate, unprotectPrivate } from "../../src/mls/framing/private.js";
import { protectPublic, unprotectPublic } from "../../src/mls/framing/public.js";
import {
  SenderTypes,
  type FramedContent,
  type FramedContentBody,
  type PrivateMessage,
  type PublicMessage,
} from "../../src/mls/framing/types.js";
import { readMlsMessage, writeMlsMessage } from "../../src/mls/group/codec.js";
import { SecretTree } from "../../src/mls/keyschedule/secretTree.js";
import type { GroupContext } from "../../src/mls/keyschedule/types.js";
import {
  PROVIDERS,
  type SkippedVector,
  bytesToHex,
  cases,
  hex,
  impl,
  loadVectors,
  reportMissing,
} from "./helpers.js";

interface MessageProtectionVector {
  cipher_suite: number;
  group_id: string;
  epoch: number;
  tree_hash: string;
  confirmed_transcript_hash: string;
  signature_priv: string;
  signature_pub: string;
  encryption_secret: string;
  sender_data_secret: string;
  membership_key: string;
  proposal: string;
  proposal_priv: string;
  proposal_pub: string;
  commit: string;
  commit_priv: string;
  commit_pub: string;
  application: string;
  application_priv: string;
}

/** None: every case passes with every provider. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

const vectors = loadVectors<MessageProtectionVector>("message-protection.json");
reportMissing("message-protection.json", vectors);

/** The PublicMessage or PrivateMessage of an encoded MLSMessage (also checks it re-encodes the same). */
function readMessage(bytes: Uint8Array): PublicMessage | PrivateMessage {
  const m = decodeExact(bytes, readMlsMessage);
  expect(bytesToHex(encode(m, writeMlsMessage))).toBe(bytesToHex(bytes));
  if (m.wireFormat === 1) return m.publicMessage;
  if (m.wireFormat === 2) return m.privateMessage;
  throw new Error(`wire format ${m.wireFormat}`);
}

/** The encoded proposal, commit or application data of a content. */
function bodyHex(b: FramedContentBody): string {
  if (b.contentType === 1) return bytesToHex(b.applicationData);
  if (b.contentType === 2) return bytesToHex(encode(b.proposal, writeProposal));
  return bytesToHex(encode(b.commit, writeCommit));
}

describe.skipIf(vectors === undefined)("message-protection vectors", () => {
  describe.each(PROVIDERS)("%s provider", (_name, provider) => {
    test.each(cases(vectors))("%s", async (_label, v) => {
      const cs: CiphersuiteImpl = await impl(provider, v.cipher_suite);
      const groupContext: GroupContext = {
        version: 1,
        ciphersuite: v.cipher_suite,
        groupId: hex(v.group_id),
        epoch: BigInt(v.epoch),
        treeHash: hex(v.tree_hash),
        confirmedTranscriptHash: hex(v.confirmed_transcript_hash),
        extensions: [],
      };
      const signaturePub = hex(v.signature_pub);
      const signKey = hex(v.signature_priv);
      const membershipKey = hex(v.membership_key);
      const senderDataSecret = hex(v.sender_data_secret);
      const signatureKey = (c: FramedContent): Uint8Array => {
        expect(c.sender).toEqual({ senderType: SenderTypes.member, leafIndex: 1 });
        return signaturePub;
      };
      const publicCtx = { groupContext, membershipKey, signatureKey };
      const freshTree = (): SecretTree => SecretTree.create(cs, 2, hex(v.encryption_secret));
      const privateCtx = () => ({ groupContext, senderDataSecret, secretTree: freshTree(), signatureKey });

      const bodies: ReadonlyArray<readonly [FramedContentBody, string, string | undefined, string]> = [
        [
          { contentType: 2, proposal: decodeExact(hex(v.proposal), readProposal) },
          v.proposal,
          v.proposal_pub,
          v.proposal_priv,
        ],
        [
          { contentType: 3, commit: decodeExact(hex(v.commit), readCommit) },
          v.commit,
          v.commit_pub,
          v.commit_priv,
        ],
        [
          { contentType: 1, applicationData: hex(v.application) },
          v.application,
          undefined,
          v.application_priv,
        ],
      ];
      for (const [body, raw, pub, priv] of bodies) {
        expect(bodyHex(body)).toBe(raw);
        const content: FramedContent = {
          groupId: groupContext.groupId,
          epoch: groupContext.epoch,
          sender: { senderType: SenderTypes.member, leafIndex: 1 },
          authenticatedData: new Uint8Array(),
          ...body,
        };
        const confirmationTag = body.contentType === 3 ? cs.rng.randomBytes(cs.kdf.size) : undefined;

        // --- the vector's PublicMessage, and ours ---
        if (pub !== undefined) {
          const m = readMessage(hex(pub));
          if (!("content" in m)) throw new Error("not a PublicMessage");
          expect(bodyHex((await unprotectPublic(cs, m, publicCtx)).content)).toBe(raw);
          const ours = await protectPublic(cs, {
            content,
            signKey,
            groupContext,
            membershipKey,
            confirmationTag,
          });
          expect(bodyHex((await unprotectPublic(cs, ours, publicCtx)).content)).toBe(raw);
        } else {
          await expect(
            protectPublic(cs, { content, signKey, groupContext, membershipKey }),
          ).rejects.toMatchObject({
            rule: "§6.2 application_in_public",
          });
        }

        // --- the vector's PrivateMessage, and ours ---
        const m = readMessage(hex(priv));
        if (!("ciphertext" in m)) throw new Error("not a PrivateMessage");
        const got = await unprotectPrivate(cs, m, privateCtx());
        expect(bodyHex(got.content.content)).toBe(raw);
        expect(got.content.content.sender).toEqual({ senderType: SenderTypes.member, leafIndex: 1 });

        const ours = await protectPrivate(cs, {
          content,
          signKey,
          groupContext,
          confirmationTag,
          senderDataSecret,
          secretTree: freshTree(),
        });
        const back = await unprotectPrivate(cs, ours.message, privateCtx());
        expect(bodyHex(back.content.content)).toBe(raw);
        expect(back.content.auth.confirmationTag).toEqual(confirmationTag);
      }
    });
  });
});
