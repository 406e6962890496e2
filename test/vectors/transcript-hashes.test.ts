/**
 * transcript-hashes.json (RFC 9420 Section 8.2): confirmation tag (MAC),
 * confirmed and interim transcript hashes.
 */
import { expect } from "vitest";
import { decodeAuthenticatedContent } from "ts-mls/authenticatedContent.js";
import { createConfirmedHash, createInterimHash } from "ts-mls/transcriptHash.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

interface TranscriptVector {
  cipher_suite: number;
  confirmation_key: string;
  authenticated_content: string;
  interim_transcript_hash_before: string;
  confirmed_transcript_hash_after: string;
  interim_transcript_hash_after: string;
}

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<TranscriptVector>("transcript-hashes.json", PROVIDERS, async (v, cs) => {
  const decoded = decodeAuthenticatedContent(hex(v.authenticated_content), 0);
  if (decoded === undefined) throw new Error("cannot decode AuthenticatedContent");
  const [ac] = decoded;
  if (ac.content.contentType !== "commit" || ac.auth.contentType !== "commit")
    throw new Error("not a commit");
  const tag = ac.auth.confirmationTag;

  const confirmed = hex(v.confirmed_transcript_hash_after);
  expect(await cs.hash.verifyMac(hex(v.confirmation_key), tag, confirmed)).toBe(true);
  expect(bytesToHex(await cs.hash.mac(hex(v.confirmation_key), confirmed))).toBe(bytesToHex(tag));
  const wrong = new Uint8Array(tag);
  wrong[0]! ^= 1;
  expect(await cs.hash.verifyMac(hex(v.confirmation_key), wrong, confirmed)).toBe(false);

  const input = { wireformat: ac.wireformat, content: ac.content, signature: ac.auth.signature };
  expect(bytesToHex(await createConfirmedHash(hex(v.interim_transcript_hash_before), input, cs.hash))).toBe(
    v.confirmed_transcript_hash_after,
  );
  expect(bytesToHex(await createInterimHash(confirmed, tag, cs.hash))).toBe(v.interim_transcript_hash_after);
});
