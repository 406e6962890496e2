/**
 * The page's stand-in for an application's message transport: Welcomes and MLS messages wait in
 * a per-client inbox in `localStorage` until the receiving device processes them, so they survive
 * a reload. (The Delivery Service of this project handles key packages only.) Everything queued
 * here is already MLS-encrypted: a Welcome to the key package's init key, messages under the
 * group's keys.
 */

import { fromBase64Url, toBase64Url } from "../../src/mls/crypto/bytes.js";

export type MailKind = "welcome" | "message";

export interface Mail {
  readonly kind: MailKind;
  /** Sender's client id. */
  readonly from: string;
  /** base64url of the MLSMessage. */
  readonly data: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

const PREFIX = "mlskp-web/inbox/";

export class Mailbox {
  readonly #storage: Storage;
  readonly #listeners = new Set<(clientId: string) => void>();

  constructor(storage: Storage = globalThis.localStorage) {
    this.#storage = storage;
  }

  /** Queue `bytes` for `to`. */
  post(to: string, kind: MailKind, from: string, bytes: Uint8Array): void {
    const list = this.peek(to);
    list.push({ kind, from, data: toBase64Url(bytes), at: Date.now() });
    this.#storage.setItem(PREFIX + to, JSON.stringify(list));
    for (const l of this.#listeners) l(to);
  }

  /** Everything waiting for `clientId`, oldest first. */
  peek(clientId: string): Mail[] {
    const text = this.#storage.getItem(PREFIX + clientId);
    if (text === null) return [];
    try {
      const list: unknown = JSON.parse(text);
      return Array.isArray(list) ? (list as Mail[]) : [];
    } catch {
      return [];
    }
  }

  /** The bytes of a queued item. */
  static bytes(mail: Mail): Uint8Array {
    return fromBase64Url(mail.data);
  }

  /** Drop the oldest item of `clientId`'s inbox (after it was processed). */
  shift(clientId: string): void {
    const list = this.peek(clientId);
    list.shift();
    if (list.length === 0) this.#storage.removeItem(PREFIX + clientId);
    else this.#storage.setItem(PREFIX + clientId, JSON.stringify(list));
  }

  /** Be told when something is posted. */
  onPost(listener: (clientId: string) => void): void {
    this.#listeners.add(listener);
  }

  /** Empty every inbox of the page. */
  clear(): void {
    for (let i = this.#storage.length - 1; i >= 0; i--) {
      const k = this.#storage.key(i);
      if (k?.startsWith(PREFIX)) this.#storage.removeItem(k);
    }
  }
}
