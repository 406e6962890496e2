/**
 * Differential fuzzing of our TLS codecs (RFC 9420 §2.1) against ts-mls 1.6.4, ~3 s in all.
 *
 * Inputs: the valid encodings of messages.json (MLSMessages, ratchet tree, GroupSecrets, the
 * seven proposal bodies, Commit), mutated by a seeded PRNG (byte flips, truncations, insertions,
 * deletions, and varint widenings). For every input:
 *
 * 1. our decoder either accepts it or throws a DecodeError, never anything else;
 * 2. what ours accepts re-encodes to the very same bytes (our decoders are canonical: they refuse
 *    every second encoding of a value);
 * 3. when ts-mls's decoder also accepts it fully (all bytes read), ts-mls's re-encoding of its
 *    value equals ours;
 * 4. when ts-mls accepts it and we refuse, the rule is one of the intended differences:
 *    - "§2.1.2 minimal varint": ts-mls reads a non-minimal varint (and re-encodes it minimally);
 *    - "§2.1.1 optional presence": ts-mls reads a presence octet > 1 as "absent";
 *    - "§2.1 unknown enum value": ts-mls keeps some unknown code points that RFC 9420 gives no
 *      way to skip;
 *    - any rule, when ts-mls read a proposal as its "custom proposal" `{proposalType,
 *      proposalData}`: ts-mls reads an unknown proposal type's body as `opaque<V>`, and falls
 *      back to that form even for the seven types of §12.1 when their body does not decode;
 *      §12.1 has no such form, so we refuse (usually "§2.1 truncated").
 *    - "§2.1 trailing bytes" never: we only compare full decodes.
 *    (Non-zero PrivateMessageContent padding, the third intended difference, is inside a
 *    ciphertext here; negative.test.ts covers it.)
 * Inputs ts-mls refuses and we accept are counted, not failed: our decoders check syntax only,
 * where ts-mls also checks some semantics (e.g. versions in Capabilities).
 *
 * Reproduce a failure with the seed and iteration it prints: FUZZ_SEED=<seed> (and FUZZ_MS for a
 * longer run).
 */
import { describe, expect, test } from "vitest";
import type { Decoder } from "ts-mls/codec/tlsDecoder.js";
import type { Encoder } from "ts-mls/codec/tlsEncoder.js";
import { decodeCommit, encodeCommit } from "ts-mls/commit.js";
import { decodeGroupSecrets, encodeGroupSecrets } from "ts-mls/groupSecrets.js";
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
import { DecodeError, decodeExact, encode, type Reader, type Writer } from "../../../src/mls/codec/index.js";
import {
  readCommit,
  readProposalBody,
  writeCommit,
  writeProposalBody,
} from "../../../src/mls/framing/codec.js";
import { ProposalTypes, type Proposal } from "../../../src/mls/framing/types.js";
import {
  readGroupSecrets,
  readMlsMessage,
  writeGroupSecrets,
  writeMlsMessage,
} from "../../../src/mls/group/codec.js";
import { readRatchetTree, writeRatchetTree } from "../../../src/mls/tree/codec.js";
import { bytesToHex, hex, loadVectors, reportMissing } from "../../vectors/helpers.js";
import { prng } from "../../helpers/prng.js";

const SEED = Number(process.env.FUZZ_SEED ?? 0x9420);
const BUDGET_MS = Number(process.env.FUZZ_MS ?? 2500);

/** Rules by which we may refuse what ts-mls accepts (see the file comment). */
const INTENDED_DIFFERENCES: ReadonlySet<string> = new Set([
  "§2.1.2 minimal varint",
  "§2.1.1 optional presence",
  "§2.1 unknown enum value",
]);

interface Target {
  readonly name: string;
  readonly read: (r: Reader) => unknown;
  readonly write: (w: Writer, v: never) => void;
  readonly tsDecode: Decoder<unknown>;
  readonly tsEncode: Encoder<never>;
}

type Field =
  | "mls_welcome"
  | "mls_group_info"
  | "mls_key_package"
  | "ratchet_tree"
  | "group_secrets"
  | "add_proposal"
  | "update_proposal"
  | "remove_proposal"
  | "pre_shared_key_proposal"
  | "re_init_proposal"
  | "external_init_proposal"
  | "group_context_extensions_proposal"
  | "commit"
  | "public_message_application"
  | "public_message_proposal"
  | "public_message_commit"
  | "private_message";

const mls: Omit<Target, "name"> = {
  read: readMlsMessage,
  write: writeMlsMessage,
  tsDecode: decodeMlsMessage,
  tsEncode: encodeMlsMessage,
};
const proposal = (
  type: number,
  tsDecode: Decoder<unknown>,
  tsEncode: Encoder<never>,
): Omit<Target, "name"> => ({
  read: (r) => readProposalBody(r, type),
  write: writeProposalBody as (w: Writer, v: Proposal) => void,
  tsDecode,
  tsEncode,
});

const TARGETS: Readonly<Record<Field, Omit<Target, "name">>> = {
  mls_welcome: mls,
  mls_group_info: mls,
  mls_key_package: mls,
  public_message_application: mls,
  public_message_proposal: mls,
  public_message_commit: mls,
  private_message: mls,
  ratchet_tree: {
    read: readRatchetTree,
    write: writeRatchetTree,
    tsDecode: decodeRatchetTree,
    tsEncode: encodeRatchetTree,
  },
  group_secrets: {
    read: readGroupSecrets,
    write: writeGroupSecrets,
    tsDecode: decodeGroupSecrets,
    tsEncode: encodeGroupSecrets,
  },
  commit: { read: readCommit, write: writeCommit, tsDecode: decodeCommit, tsEncode: encodeCommit },
  add_proposal: proposal(ProposalTypes.add, decodeAdd, encodeAdd),
  update_proposal: proposal(ProposalTypes.update, decodeUpdate, encodeUpdate),
  remove_proposal: proposal(ProposalTypes.remove, decodeRemove, encodeRemove),
  pre_shared_key_proposal: proposal(ProposalTypes.psk, decodePSK, encodePSK),
  re_init_proposal: proposal(ProposalTypes.reinit, decodeReinit, encodeReinit),
  external_init_proposal: proposal(ProposalTypes.external_init, decodeExternalInit, encodeExternalInit),
  group_context_extensions_proposal: proposal(
    ProposalTypes.group_context_extensions,
    decodeGroupContextExtensions,
    encodeGroupContextExtensions,
  ),
};

