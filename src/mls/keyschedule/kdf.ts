/**
 * The RFC 9420 §8/§9 labeled derivations of one suite, on the provider's synchronous
 * HKDF-Expand when it has one (node:crypto, `SyncExpandKdf`): each method then returns its value
 * directly, else a promise. Hot paths (secret tree ratchets) `await` only what is a promise,
 * so a ratchet step costs one HMAC and no microtask.
 */
import {
  deriveSecret,
  deriveTreeSecret,
  deriveTreeSecretSync,
  expandWithLabel,
  expandWithLabelSync,
  kdfLabel,
} from "../crypto/labels.js";
import type { Kdf, SyncExpandKdf } from "../crypto/types.js";
import { syncExpandOf } from "../crypto/types.js";
import { memo } from "../memo.js";

const EMPTY = new Uint8Array(0);

/** A value now (synchronous provider) or later (asynchronous provider). */
export type Maybe<T> = T | Promise<T>;

export class LabeledKdf {
  /** KDF.Nh. */
  readonly nh: number;
  readonly kdf: Kdf;
  readonly #sync: SyncExpandKdf | undefined;
  /**
   * KDFLabel of ExpandWithLabel with an empty context (DeriveSecret, welcome_key, welcome_nonce),
   * per length and label: the same bytes every time.
   */
  readonly #emptyContextLabels = new Map<string, Uint8Array>();

  constructor(kdf: Kdf) {
    this.kdf = kdf;
    this.nh = kdf.size;
    this.#sync = syncExpandOf(kdf) === undefined ? undefined : (kdf as SyncExpandKdf);
  }

  /** KDF.Extract(salt, ikm). */
  extract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array> {
    return this.kdf.extract(salt, ikm);
  }

  /** §8 ExpandWithLabel(Secret, Label, Context, Length). */
  expandWithLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number): Maybe<Uint8Array> {
    const s = this.#sync;
    if (s === undefined) return expandWithLabel(secret, label, context, length, this.kdf);
    if (context.length > 0) return expandWithLabelSync(secret, label, context, length, s);
    return s.expandSync(secret, this.#emptyContextLabel(label, length), length);
  }

  #emptyContextLabel(label: string, length: number): Uint8Array {
    return memo(this.#emptyContextLabels, `${length}:${label}`, () => kdfLabel(label, EMPTY, length));
  }

  /** §8 DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", KDF.Nh). */
  deriveSecret(secret: Uint8Array, label: string): Maybe<Uint8Array> {
    const s = this.#sync;
    if (s === undefined) return deriveSecret(secret, label, this.kdf);
    return s.expandSync(secret, this.#emptyContextLabel(label, this.nh), this.nh);
  }

  /** §9 DeriveTreeSecret(Secret, Label, Generation, Length). */
  deriveTreeSecret(secret: Uint8Array, label: string, generation: number, length: number): Maybe<Uint8Array> {
    const s = this.#sync;
    return s === undefined
      ? deriveTreeSecret(secret, label, generation, length, this.kdf)
      : deriveTreeSecretSync(secret, label, generation, length, s);
  }
}

const kdfs = new WeakMap<Kdf, LabeledKdf>();

/** The `LabeledKdf` of `kdf` (one per provider KDF object). */
export function labeledKdf(kdf: Kdf): LabeledKdf {
  return memo(kdfs, kdf, () => new LabeledKdf(kdf));
}
