/**
 * Our §9 secret tree beyond the vectors: lazy derivation, out-of-order window, reuse refused,
 * skipped-key bound, stage-then-merge, and the persisted state.
 */
import { describe, expect, test } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { Reader, Writer } from "../../../src/mls/codec/index.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import type { CiphersuiteImpl, Kdf } from "../../../src/mls/crypto/types.js";
import { webCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";
import {
  SecretTree,
  encodeSecretTreeState,
  readSecretTreeState,
} from "../../../src/mls/keyschedule/secretTree.js";
import { bytesToHex, impl } from "../../vectors/helpers.js";

const APP = 1;
const COMMIT = 3;
const secret = (cs: CiphersuiteImpl): Uint8Array => new Uint8Array(cs.kdf.size).fill(7);

/** `cs` whose KDF counts Expand calls (sync and async). */
function counting(cs: CiphersuiteImpl): { cs: CiphersuiteImpl; calls: () => number } {
  let n = 0;
  const base = cs.kdf as Kdf & { expandSync?: (p: Uint8Array, i: Uint8Array, l: number) => Uint8Array };
  const kdf: Kdf & { expandSync?: (p: Uint8Array, i: Uint8Array, l: number) => Uint8Array } = {
    size: base.size,
    extract: (s, i) => base.extract(s, i),
    expand: (p, i, l) => (n++, base.expand(p, i, l)),
  };
  if (base.expandSync !== undefined) {
    const sync = base.expandSync.bind(base);
    kdf.expandSync = (p, i, l) => (n++, sync(p, i, l));
  }
  return { cs: { ...cs, kdf }, calls: () => n };
}

async function rule(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { rule: string }).rule;
  }
  return "no error";
}

