/**
 * The session's PKI environment (CoreCrypto's `PkiEnvironment`): trust anchors, intermediate CA
 * certificates and CRLs, persisted in the keystore's `kv` table (keys `pki:<kind>:<sha256 hex>`,
 * values the DER), written and read through transactions like every other row.
 */
import type { StagedKeystore } from "../keystore/staging.js";
import { x509Backend } from "./backend.js";
import type { PemOrDer } from "./certificate.js";
import type { X509TrustStore } from "./validate.js";

export type PkiEntryKind = "anchor" | "intermediate" | "crl";

/** One stored trust anchor, intermediate or CRL. */
export interface PkiEntry {
  kind: PkiEntryKind;
  /** SHA-256 hex of the DER: the handle to remove it by. */
  id: string;
  der: Uint8Array;
  /** Subject of a certificate, issuer of a CRL (RFC 4514 text). */
  name: string;
  /** Certificate validity, or a CRL's thisUpdate / nextUpdate. */
  notBefore: Date;
  notAfter: Date | undefined;
}

const PREFIX = "pki:";
const KINDS: readonly PkiEntryKind[] = ["anchor", "intermediate", "crl"];

function keyOf(kind: PkiEntryKind, id: string): string {
  return `${PREFIX}${kind}:${id}`;
}

/**
 * Check and stage new entries (each PEM block or DER object of `input`). Anchors and
 * intermediates must be CA certificates (RFC 5280 §4.2.1.9 cA); CRLs must decode. Adding an
 * entry twice is a no-op. Errors: `InvalidCertificate` (`x509_parse`, `x509_not_ca`).
 */
export function stagePkiEntries(
  store: StagedKeystore,
  kind: PkiEntryKind,
  input: PemOrDer | readonly PemOrDer[],
): PkiEntry[] {
  const entries = x509Backend().parsePkiEntries(kind, input);
  for (const e of entries)
    store.write("kv", keyOf(kind, e.id), { key: keyOf(kind, e.id), value: Uint8Array.from(e.der) });
  return entries;
}

/** Every stored entry (of one kind when given), sorted by kind then id. */
export async function listPkiEntries(store: StagedKeystore, kind?: PkiEntryKind): Promise<PkiEntry[]> {
  const backend = x509Backend();
  const rows = await store.all("kv");
  const out: PkiEntry[] = [];
  for (const row of rows) {
    if (!row.key.startsWith(PREFIX)) continue;
    const [k] = row.key.slice(PREFIX.length).split(":");
    const entryKind = KINDS.find((x) => x === k);
    if (entryKind === undefined || (kind !== undefined && entryKind !== kind)) continue;
    out.push(backend.describePkiEntry(entryKind, Uint8Array.from(row.value)));
  }
  return out.sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || a.id.localeCompare(b.id));
}

/** Stage the removal of an entry by id (any kind); returns whether it existed. */
export async function removePkiEntry(store: StagedKeystore, id: string): Promise<boolean> {
  let found = false;
  for (const kind of KINDS) {
    if ((await store.get("kv", keyOf(kind, id))) !== undefined) {
      store.delete("kv", keyOf(kind, id));
      found = true;
    }
  }
  return found;
}

const cache = new WeakMap<StagedKeystore, { ops: number; last: unknown; trust: X509TrustStore }>();

/** The trust store as this transaction sees it (cached until the transaction writes again). */
export async function loadTrustStore(store: StagedKeystore): Promise<X509TrustStore> {
  const ops = store.ops;
  const hit = cache.get(store);
  if (hit !== undefined && hit.ops === ops.length && hit.last === ops[ops.length - 1]) return hit.trust;
  const rows = (await store.all("kv")).filter((r) => r.key.startsWith(PREFIX));
  const pick = (kind: PkiEntryKind): Uint8Array[] =>
    rows.filter((r) => r.key.startsWith(`${PREFIX}${kind}:`)).map((r) => Uint8Array.from(r.value));
  const trust: X509TrustStore = {
    anchors: pick("anchor"),
    intermediates: pick("intermediate"),
    crls: pick("crl"),
  };
  cache.set(store, { ops: ops.length, last: ops[ops.length - 1], trust });
  return trust;
}
