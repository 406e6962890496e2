/**
 * src/mls/fastDecode.ts against ts-mls 1.6.4's own decoders: same values on real inputs
 * (trees with parent nodes, commit/update leaves, X509 and GREASE capabilities, key
 * packages, GroupInfos), and the same verdict on every truncation and on byte flips.
 */
import { describe, expect, it } from "vitest";
import { decodeMlsMessage, generateKeyPackage } from "ts-mls";
import { decodeGroupContext, encodeGroupContext } from "ts-mls/groupContext.js";
import { decodeGroupInfo, encodeGroupInfo, type GroupInfo } from "ts-mls/groupInfo.js";
import { decodeKeyPackage, encodeKeyPackage } from "ts-mls/keyPackage.js";
import { decodeLeafNode, encodeLeafNode } from "ts-mls/leafNode.js";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { defaultCapabilities } from "ts-mls/defaultCapabilities.js";
import { defaultLifetime } from "ts-mls/lifetime.js";
import { getCiphersuiteFromId } from "ts-mls/crypto/ciphersuite.js";
import { decodeWelcome, encodeWelcome } from "ts-mls/welcome.js";
import { decodeCredential, encodeCredential } from "ts-mls/credential.js";
import {
  fastDecodeCredential,
  fastDecodeTreeExtension,
  fastDecodeWelcome,
  fastDecodeGroupContext,
  fastDecodeGroupInfo,
  fastDecodeKeyPackage,
  fastDecodeLeafNode,
  fastDecodeRatchetTree,
} from "../../src/mls/fastDecode.js";
import { nodeCryptoProvider } from "../../src/mls/crypto/node.js";
import { group, keypackage, member } from "../conversation/helpers.js";

type Dec<T> = (b: Uint8Array, o: number) => [T, number] | undefined;