describe("secret tree", () => {
  test("derives only the path to the leaf in use", async () => {
    const { cs, calls } = counting(await impl(nodeCryptoProvider, 1));
    let tree = SecretTree.create(cs, 32, secret(cs));
    tree = tree.merge(await tree.keyAndNonce(5, APP, 0));
    // 5 levels × 2 children, 2 ratchet roots, key + nonce + next secret.
    expect(calls()).toBe(15);
    // A sibling leaf: its secret was kept when the path was split.
    tree = tree.merge(await tree.keyAndNonce(4, APP, 0));
    expect(calls()).toBe(15 + 2 + 3);
    // The handshake ratchet of a leaf in use needs no tree node.
    tree.merge(await tree.keyAndNonce(4, COMMIT, 0));
    expect(calls()).toBe(15 + 2 + 3 + 3);
  });

  test("same keys whatever the order leaves are used in, and on a provider without sync HKDF", async () => {
    const node = await impl(nodeCryptoProvider, 1);
    const web = await impl(webCryptoProvider, 1);
    const keysOf = async (cs: CiphersuiteImpl, order: number[]): Promise<Record<number, string>> => {
      let tree = SecretTree.create(cs, 7, secret(cs));
      const out: Record<number, string> = {};
      for (const leaf of order) {
        const s = await tree.keyAndNonce(leaf, APP, 3);
        out[leaf] = bytesToHex(s.key) + bytesToHex(s.nonce);
        tree = tree.merge(s);
      }
      return out;
    };
    const a = await keysOf(node, [0, 1, 2, 3, 4, 5, 6]);
    expect(await keysOf(node, [6, 3, 0, 5, 1, 4, 2])).toEqual(a);
    expect(await keysOf(web, [2, 4, 6, 0, 1, 3, 5])).toEqual(a);
  });

  test("out of order within the window, each key once", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    let tree = SecretTree.create(cs, 2, secret(cs));
    const g5 = await tree.keyAndNonce(1, APP, 5);
    tree = tree.merge(g5);
    const g2 = await tree.keyAndNonce(1, APP, 2);
    tree = tree.merge(g2);
    expect(await rule(tree.keyAndNonce(1, APP, 2))).toBe("§9.2 generation_reused");
    expect(await rule(tree.keyAndNonce(1, APP, 5))).toBe("§9.2 generation_reused");
    tree = tree.merge(await tree.keyAndNonce(1, APP, 0));
    expect(tree.nextGeneration(1, APP)).toBe(6);
    // The handshake ratchet is separate.
    expect(tree.nextGeneration(1, COMMIT)).toBe(0);
  });

  test("reused generation is an InvalidMessage", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    let tree = SecretTree.create(cs, 2, secret(cs));
    tree = tree.merge(await tree.keyAndNonce(0, COMMIT, 0));
    await expect(tree.keyAndNonce(0, COMMIT, 0)).rejects.toMatchObject({
      code: ErrorCode.InvalidMessage,
      rule: "§9.2 generation_reused",
    });
  });

  test("a staged key not merged is not consumed", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    const tree = SecretTree.create(cs, 2, secret(cs));
    const a = await tree.keyAndNonce(0, APP, 3);
    const b = await tree.keyAndNonce(0, APP, 3);
    expect(bytesToHex(a.key)).toBe(bytesToHex(b.key));
    const next = tree.merge(b);
    // The old tree is retired; a stage from it cannot be merged into the new one.
    expect(() => tree.merge(a)).toThrow(expect.objectContaining({ rule: "§9.2 retired_tree" }));
    expect(() => next.merge(a)).toThrow(expect.objectContaining({ rule: "§9.2 stale_stage" }));
  });

  test("forward window and skipped-key bound", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    let tree = SecretTree.create(cs, 2, secret(cs), { maxForwardGenerations: 10, maxSkippedKeys: 3 });
    expect(await rule(tree.keyAndNonce(0, APP, 11))).toBe("§9.2 generation_window");
    tree = tree.merge(await tree.keyAndNonce(0, APP, 10));
    for (const g of [7, 8, 9]) tree = tree.merge(await tree.keyAndNonce(0, APP, g));
    // Generations 0..6 were dropped (only the newest 3 skipped keys kept).
    expect(await rule(tree.keyAndNonce(0, APP, 6))).toBe("§9.2 generation_reused");
    // The ratchet is at 11 now: 21 is 10 ahead, 22 is 11.
    expect(await rule(tree.keyAndNonce(0, APP, 21))).toBe("no error");
    expect(await rule(tree.keyAndNonce(0, APP, 22))).toBe("§9.2 generation_window");
    // Default window: 1000 generations ahead.
    const big = SecretTree.create(cs, 1, secret(cs));
    expect(await rule(big.keyAndNonce(0, APP, 1001))).toBe("§9.2 generation_window");
  });

  test("a leaf outside the tree is refused", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    const tree = SecretTree.create(cs, 3, secret(cs));
    expect(await rule(tree.keyAndNonce(3, APP, 0))).toBe("§9 leaf_index");
  });

  test("a skipped key handed out is a copy of the one merge zeroes", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    const tree = SecretTree.create(cs, 1, secret(cs));
    const t1 = tree.merge(await tree.keyAndNonce(0, APP, 2));
    const s1 = await t1.keyAndNonce(0, APP, 0);
    const kept = bytesToHex(s1.key);
    const t2 = t1.merge(s1);
    expect(bytesToHex(s1.key)).toBe(kept);
    expect(await rule(t2.keyAndNonce(0, APP, 0))).toBe("§9.2 generation_reused");
  });

  test("state round trip continues the same ratchets", async () => {
    const cs = await impl(nodeCryptoProvider, 2);
    let tree = SecretTree.create(cs, 8, secret(cs));
    for (const [leaf, ct, g] of [
      [3, APP, 4],
      [3, APP, 1],
      [6, COMMIT, 0],
    ] as const)
      tree = tree.merge(await tree.keyAndNonce(leaf, ct, g));
    const w = new Writer();
    encodeSecretTreeState(w, tree);
    const bytes = w.finish();
    const r = new Reader(bytes);
    const back = readSecretTreeState(r, cs);
    r.finish();
    const w2 = new Writer();
    encodeSecretTreeState(w2, back);
    expect(bytesToHex(w2.finish())).toBe(bytesToHex(bytes));
    for (const [leaf, ct, g] of [
      [3, APP, 2],
      [3, APP, 5],
      [6, COMMIT, 1],
      [0, APP, 0],
    ] as const) {
      const a = await tree.keyAndNonce(leaf, ct, g);
      const b = await back.keyAndNonce(leaf, ct, g);
      expect(bytesToHex(b.key)).toBe(bytesToHex(a.key));
      expect(bytesToHex(b.nonce)).toBe(bytesToHex(a.nonce));
    }
    expect(await rule(back.keyAndNonce(3, APP, 1))).toBe("§9.2 generation_reused");
  });

  test("a malformed state is a DecodeError", async () => {
    const cs = await impl(nodeCryptoProvider, 1);
    const tree = SecretTree.create(cs, 2, secret(cs));
    const w = new Writer();
    encodeSecretTreeState(w, tree);
    const bytes = w.finish();
    bytes[4 + 1 + 4] = 5; // the root secret's length
    expect(() => readSecretTreeState(new Reader(bytes), cs)).toThrow(
      expect.objectContaining({ code: ErrorCode.MalformedEncoding }),
    );
  });
});
