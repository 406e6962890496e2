/**
 * RFC 9420 §8.4 psk_secret from the PSKs a commit (or Welcome) names, in order:
 *
 *   struct { PreSharedKeyID id; uint16 index; uint16 count; } PSKLabel;
 *   psk_extracted_[i] = KDF.Extract(0, psk_[i])
 *   psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, KDF.Nh)
 *   psk_secret_[0]    = 0
 *   psk_secret_[i]    = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])
 *   psk_secret        = psk_secret_[n]
 *
 * With no PSK, psk_secret is KDF.Nh zero bytes.
 */
import type { CiphersuiteImpl } from "../crypto/types.js";
import { Writer } from "../codec/index.js";
import { writePskLabel } from "./codec.js";
import { labeledKdf } from "./kdf.js";
import type { PreSharedKeyId } from "./types.js";

/** One PSK of the list: its §8.4 PreSharedKeyID and its value. */
export interface PskInput {
  readonly id: PreSharedKeyId;
  readonly psk: Uint8Array;
}

/** §8.4 PSKLabel, encoded. */
export function pskLabel(id: PreSharedKeyId, index: number, count: number): Uint8Array {
  const w = new Writer(64);
  writePskLabel(w, id, index, count);
  return w.finish();
}

/** §8.4 psk_secret of `psks`, in the order the commit lists them (at most 65535). */
export async function pskSecret(cs: CiphersuiteImpl, psks: readonly PskInput[]): Promise<Uint8Array> {
  const count = psks.length;
  if (count > 0xffff) throw new RangeError("more than 65535 PSKs");
  const k = labeledKdf(cs.kdf);
  const zero = new Uint8Array(k.nh);
  let secret: Uint8Array = new Uint8Array(k.nh);
  for (const [index, { id, psk }] of psks.entries()) {
    const extracted = await k.extract(zero, psk);
    const input = await k.expandWithLabel(extracted, "derived psk", pskLabel(id, index, count), k.nh);
    extracted.fill(0);
    const next = await k.extract(input, secret);
    input.fill(0);
    secret.fill(0);
    secret = next;
  }
  return secret;
}
