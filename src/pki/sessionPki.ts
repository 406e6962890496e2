import type { CoreCrypto } from "../session.js";
import type { PemOrDer } from "./certificate.js";
import type { PkiEntry, PkiEntryKind } from "./environment.js";

/**
 * `cc.pki`: the session's PKI environment (CoreCrypto's `PkiEnvironment` + `setPkiEnvironment`),
 * each call in its own transaction. Inside a transaction use `tx.addTrustAnchor` etc.
 */
export class SessionPki {
  readonly #cc: CoreCrypto;

  /** @internal created by `CoreCrypto`. */
  constructor(cc: CoreCrypto) {
    this.#cc = cc;
  }

  /** Add trust anchors (CA certificates; PEM or DER). */
  addTrustAnchor(certificate: PemOrDer | readonly PemOrDer[]): Promise<PkiEntry[]> {
    return this.#cc.transaction((tx) => tx.addTrustAnchor(certificate));
  }

  /** Add intermediate CA certificates. */
  addIntermediate(certificate: PemOrDer | readonly PemOrDer[]): Promise<PkiEntry[]> {
    return this.#cc.transaction((tx) => tx.addIntermediate(certificate));
  }

  /** Add CRLs. */
  addCrl(crl: PemOrDer | readonly PemOrDer[]): Promise<PkiEntry[]> {
    return this.#cc.transaction((tx) => tx.addCrl(crl));
  }

  /** Stored entries (of one kind when given). */
  list(kind?: PkiEntryKind): Promise<PkiEntry[]> {
    return this.#cc.transaction((tx) => tx.getPkiEntries(kind));
  }

  /** Remove an entry by id; false when absent. */
  remove(id: string): Promise<boolean> {
    return this.#cc.transaction((tx) => tx.removePkiEntry(id));
  }
}