function safe<T>(d: Dec<T>, b: Uint8Array, o: number): [T, number] | undefined {
  try {
    return d(b, o);
  } catch {
    return undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Both decoders agree on `bytes`: same value and length, or both refuse. Allowed exception
 * (documented in fastDecode.ts): we refuse an optional presence octet > 1, which ts-mls reads
 * as absent; such input is not canonical, so ts-mls's value does not re-encode to it.
 */
function agree<T>(ours: Dec<T>, theirs: Dec<T>, enc: (t: T) => Uint8Array, bytes: Uint8Array): void {
  const a = safe(ours, bytes, 0);
  const b = safe(theirs, bytes, 0);
  if (a === undefined && b !== undefined) {
    expect(sameBytes(enc(b[0]), bytes.subarray(0, b[1]))).toBe(false);
    return;
  }
  expect(a).toEqual(b);
}

function fuzz<T>(ours: Dec<T>, theirs: Dec<T>, enc: (t: T) => Uint8Array, bytes: Uint8Array): void {
  agree(ours, theirs, enc, bytes);
  for (let n = 0; n < bytes.length; n++) agree(ours, theirs, enc, bytes.subarray(0, n));
  let seed = bytes.length;
  for (let i = 0; i < 300; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const copy = Uint8Array.from(bytes);
    const at = seed % copy.length;
    copy[at] = (copy[at] as number) ^ (1 << ((seed >>> 8) % 8));
    agree(ours, theirs, enc, copy);
  }
}

const extensionOf = (gi: GroupInfo, type: string): Uint8Array => {
  const e = gi.extensions.find((x) => x.extensionType === type);
  if (e === undefined) throw new Error(`no ${type}`);
  return e.extensionData;
};

async function groupInfos(): Promise<GroupInfo[]> {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  const [a, b, c, d] = await Promise.all([member(1), member(2), member(3), member(4)]);
  await group(enc("g"), a, b, c, d);
  // self-updates and a removal: parent nodes, commit-source leaves, unmerged leaves
  await b.cc.transaction((tx) => tx.updateKeyingMaterial(enc("g")));
  const out: GroupInfo[] = [];
  const collect = (bundle: { groupInfo: Uint8Array }): void => {
    const m = decodeMlsMessage(bundle.groupInfo, 0)?.[0];
    if (m?.wireformat !== "mls_group_info") throw new Error("not a GroupInfo");
    out.push(m.groupInfo);
  };
  collect(b.transport.last());
  await a.cc.transaction(async (tx) => {
    await tx.decryptMessage(enc("g"), b.transport.last().commit);
    await tx.removeClientsFromConversation(enc("g"), [c.clientId]);
  });
  collect(a.transport.last());
  const e = await member(5);
  await a.cc.transaction((tx) => tx.addClientsToConversation(enc("g"), [])); // no-op
  await a.cc.transaction(async (tx) => tx.addClientsToConversation(enc("g"), [await keypackage(e)]));
  collect(a.transport.last());
  return out;
}

describe("fast decoders agree with ts-mls", () => {
  it("on ratchet trees, leaf nodes, group contexts and GroupInfos of real groups", async () => {
    const infos = await groupInfos();
    for (const gi of infos) {
      const giBytes = encodeGroupInfo(gi);
      expect(fastDecodeGroupInfo(giBytes, 0)).toEqual(decodeGroupInfo(giBytes, 0));
      fuzz(fastDecodeGroupInfo, decodeGroupInfo, encodeGroupInfo, giBytes);
      const gcBytes = encodeGroupContext(gi.groupContext);
      fuzz(fastDecodeGroupContext, decodeGroupContext, encodeGroupContext, gcBytes);
      const treeBytes = extensionOf(gi, "ratchet_tree");
      const tree = decodeRatchetTree(treeBytes, 0);
      expect(tree?.[0].some((n) => n?.nodeType === "parent")).toBe(true);
      expect(fastDecodeRatchetTree(treeBytes, 0)).toEqual(tree);
      fuzz(fastDecodeRatchetTree, decodeRatchetTree, encodeRatchetTree, treeBytes);
      // canonical: the bytes are ts-mls's encoding of the tree; a non-minimal length is not
      expect(fastDecodeTreeExtension(treeBytes)).toEqual({ tree: tree?.[0], canonical: true });
      expect(encodeRatchetTree(fastDecodeTreeExtension(treeBytes)?.tree as never)).toEqual(treeBytes);
      expect(fastDecodeTreeExtension(Uint8Array.of(...treeBytes, 0))?.canonical).toBe(false);
      const long = treeBytes[0] as number; // tree vector length: 2-byte varint (0x40 | hi, lo)
      expect(long >> 6).toBe(1);
      const padded = Uint8Array.of(0x80, 0, long & 0x3f, treeBytes[1] as number, ...treeBytes.subarray(2));
      expect(fastDecodeTreeExtension(padded)).toEqual({ tree: tree?.[0], canonical: false });
      for (const n of tree?.[0] ?? []) {
        if (n?.nodeType !== "leaf") continue;
        const leafBytes = encodeLeafNode(n.leaf);
        expect(fastDecodeLeafNode(leafBytes, 0)).toEqual(decodeLeafNode(leafBytes, 0));
      }
    }
    const sources = new Set(
      infos.flatMap((gi) =>
        (decodeRatchetTree(extensionOf(gi, "ratchet_tree"), 0)?.[0] ?? []).flatMap((n) =>
          n?.nodeType === "leaf" ? [n.leaf.leafNodeSource] : [],
        ),
      ),
    );
    expect([...sources].sort()).toEqual(["commit", "key_package"]);
  }, 60_000);

  it("on Welcomes", async () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    const [a, b, c] = await Promise.all([member(11), member(12), member(13)]);
    await a.cc.transaction((tx) => tx.createConversation(enc("w"), a.cred));
    const kps = [await keypackage(b), await keypackage(c)];
    await a.cc.transaction((tx) => tx.addClientsToConversation(enc("w"), kps));
    const w = a.transport.last().welcome as Uint8Array;
    expect([...w.subarray(0, 4)]).toEqual([0, 1, 0, 3]);
    const body = w.subarray(4);
    expect(fastDecodeWelcome(body, 0)).toEqual(decodeWelcome(body, 0));
    fuzz(fastDecodeWelcome, decodeWelcome, encodeWelcome, Uint8Array.from(body));
  }, 60_000);

  it("on key packages: ours, last resort, and ts-mls's (GREASE, X509)", async () => {
    const m = await member(9);
    const ours = [await keypackage(m), await keypackage(m, { lastResort: true })].map((k) => k.serialize());
    const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(1));
    const basic = await generateKeyPackage(
      { credentialType: "basic", identity: new Uint8Array([1, 2, 3]) },
      defaultCapabilities(),
      defaultLifetime,
      [],
      cs,
    );
    const x509 = await generateKeyPackage(
      { credentialType: "x509", certificates: [new Uint8Array([4, 5]), new Uint8Array(70)] },
      defaultCapabilities(),
      defaultLifetime,
      [{ extensionType: 0x0a, extensionData: new Uint8Array(0) }],
      cs,
    );
    for (const bytes of [
      ...ours,
      encodeKeyPackage(basic.publicPackage),
      encodeKeyPackage(x509.publicPackage),
    ]) {
      expect(fastDecodeKeyPackage(bytes, 0)).toEqual(decodeKeyPackage(bytes, 0));
      fuzz(fastDecodeKeyPackage, decodeKeyPackage, encodeKeyPackage, bytes);
      const leaf = decodeKeyPackage(bytes, 0)?.[0].leafNode;
      const leafBytes = encodeLeafNode(leaf as never);
      fuzz(
        fastDecodeCredential,
        decodeCredential,
        encodeCredential,
        encodeCredential(leaf?.credential as never),
      );
      fuzz(fastDecodeLeafNode, decodeLeafNode, encodeLeafNode, leafBytes);
    }
  }, 60_000);
});
