/**
 * transcript-hashes.json (RFC 9420 §8.2) through our code: AuthenticatedContent decoding
 * (src/mls/framing), confirmation tag, confirmed and interim transcript hashes
 * (src/mls/keyschedule/transcript.ts).
 */
import { expect } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { decodeExact } from "../../src/mls/codec/index.js";
import {
  confirmedTranscriptHashInput,
  encodeAuthenticatedContent,
  readAuthenticatedContent,
} from "../../src/mls/framing/authenticatedContent.js";
import {
  confirmationTag,
  confirmedTranscriptHash,
  interimTranscriptHash,
  verifyConfirmationTag,
} from "../../src/mls/keyschedule/transcript.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

interface TranscriptVector {
  cipher_suite: number;
  confirmation_key: string;
  authenticated_content: string;
  interim_transcript_hash_before: string;
  confirmed_transcript_hash_after: string;
  interim_transcript_hash_after: string;
}

/** None: every case passes with every provider. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<TranscriptVector>("transcript-hashes.json", PROVIDERS, async (v, cs) => {
  const ac = decodeExact(hex(v.authenticated_content), readAuthenticatedContent);
  expect(bytesToHex(encodeAuthenticatedContent(ac))).toBe(v.authenticated_content);
  expect(ac.content.contentType).toBe(3);
  const tag = ac.auth.confirmationTag;
  if (tag === undefined) throw new Error("a commit without a confirmation tag");

  const key = hex(v.confirmation_key);
  const confirmed = hex(v.confirmed_transcript_hash_after);
  expect(bytesToHex(await confirmationTag(cs, key, confirmed))).toBe(bytesToHex(tag));
  await verifyConfirmationTag(cs, key, confirmed, tag);
  const wrong = new Uint8Array(tag);
  wrong[0]! ^= 1;
  await expect(verifyConfirmationTag(cs, key, confirmed, wrong)).rejects.toMatchObject({
    code: ErrorCode.InvalidCommit,
    rule: "§8.2 confirmation_tag",
  });

  const input = confirmedTranscriptHashInput(ac);
  expect(bytesToHex(await confirmedTranscriptHash(cs, hex(v.interim_transcript_hash_before), input))).toBe(
    v.confirmed_transcript_hash_after,
  );
  expect(bytesToHex(await interimTranscriptHash(cs, confirmed, tag))).toBe(v.interim_transcript_hash_after);
});
