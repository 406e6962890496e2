/**
 * Our versioned wrapper around the engine's group state, as stored in `conversations.state`:
 *
 *   struct {
 *     opaque magic[4] = "MKCS";
 *     uint16 format_version = 2;
 *     opaque engine<V>;          // "mls-keypackages" (our engine, src/mls/group/)
 *     opaque engine_version<V>;  // "1": the GroupState encoding version (src/mls/group/stateEncoding.ts)
 *     uint16 cipher_suite;
 *     uint64 epoch;
 *     opaque engine_state<V>;    // MlsGroup.encode(): the GroupState encoding (secret)
 *   } ConversationState;         // <V>: RFC 9420 §2.1.2 variable-length vectors
 *
 * The header (suite, epoch) is readable without decoding the engine state. Anything we do
 * not know how to read is refused with `UnsupportedConversationState`, never misread — in
 * particular a state of format 1, written by the previous engine (an external MLS library whose
 * private encoding no release of this library shipped), is named as such.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { isCiphersuite, type Ciphersuite } from "../mls/ciphersuite.js";
import { ENGINE_NAME, ENGINE_VERSION, READABLE_ENGINE_VERSIONS, MlsGroup } from "../mls/group.js";
import { DecodeError, Reader, Writer } from "../mls/codec/index.js";

const MAGIC = Uint8Array.from([0x4d, 0x4b, 0x43, 0x53]); // "MKCS"
export const CONVERSATION_STATE_FORMAT = 2;
/** Format 1: the previous engine's state (no longer readable; its header names the engine). */
const PREVIOUS_ENGINE_FORMAT = 1;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export interface StateHeader {
  formatVersion: number;
  engine: string;
  engineVersion: string;
  ciphersuite: Ciphersuite;
  epoch: bigint;
}

function unsupported(why: string, details: Record<string, unknown> = {}): never {
  throw new MlsKeypackagesError(
    ErrorCode.UnsupportedConversationState,
    `unsupported conversation state: ${why}`,
    details,
  );
}

const ENGINE_NAME_BYTES = encoder.encode(ENGINE_NAME);
const ENGINE_VERSION_BYTES = encoder.encode(ENGINE_VERSION);

export function encodeConversationState(group: MlsGroup): Uint8Array {
  // the engine state is written in place (one encoding, one copy out)
  return new Writer(group.encodedSizeHint() + 64)
    .raw(MAGIC)
    .u16(CONVERSATION_STATE_FORMAT)
    .vec(ENGINE_NAME_BYTES)
    .vec(ENGINE_VERSION_BYTES)
    .u16(group.ciphersuite)
    .u64(group.epoch())
    .vecWith((w) => group.encodeInto(w))
    .finish();
}

/** Reads `engine<V>` and `engine_version<V>` at the reader's offset; undefined when malformed. */
function engineOf(r: Reader): { engine: string; version: string } | undefined {
  try {
    const engine = decoder.decode(r.vec());
    return { engine, version: decoder.decode(r.vec()) };
  } catch {
    return undefined;
  }
}

/** Parse the header and locate the engine state; refuses unknown formats and engines. */
export function parseConversationState(bytes: Uint8Array): { header: StateHeader; engineState: Uint8Array } {
  if (!(bytes instanceof Uint8Array) || bytes.length < 6) unsupported("too short");
  for (let i = 0; i < 4; i++)
    if (bytes[i] !== MAGIC[i]) unsupported("not in this library's format (bad magic)");
  const r = new Reader(bytes, 4);
  const formatVersion = r.u16();
  if (formatVersion === PREVIOUS_ENGINE_FORMAT) {
    const e = engineOf(r);
    const what = e === undefined ? "the previous engine" : `${e.engine} ${e.version}`;
    unsupported(
      `written by ${what} (conversation state format 1), which this version no longer reads; ` +
        "no release stored it: wipe the conversation and join it again",
      { formatVersion, ...(e === undefined ? {} : { engine: e.engine, engineVersion: e.version }) },
    );
  }
  if (formatVersion !== CONVERSATION_STATE_FORMAT)
    unsupported(`format version ${formatVersion}`, { formatVersion });
  const e = engineOf(r);
  if (e === undefined) unsupported("truncated or malformed engine name");
  const { engine, version: engineVersion } = e;
  if (engine !== ENGINE_NAME) unsupported(`engine ${JSON.stringify(engine)}`);
  if (!READABLE_ENGINE_VERSIONS.includes(engineVersion)) {
    unsupported(
      `${engine} state version ${JSON.stringify(engineVersion)} (readable: ${READABLE_ENGINE_VERSIONS.join(", ")})`,
    );
  }
  let suite: number;
  let epoch: bigint;
  let engineState: Uint8Array;
  try {
    suite = r.u16();
    epoch = r.u64();
    engineState = r.vec();
    r.finish();
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    unsupported(err.rule === "§2.1 trailing bytes" ? "trailing bytes" : "truncated");
  }
  if (!isCiphersuite(suite)) unsupported(`cipher suite ${suite}`);
  return { header: { formatVersion, engine, engineVersion, ciphersuite: suite, epoch }, engineState };
}

export async function decodeConversationState(bytes: Uint8Array): Promise<MlsGroup> {
  const { header, engineState } = parseConversationState(bytes);
  const group = await MlsGroup.decode(header.ciphersuite, engineState);
  if (group.epoch() !== header.epoch) unsupported("header epoch differs from the engine state");
  return group;
}
