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
 * particular a state of format 1, written by the previous engine (ts-mls 1.6.4, whose private
 * encoding no release of this library shipped), is named as such.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { readVarint } from "../credential/credentialRef.js";
import { isCiphersuite, type Ciphersuite } from "../mls/ciphersuite.js";
import { ENGINE_NAME, ENGINE_VERSION, READABLE_ENGINE_VERSIONS, MlsGroup } from "../mls/group.js";
import { concatBytes, encodeVarBytes } from "../mls/tls.js";

const MAGIC = Uint8Array.from([0x4d, 0x4b, 0x43, 0x53]); // "MKCS"
export const CONVERSATION_STATE_FORMAT = 2;
/** Format 1: the ts-mls 1.6.4 engine state (no longer readable). */
const TS_MLS_FORMAT = 1;

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

export function encodeConversationState(group: MlsGroup): Uint8Array {
  const head = new Uint8Array(6);
  head.set(MAGIC, 0);
  new DataView(head.buffer).setUint16(4, CONVERSATION_STATE_FORMAT);
  const suiteEpoch = new Uint8Array(10);
  const dv = new DataView(suiteEpoch.buffer);
  dv.setUint16(0, group.ciphersuite);
  dv.setBigUint64(2, group.epoch());
  return concatBytes([
    head,
    encodeVarBytes(encoder.encode(ENGINE_NAME)),
    encodeVarBytes(encoder.encode(ENGINE_VERSION)),
    suiteEpoch,
    encodeVarBytes(group.encode()),
  ]);
}

/** Reads `engine<V>` and `engine_version<V>` from `offset`; undefined when malformed. */
function engineOf(
  bytes: Uint8Array,
  offset: number,
): { engine: string; version: string; offset: number } | undefined {
  const texts: string[] = [];
  for (let i = 0; i < 2; i++) {
    const v = readVarint(bytes, offset);
    if (v === undefined || offset + v[1] + v[0] > bytes.length) return undefined;
    offset += v[1];
    try {
      texts.push(decoder.decode(bytes.subarray(offset, offset + v[0])));
    } catch {
      return undefined;
    }
    offset += v[0];
  }
  return { engine: texts[0] as string, version: texts[1] as string, offset };
}

/** Parse the header and locate the engine state; refuses unknown formats and engines. */
export function parseConversationState(bytes: Uint8Array): { header: StateHeader; engineState: Uint8Array } {
  if (!(bytes instanceof Uint8Array) || bytes.length < 6) unsupported("too short");
  for (let i = 0; i < 4; i++)
    if (bytes[i] !== MAGIC[i]) unsupported("not in this library's format (bad magic)");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const formatVersion = dv.getUint16(4);
  if (formatVersion === TS_MLS_FORMAT) {
    const e = engineOf(bytes, 6);
    const what = e === undefined ? "the previous engine" : `${e.engine} ${e.version}`;
    unsupported(
      `written by ${what} (conversation state format 1), which this version no longer reads; ` +
        "no release stored it: wipe the conversation and join it again",
      { formatVersion, ...(e === undefined ? {} : { engine: e.engine, engineVersion: e.version }) },
    );
  }
  if (formatVersion !== CONVERSATION_STATE_FORMAT)
    unsupported(`format version ${formatVersion}`, { formatVersion });
  const e = engineOf(bytes, 6);
  if (e === undefined) unsupported("truncated or malformed engine name");
  const { engine, version: engineVersion } = e;
  let offset = e.offset;
  if (engine !== ENGINE_NAME) unsupported(`engine ${JSON.stringify(engine)}`);
  if (!READABLE_ENGINE_VERSIONS.includes(engineVersion)) {
    unsupported(
      `${engine} state version ${JSON.stringify(engineVersion)} (readable: ${READABLE_ENGINE_VERSIONS.join(", ")})`,
    );
  }
  if (offset + 10 > bytes.length) unsupported("truncated");
  const suite = dv.getUint16(offset);
  const epoch = dv.getBigUint64(offset + 2);
  offset += 10;
  if (!isCiphersuite(suite)) unsupported(`cipher suite ${suite}`);
  const v = readVarint(bytes, offset);
  if (v === undefined) unsupported("truncated");
  offset += v[1];
  if (offset + v[0] > bytes.length) unsupported("truncated");
  const engineState = bytes.subarray(offset, offset + v[0]);
  offset += v[0];
  if (offset !== bytes.length) unsupported("trailing bytes");
  return { header: { formatVersion, engine, engineVersion, ciphersuite: suite, epoch }, engineState };
}

export async function decodeConversationState(bytes: Uint8Array): Promise<MlsGroup> {
  const { header, engineState } = parseConversationState(bytes);
  const group = await MlsGroup.decode(header.ciphersuite, engineState);
  if (group.epoch() !== header.epoch) unsupported("header epoch differs from the engine state");
  return group;
}