/** One to three mutations of `b`. */
function mutate(b: Uint8Array, rnd: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(rnd() * n);
  let out = Array.from(b);
  const rounds = 1 + int(3);
  for (let k = 0; k < rounds; k++) {
    const at = int(out.length + 1);
    switch (int(6)) {
      case 0: // flip one bit
        if (at < out.length) out[at] = (out[at] as number) ^ (1 << int(8));
        break;
      case 1: // replace a byte (small values hit enum and length fields)
        if (at < out.length) out[at] = rnd() < 0.5 ? int(8) : int(256);
        break;
      case 2: // truncate
        out = out.slice(0, at);
        break;
      case 3: // insert 1-4 random bytes
        out.splice(at, 0, ...Array.from({ length: 1 + int(4) }, () => int(256)));
        break;
      case 4: // delete 1-4 bytes
        out.splice(at, 1 + int(4));
        break;
      default: // widen a 1-byte value into a 2-byte varint (a non-minimal length when it is one)
        if (at < out.length && (out[at] as number) < 0x40) out.splice(at, 1, 0x40, out[at] as number);
    }
  }
  return Uint8Array.from(out);
}

/** ts-mls's full decode and its re-encoding, or undefined when it refuses (or reads fewer bytes). */
function tsRoundTrip(t: Target, input: Uint8Array): { value: unknown; bytes: Uint8Array } | undefined {
  try {
    const d = t.tsDecode(input, 0);
    if (d === undefined || d[1] !== input.length) return undefined;
    return { value: d[0], bytes: t.tsEncode(d[0] as never) };
  } catch {
    return undefined;
  }
}

/** True when a ts-mls value holds a "custom proposal" (`proposalData`, see the file comment). */
function hasCustomProposal(v: unknown): boolean {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array) return false;
  if ("proposalData" in v) return true;
  return Object.values(v).some(hasCustomProposal);
}

const vectors = loadVectors<Record<Field, string>>("messages.json");
reportMissing("messages.json", vectors);

describe.skipIf(vectors === undefined)("differential codec fuzzing (messages.json, seeded)", () => {
  test(`seed ${SEED}: DecodeError only, canonical re-encoding, agreement with ts-mls`, () => {
    const corpus: Array<{ readonly target: Target; readonly bytes: Uint8Array }> = [];
    for (const v of (vectors ?? []).slice(0, 40))
      for (const [name, t] of Object.entries(TARGETS))
        corpus.push({ target: { name, ...t }, bytes: hex(v[name as Field]) });

    const rnd = prng(SEED);
    const stats = { runs: 0, oursAccept: 0, bothAccept: 0, onlyTsMls: 0, onlyOurs: 0, refusedBoth: 0 };
    const differences = new Map<string, number>();
    const onlyOursSamples: string[] = [];
    const deadline = performance.now() + BUDGET_MS;
    for (let i = 0; performance.now() < deadline; i++) {
      const { target, bytes } = corpus[Math.floor(rnd() * corpus.length)] as (typeof corpus)[number];
      const input = mutate(bytes, rnd);
      const where = `seed ${SEED} iteration ${i} ${target.name} input ${bytesToHex(input)}`;
      stats.runs++;
      let ours: Uint8Array | undefined;
      let refusal: DecodeError | undefined;
      try {
        const value = decodeExact(input, target.read);
        ours = encode(value as never, target.write);
      } catch (e) {
        // 1. nothing but DecodeError.
        if (!(e instanceof DecodeError)) throw new Error(`${where}: threw ${String(e)}`, { cause: e });
        refusal = e;
      }
      // 2. canonical: accepted bytes re-encode to themselves.
      if (ours !== undefined) {
        stats.oursAccept++;
        expect(bytesToHex(ours), where).toBe(bytesToHex(input));
      }
      const theirs = tsRoundTrip(target, input);
      if (ours !== undefined && theirs !== undefined) {
        stats.bothAccept++;
        // 3. both accept: the same encoding.
        expect(bytesToHex(theirs.bytes), where).toBe(bytesToHex(ours));
      } else if (theirs !== undefined && refusal !== undefined) {
        stats.onlyTsMls++;
        const why = hasCustomProposal(theirs.value) ? "ts-mls custom proposal" : refusal.rule;
        differences.set(why, (differences.get(why) ?? 0) + 1);
        // 4. we refuse what ts-mls accepts only for an intended difference.
        expect(
          why === "ts-mls custom proposal" || INTENDED_DIFFERENCES.has(why),
          `${where}: refused with ${why}`,
        ).toBe(true);
      } else if (ours !== undefined) {
        stats.onlyOurs++;
        if (onlyOursSamples.length < 5) onlyOursSamples.push(`${target.name} ${bytesToHex(input)}`);
      } else stats.refusedBoth++;
    }
    if (process.env.FUZZ_VERBOSE)
      console.log({ seed: SEED, ...stats, differences: Object.fromEntries(differences), onlyOursSamples });
    expect(stats.runs).toBeGreaterThan(100);
    expect(stats.bothAccept).toBeGreaterThan(0);
  });
});
