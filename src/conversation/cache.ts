/**
 * A small per-database cache of decoded group states. Decoding a stored state costs
 * milliseconds for large groups (the whole ratchet tree is decoded); most operations touch the
 * conversation that was just written. An entry is used only when the stored bytes are exactly
 * the bytes it was decoded from (or encoded to), so a rolled-back transaction or another writer
 * can only cause a miss, never a stale state. Groups are immutable values, but consuming a
 * message key retires the secret tree it came from (RFC 9420 §9.2 deletion): an entry whose
 * group is no longer usable (`isUsable()`, e.g. the version an aborted transaction started from
 * after a message was decrypted) is a miss, and the stored bytes are decoded again.
 */
import type { MlsGroup } from "../mls/group.js";
import { bytesEqual } from "../mls/crypto/bytes.js";

interface Version {
  bytes: Uint8Array;
  group: MlsGroup;
}

/**
 * Up to two versions per conversation: the one last written and the one it was made from,
 * so that an aborted transaction or a transport "retry" (which leave the stored state as it
 * was) still hit.
 */
type Entry = Version[];

/** Conversations kept per database (least recently used are dropped first). */
const LIMIT = 32;
const caches = new WeakMap<object, Map<string, Entry>>();

function cacheOf(owner: object): Map<string, Entry> {
  let m = caches.get(owner);
  if (m === undefined) {
    m = new Map();
    caches.set(owner, m);
  }
  return m;
}

export function cachedGroup(owner: object, key: string, bytes: Uint8Array): MlsGroup | undefined {
  const m = cacheOf(owner);
  const e = m.get(key);
  const hit = e?.find((v) => bytesEqual(v.bytes, bytes));
  if (e === undefined || hit === undefined) return undefined;
  if (!hit.group.isUsable()) {
    const rest = e.filter((v) => v !== hit);
    if (rest.length === 0) m.delete(key);
    else m.set(key, rest);
    return undefined;
  }
  m.delete(key);
  m.set(key, [hit, ...e.filter((v) => v !== hit)]); // conversation most recently used last, version first
  return hit.group;
}

export function rememberGroup(owner: object, key: string, bytes: Uint8Array, group: MlsGroup): void {
  const m = cacheOf(owner);
  const previous = m.get(key)?.[0];
  m.delete(key);
  m.set(
    key,
    previous === undefined || previous.bytes === bytes ? [{ bytes, group }] : [{ bytes, group }, previous],
  );
  while (m.size > LIMIT) {
    const oldest = m.keys().next().value;
    if (oldest === undefined) break;
    m.delete(oldest);
  }
}

export function forgetGroup(owner: object, key: string): void {
  caches.get(owner)?.delete(key);
}
