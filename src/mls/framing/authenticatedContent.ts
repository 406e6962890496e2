/**
 * RFC 9420 §6.1 AuthenticatedContent, the authenticated form of a message whatever its wire
 * format, and the encodings built from it:
 *
 *   struct { WireFormat wire_format; FramedContent content; FramedContentAuthData auth; } AuthenticatedContent;
 *   struct { WireFormat wire_format; FramedContent content; opaque signature<V>; } ConfirmedTranscriptHashInput; (§8.2)
 *   ProposalRef = MakeProposalRef(AuthenticatedContent)                                                     (§5.2)
 *
 * The ConfirmedTranscriptHashInput of a commit is its AuthenticatedContent without the
 * confirmation tag.
 */
import { Writer, type Reader } from "../codec/index.js";
import { makeProposalRef } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import {
  readFramedContent,
  readFramedContentAuthData,
  writeFramedContent,
  writeFramedContentAuthData,
} from "./codec.js";
import type { FramedContent, FramedContentAuthData } from "./types.js";

/** §6.1 AuthenticatedContent. */
export interface AuthenticatedContent {
  readonly wireFormat: number;
  readonly content: FramedContent;
  readonly auth: FramedContentAuthData;
}

/** §6.1 AuthenticatedContent. */
export function writeAuthenticatedContent(w: Writer, ac: AuthenticatedContent): void {
  w.u16(ac.wireFormat);
  writeFramedContent(w, ac.content);
  writeFramedContentAuthData(w, ac.auth, ac.content.contentType);
}

/** §6.1 AuthenticatedContent. */
export function readAuthenticatedContent(r: Reader): AuthenticatedContent {
  const wireFormat = r.u16();
  const content = readFramedContent(r);
  const auth = readFramedContentAuthData(r, content.contentType);
  return { wireFormat, content, auth };
}

/** The encoded AuthenticatedContent. */
export function encodeAuthenticatedContent(ac: AuthenticatedContent): Uint8Array {
  const w = new Writer(256);
  writeAuthenticatedContent(w, ac);
  return w.finish();
}

/** §8.2 ConfirmedTranscriptHashInput of a commit, encoded. */
export function confirmedTranscriptHashInput(ac: {
  readonly wireFormat: number;
  readonly content: FramedContent;
  readonly auth: { readonly signature: Uint8Array };
}): Uint8Array {
  const w = new Writer(256);
  w.u16(ac.wireFormat);
  writeFramedContent(w, ac.content);
  w.vec(ac.auth.signature);
  return w.finish();
}

/** §5.2 ProposalRef of a proposal message: MakeProposalRef(the encoded AuthenticatedContent). */
export function proposalRef(cs: CiphersuiteImpl, ac: AuthenticatedContent): Promise<Uint8Array> {
  return makeProposalRef(encodeAuthenticatedContent(ac), cs.hash);
}
