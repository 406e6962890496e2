/**
 * message-protection.json (RFC 9420 Section 6): unprotect the given
 * PublicMessage/PrivateMessage for proposal, commit and application content,
 * then protect-and-unprotect each again with our provider.
 */
import { describe, expect, test } from "vitest";
import type { CiphersuiteImpl } from "ts-mls";
import type { AuthenticatedContent } from "ts-mls/authenticatedContent.js";
import { decodeCommit, encodeCommit } from "ts-mls/commit.js";
import { getCiphersuiteNameFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { defaultCapabilities } from "ts-mls/defaultCapabilities.js";
import { createContentCommitSignature } from "ts-mls/framedContent.js";
import type { GroupContext } from "ts-mls/groupContext.js";
import { defaultKeyRetentionConfig } from "ts-mls/keyRetentionConfig.js";
import { decodeMlsMessage } from "ts-mls/message.js";
import {
  protect,
  protectApplicationData,
  protectProposal,
  unprotectPrivateMessage,
} from "ts-mls/messageProtection.js";
import {
  protectProposalPublic,
  protectPublicMessage,
  unprotectPublicMessage,
} from "ts-mls/messageProtectionPublic.js";
import { defaultPaddingConfig } from "ts-mls/paddingConfig.js";
import { decodeProposal, encodeProposal } from "ts-mls/proposal.js";
import type { RatchetTree } from "ts-mls/ratchetTree.js";
import { createSecretTree } from "ts-mls/secretTree.js";
import {
  PROVIDERS,
  type SkippedVector,
  reportMissing,
  bytesToHex,
  cases,
  hex,
  impl,
  loadVectors,
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

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

const vectors = loadVectors<MessageProtectionVector>("message-protection.json");
reportMissing("message-protection.json", vectors);

/** Two-leaf tree whose leaf 1 (the sender in these vectors) carries signature_pub. */
function treeWithSender(signaturePub: Uint8Array): RatchetTree {
  return [
    undefined,
    undefined,
    {
      nodeType: "leaf",
      leaf: {
        leafNodeSource: "commit",
        hpkePublicKey: new Uint8Array(),
        signaturePublicKey: signaturePub,
        capabilities: defaultCapabilities(),
        parentHash: new Uint8Array(),
        extensions: [],
        signature: new Uint8Array(),
        credential: { credentialType: "basic", identity: new Uint8Array() },
      },
    },
  ];
}

async function unprotectPrivate(
  v: MessageProtectionVector,
  gc: GroupContext,
  cs: CiphersuiteImpl,
  bytes: Uint8Array,
) {
  const m = decodeMlsMessage(bytes, 0)?.[0];
  if (m === undefined || m.wireformat !== "mls_private_message") throw new Error("not a PrivateMessage");
  return unprotectPrivateMessage(
    hex(v.sender_data_secret),
    m.privateMessage,
    await createSecretTree(2, hex(v.encryption_secret), cs.kdf),
    treeWithSender(hex(v.signature_pub)),
    gc,
    defaultKeyRetentionConfig,
    cs,
  );
}

describe.skipIf(vectors === undefined)("message-protection vectors", () => {
  describe.each(PROVIDERS)("%s provider", (_name, provider) => {
    test.each(cases(vectors))("%s", async (_label, v) => {
      const cs = await impl(provider, v.cipher_suite);
      const gc: GroupContext = {
        version: "mls10",
        cipherSuite: getCiphersuiteNameFromId(v.cipher_suite as CiphersuiteId),
        groupId: hex(v.group_id),
        epoch: BigInt(v.epoch),
        treeHash: hex(v.tree_hash),
        confirmedTranscriptHash: hex(v.confirmed_transcript_hash),
        extensions: [],
      };
      const tree = treeWithSender(hex(v.signature_pub));
      const signPriv = hex(v.signature_priv);
      const membershipKey = hex(v.membership_key);
      const proposal = decodeProposal(hex(v.proposal), 0)?.[0];
      const commit = decodeCommit(hex(v.commit), 0)?.[0];
      if (proposal === undefined || commit === undefined) throw new Error("cannot decode proposal/commit");

      // --- the vectors' own messages ---
      for (const [bytes, kind] of [
        [v.proposal_pub, "proposal"],
        [v.commit_pub, "commit"],
      ] as const) {
        const m = decodeMlsMessage(hex(bytes), 0)?.[0];
        if (m === undefined || m.wireformat !== "mls_public_message") throw new Error("not a PublicMessage");
        const u = await unprotectPublicMessage(membershipKey, gc, tree, m.publicMessage, cs);
        if (kind === "proposal") {
          if (u.content.contentType !== "proposal") throw new Error("expected proposal");
          expect(bytesToHex(encodeProposal(u.content.proposal))).toBe(v.proposal);
        } else {
          if (u.content.contentType !== "commit") throw new Error("expected commit");
          expect(bytesToHex(encodeCommit(u.content.commit))).toBe(v.commit);
        }
      }
      const pp = await unprotectPrivate(v, gc, cs, hex(v.proposal_priv));
      if (pp.content.content.contentType !== "proposal") throw new Error("expected proposal");
      expect(bytesToHex(encodeProposal(pp.content.content.proposal))).toBe(v.proposal);
      const pc = await unprotectPrivate(v, gc, cs, hex(v.commit_priv));
      if (pc.content.content.contentType !== "commit") throw new Error("expected commit");
      expect(bytesToHex(encodeCommit(pc.content.content.commit))).toBe(v.commit);
      const pa = await unprotectPrivate(v, gc, cs, hex(v.application_priv));
      if (pa.content.content.contentType !== "application") throw new Error("expected application");
      expect(bytesToHex(pa.content.content.applicationData)).toBe(v.application);

      // --- protect with our provider, unprotect again ---
      const pubProp = await protectProposalPublic(
        signPriv,
        membershipKey,
        gc,
        new Uint8Array(),
        proposal,
        1,
        cs,
      );
      const upp = await unprotectPublicMessage(membershipKey, gc, tree, pubProp.publicMessage, cs);
      if (upp.content.contentType !== "proposal") throw new Error("expected proposal");
      expect(bytesToHex(encodeProposal(upp.content.proposal))).toBe(v.proposal);

      const confirmationTag = cs.rng.randomBytes(cs.kdf.size);
      const signed = await createContentCommitSignature(
        gc,
        "mls_public_message",
        commit,
        { senderType: "member", leafIndex: 1 },
        new Uint8Array(),
        signPriv,
        cs.signature,
      );
      const ac: AuthenticatedContent = {
        wireformat: "mls_public_message",
        content: signed.framedContent,
        auth: { contentType: "commit", signature: signed.signature, confirmationTag },
      };
      const pubCommit = await protectPublicMessage(membershipKey, gc, ac, cs);
      const upc = await unprotectPublicMessage(membershipKey, gc, tree, pubCommit, cs);
      if (upc.content.contentType !== "commit") throw new Error("expected commit");
      expect(bytesToHex(encodeCommit(upc.content.commit))).toBe(v.commit);

      const secretTree = async () => createSecretTree(2, hex(v.encryption_secret), cs.kdf);
      const unprotectOurs = async (msg: Parameters<typeof unprotectPrivateMessage>[1]) =>
        unprotectPrivateMessage(
          hex(v.sender_data_secret),
          msg,
          await secretTree(),
          tree,
          gc,
          defaultKeyRetentionConfig,
          cs,
        );

      const privProp = await protectProposal(
        signPriv,
        hex(v.sender_data_secret),
        proposal,
        new Uint8Array(),
        gc,
        await secretTree(),
        1,
        defaultPaddingConfig,
        cs,
      );
      const upp2 = await unprotectOurs(privProp.privateMessage);
      if (upp2.content.content.contentType !== "proposal") throw new Error("expected proposal");
      expect(bytesToHex(encodeProposal(upp2.content.content.proposal))).toBe(v.proposal);

      const privApp = await protectApplicationData(
        signPriv,
        hex(v.sender_data_secret),
        hex(v.application),
        new Uint8Array(),
        gc,
        await secretTree(),
        1,
        defaultPaddingConfig,
        cs,
      );
      const upa = await unprotectOurs(privApp.privateMessage);
      if (upa.content.content.contentType !== "application") throw new Error("expected application");
      expect(bytesToHex(upa.content.content.applicationData)).toBe(v.application);

      const signedPriv = await createContentCommitSignature(
        gc,
        "mls_private_message",
        commit,
        { senderType: "member", leafIndex: 1 },
        new Uint8Array(),
        signPriv,
        cs.signature,
      );
      const content = {
        ...signedPriv.framedContent,
        auth: { contentType: "commit" as const, signature: signedPriv.signature, confirmationTag },
      };
      const privCommit = await protect(
        hex(v.sender_data_secret),
        new Uint8Array(),
        gc,
        await secretTree(),
        content,
        1,
        defaultPaddingConfig,
        cs,
      );
      const upc2 = await unprotectOurs(privCommit.privateMessage);
      if (upc2.content.content.contentType !== "commit") throw new Error("expected commit");
      expect(bytesToHex(encodeCommit(upc2.content.content.commit))).toBe(v.commit);
    });
  });
});
