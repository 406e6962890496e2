/** RFC 9420 §6 framing and the §12.1 proposals / §12.4 commit it carries. */
import type { Extension, KeyPackage, LeafNode } from "../keypackage/types.js";
import type { PreSharedKeyId } from "../keyschedule/types.js";
import type { UpdatePath } from "../treekem/types.js";

/** §6 WireFormat. */
export const WireFormats = {
  mls_public_message: 1,
  mls_private_message: 2,
  mls_welcome: 3,
  mls_group_info: 4,
  mls_key_package: 5,
} as const;

/** §6 ContentType. */
export const ContentTypes = { application: 1, proposal: 2, commit: 3 } as const;

/** §6 SenderType. */
export const SenderTypes = { member: 1, external: 2, new_member_proposal: 3, new_member_commit: 4 } as const;

/** §6 Sender. */
export type Sender =
  | { readonly senderType: 1; readonly leafIndex: number }
  | { readonly senderType: 2; readonly senderIndex: number }
  | { readonly senderType: 3 }
  | { readonly senderType: 4 };

/** §17.4 ProposalType code points. */
export const ProposalTypes = {
  add: 1,
  update: 2,
  remove: 3,
  psk: 4,
  reinit: 5,
  external_init: 6,
  group_context_extensions: 7,
} as const;

/** §12.1 Proposal. */
export type Proposal =
  | { readonly proposalType: 1; readonly keyPackage: KeyPackage }
  | { readonly proposalType: 2; readonly leafNode: LeafNode }
  | { readonly proposalType: 3; readonly removed: number }
  | { readonly proposalType: 4; readonly psk: PreSharedKeyId }
  | {
      readonly proposalType: 5;
      readonly groupId: Uint8Array;
      readonly version: number;
      readonly ciphersuite: number;
      readonly extensions: readonly Extension[];
    }
  | { readonly proposalType: 6; readonly kemOutput: Uint8Array }
  | { readonly proposalType: 7; readonly extensions: readonly Extension[] };

/** §12.4 ProposalOrRefType. */
export const ProposalOrRefTypes = { proposal: 1, reference: 2 } as const;

/** §12.4 ProposalOrRef. `reference` is a §5.2 ProposalRef. */
export type ProposalOrRef =
  { readonly type: 1; readonly proposal: Proposal } | { readonly type: 2; readonly reference: Uint8Array };

/** §12.4 Commit. */
export interface Commit {
  readonly proposals: readonly ProposalOrRef[];
  readonly path: UpdatePath | undefined;
}

/** §6 FramedContent with its body by content type. */
export type FramedContentBody =
  | { readonly contentType: 1; readonly applicationData: Uint8Array }
  | { readonly contentType: 2; readonly proposal: Proposal }
  | { readonly contentType: 3; readonly commit: Commit };

export type FramedContent = {
  readonly groupId: Uint8Array;
  readonly epoch: bigint;
  readonly sender: Sender;
  readonly authenticatedData: Uint8Array;
} & FramedContentBody;

/** §6.1 FramedContentAuthData: `confirmationTag` present iff content type is commit. */
export interface FramedContentAuthData {
  readonly signature: Uint8Array;
  readonly confirmationTag: Uint8Array | undefined;
}

/** §6.2 PublicMessage: `membershipTag` present iff the sender is a member. */
export interface PublicMessage {
  readonly content: FramedContent;
  readonly auth: FramedContentAuthData;
  readonly membershipTag: Uint8Array | undefined;
}

/** §6.3 PrivateMessage. */
export interface PrivateMessage {
  readonly groupId: Uint8Array;
  readonly epoch: bigint;
  readonly contentType: number;
  readonly authenticatedData: Uint8Array;
  readonly encryptedSenderData: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** §6.3.2 SenderData. */
export interface SenderData {
  readonly leafIndex: number;
  readonly generation: number;
  readonly reuseGuard: Uint8Array;
}

/**
 * §6.3.1 PrivateMessageContent: the body selected by PrivateMessage.content_type, its auth data,
 * and `padding` zero octets (the count; the octets themselves are always zero).
 */
export type PrivateMessageContent = FramedContentBody & {
  readonly auth: FramedContentAuthData;
  readonly padding: number;
};
