/**
 * Malformed encodings (RFC 9420 §2.1) refused by our codecs, each with its rule: take a valid
 * encoding (messages.json, or one our encoders made), change one thing, expect the one
 * DecodeError. Also the encoders' refusals of objects that have no encoding (TypeError).
 */
import { describe, expect, test } from "vitest";
import {
  DEFAULT_MAX_SIZE,
  DecodeError,
  Writer,
  decodeExact,
  encode,
  type Reader,
} from "../../../src/mls/codec/index.js";
import { readCredential, writeCredential } from "../../../src/mls/credential/codec.js";
import {
  readCommit,
  readFramedContentAuthData,
  readPrivateMessage,
  readPrivateMessageContent,
  readProposal,
  readProposalOrRef,
  readSender,
  writeFramedContentAuthData,
  writeFramedContentTbs,
  writePrivateMessageContent,
  writePublicMessage,
  writeSenderData,
} from "../../../src/mls/framing/codec.js";
import type { FramedContent, PrivateMessageContent, PublicMessage } from "../../../src/mls/framing/types.js";
import { readGroupSecrets, readMlsMessage, writeMlsMessage } from "../../../src/mls/group/codec.js";
import type { MlsMessage } from "../../../src/mls/group/types.js";
import {
  readKeyPackage,
  readLeafNode,
  writeCapabilities,
  writeLeafNode,
  writeLeafNodeTbs,
} from "../../../src/mls/keypackage/codec.js";
import type { KeyPackage, LeafNode } from "../../../src/mls/keypackage/types.js";
import { readPreSharedKeyId } from "../../../src/mls/keyschedule/codec.js";
import { readRatchetTree, readTreeNode, writeRatchetTree } from "../../../src/mls/tree/codec.js";
import { hex, loadVectors, reportMissing } from "../../vectors/helpers.js";

interface MessagesVector {
  mls_welcome: string;
  mls_key_package: string;
  public_message_application: string;
  public_message_commit: string;
  group_secrets: string;
  commit: string;
  ratchet_tree: string;
}

const vectors = loadVectors<MessagesVector>("messages.json");
reportMissing("messages.json", vectors);
const v0 = vectors?.[0];

/** The DecodeError `f` throws (fails the test when it throws nothing or something else). */
function decodeErrorOf(f: () => unknown): DecodeError {
  try {
    f();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  throw new Error("expected a DecodeError, nothing was thrown");
}

function expectRule(f: () => unknown, rule: string): void {
  const e = decodeErrorOf(f);
  expect(e.rule).toBe(rule);
  expect(e.code).toBe("MalformedEncoding");
}

const patched = (bytes: Uint8Array, at: number, ...values: number[]): Uint8Array => {
  const out = bytes.slice();
  values.forEach((b, i) => (out[at + i] = b));
  return out;
};

const splice = (bytes: Uint8Array, at: number, remove: number, insert: readonly number[]): Uint8Array =>
  Uint8Array.from([...bytes.subarray(0, at), ...insert, ...bytes.subarray(at + remove)]);

const kpMessage = (m: MlsMessage): KeyPackage => {
  if (m.wireFormat !== 5) throw new Error("not a key package");
  return m.keyPackage;
};

describe.skipIf(v0 === undefined)("malformed encodings of real messages", () => {
  const kpMsg = hex(v0?.mls_key_package ?? "");
  const kp = kpMsg.subarray(4); // after version and wire_format
  const welcome = hex(v0?.mls_welcome ?? "");
  const pub = hex(v0?.public_message_application ?? "");

  test("the untouched encodings decode", () => {
    expect(kpMessage(decodeExact(kpMsg, readMlsMessage)).initKey.length).toBe(32);
    decodeExact(welcome, readMlsMessage);
    decodeExact(pub, readMlsMessage);
  });

  test("§2.1.2 a non-minimal varint inside a KeyPackage is refused", () => {
    // init_key<V> of 32 bytes: its 1-byte length at offset 4 (after version and cipher_suite).
    expect(kp[4]).toBe(32);
    expectRule(() => decodeExact(splice(kp, 4, 1, [0x40, 32]), readKeyPackage), "§2.1.2 minimal varint");
    expectRule(
      () => decodeExact(splice(kp, 4, 1, [0x80, 0, 0, 32]), readKeyPackage),
      "§2.1.2 minimal varint",
    );
    // The 8-byte form (prefix 0b11) does not exist in MLS.
    expectRule(
      () => decodeExact(splice(kp, 4, 1, [0xc0, 0, 0, 0, 0, 0, 0, 32]), readKeyPackage),
      "§2.1.2 varint length",
    );
    // Same inside the whole MLSMessage.
    expectRule(() => decodeExact(splice(kpMsg, 8, 1, [0x40, 32]), readMlsMessage), "§2.1.2 minimal varint");
  });

  test("§2.1 trailing bytes after a KeyPackage, a Welcome, a PublicMessage are refused", () => {
    for (const b of [kpMsg, welcome, pub])
      expectRule(() => decodeExact(Uint8Array.from([...b, 0]), readMlsMessage), "§2.1 trailing bytes");
  });

  test("§2.1 every truncation of a KeyPackage, a Welcome, a PublicMessage is refused", () => {
    let n = 0;
    for (const b of [kpMsg, welcome, pub]) {
      for (let len = 0; len < b.length; len++) {
        expectRule(() => decodeExact(b.subarray(0, len), readMlsMessage), "§2.1 truncated");
        n++;
      }
    }
    expect(n).toBe(kpMsg.length + welcome.length + pub.length);
  });

  test("§2.1.1 an optional<T> presence octet of 2 is refused", () => {
    // GroupSecrets: joiner_secret<V>, then optional<PathSecret>.
    const gs = hex(v0?.group_secrets ?? "");
    const at = 1 + (gs[0] as number);
    expect(gs[at]).toBe(1);
    expectRule(() => decodeExact(patched(gs, at, 2), readGroupSecrets), "§2.1.1 optional presence");
    // Commit: proposals<V>, then optional<UpdatePath> (the very octet after the vector).
    const commit = hex(v0?.commit ?? "");
    const c = decodeExact(commit, readCommit);
    expect(c.path).toBeDefined();
    const proposalsEnd = varintEnd(commit);
    expect(commit[proposalsEnd]).toBe(1);
    expectRule(() => decodeExact(patched(commit, proposalsEnd, 2), readCommit), "§2.1.1 optional presence");
    // ratchet_tree: optional<Node>.
    const tree = hex(v0?.ratchet_tree ?? "");
    const first = varintLength(tree[0] as number);
    expect(tree[first]).toBe(1);
    expectRule(() => decodeExact(patched(tree, first, 2), readRatchetTree), "§2.1.1 optional presence");
  });

  test("§2.1 size cap: an input over the cap is refused before it is read", () => {
    expectRule(() => decodeExact(kpMsg, readMlsMessage, kpMsg.length - 1), "§2.1 size cap");
    expect(kpMessage(decodeExact(kpMsg, readMlsMessage, kpMsg.length)).version).toBe(1);
    expectRule(() => decodeExact(new Uint8Array(DEFAULT_MAX_SIZE + 1), readMlsMessage), "§2.1 size cap");
  });

  test("§6 an MLSMessage version other than mls10 is refused", () => {
    expectRule(() => decodeExact(patched(kpMsg, 0, 0, 2), readMlsMessage), "§6 version");
    expectRule(() => decodeExact(patched(kpMsg, 0, 0, 0), readMlsMessage), "§6 version");
  });

  test("§2.1 unknown enum values in real messages are refused", () => {
    const U = "§2.1 unknown enum value";
    // wire_format
    for (const wf of [0, 6, 0xffff])
      expectRule(() => decodeExact(patched(kpMsg, 2, wf >> 8, wf & 0xff), readMlsMessage), U);
    // KeyPackage: credential_type after version, suite, init_key<V>, encryption_key<V>, signature_key<V>.
    const k = kpMessage(decodeExact(kpMsg, readMlsMessage));
    const credAt =
      4 + 1 + k.initKey.length + 1 + k.leafNode.encryptionKey.length + 1 + k.leafNode.signatureKey.length;
    expect([kp[credAt], kp[credAt + 1]]).toEqual([0, 1]);
    for (const ct of [0, 3, 0xf000])
      expectRule(() => decodeExact(patched(kp, credAt, ct >> 8, ct & 0xff), readKeyPackage), U);
    // PublicMessage: sender_type after version, wire_format, group_id<V>, epoch.
    const senderAt = 4 + 1 + (pub[4] as number) + 8;
    expect(pub[senderAt]).toBe(1);
    for (const st of [0, 5, 255])
      expectRule(() => decodeExact(patched(pub, senderAt, st), readMlsMessage), U);
    // PublicMessage: content_type after sender (type + uint32) and authenticated_data<V>.
    const adAt = senderAt + 5;
    expect(varintLength(pub[adAt] as number)).toBe(1);
    const ctAt = adAt + 1 + (pub[adAt] as number);
    expect(pub[ctAt]).toBe(1);
    for (const ct of [0, 4, 255]) expectRule(() => decodeExact(patched(pub, ctAt, ct), readMlsMessage), U);
  });
});

/** Length of a varint from its first octet (§2.1.2). */
function varintLength(first: number): number {
  return 1 << (first >> 6);
}

/** Offset just after the vector that starts at offset 0. */
function varintEnd(b: Uint8Array): number {
  const n = varintLength(b[0] as number);
  let len = (b[0] as number) & 0x3f;
  for (let i = 1; i < n; i++) len = len * 256 + (b[i] as number);
  return n + len;
}

// ------------------------------------------------------------------ built objects, one field off

const leaf: LeafNode = {
  encryptionKey: new Uint8Array(32).fill(1),
  signatureKey: new Uint8Array(32).fill(2),
  credential: { credentialType: 1, identity: new TextEncoder().encode("alice") },
  capabilities: { versions: [1], ciphersuites: [1], extensions: [], proposals: [], credentials: [1] },
  leafNodeSource: 1,
  lifetime: { notBefore: 0n, notAfter: 2n ** 64n - 1n },
  parentHash: undefined,
  extensions: [{ extensionType: 0x000a, extensionData: new Uint8Array(0) }],
  signature: new Uint8Array(64).fill(3),
};

const content: FramedContent = {
  groupId: Uint8Array.of(7, 7),
  epoch: 3n,
  sender: { senderType: 1, leafIndex: 2 },
  authenticatedData: new Uint8Array(0),
  contentType: 1,
  applicationData: Uint8Array.of(1, 2, 3),
};

describe("unknown enum values of each select (§2.1)", () => {
  const U = "§2.1 unknown enum value";
  test.each([
    ["credential type", (r: Reader) => readCredential(r), [0, 3, 0]],
    ["sender type", readSender, [0]],
    ["sender type 5", readSender, [5]],
    ["proposal type 0", readProposal, [0, 0]],
    ["proposal type 8", readProposal, [0, 8, 0, 0, 0, 0]],
    ["ProposalOrRef type", readProposalOrRef, [3, 0]],
    ["node type 0", readTreeNode, [0]],
    ["node type 3", readTreeNode, [3]],
    ["psk type 0", readPreSharedKeyId, [0, 0, 0]],
    ["psk type 3", readPreSharedKeyId, [3, 0, 0]],
    ["private message content type", readPrivateMessage, [0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]],
    ["private content type", (r: Reader) => readPrivateMessageContent(r, 4), [0, 0]],
  ] as const)("%s", (_name, read, bytes) => {
    expectRule(() => decodeExact(Uint8Array.from(bytes), read as (r: Reader) => unknown), U);
  });

  test("leaf node source", () => {
    const b = encode(leaf, writeLeafNode);
    expect(decodeExact(b, readLeafNode).leafNodeSource).toBe(1);
    const head = new Writer().vec(leaf.encryptionKey).vec(leaf.signatureKey);
    writeCredential(head, leaf.credential);
    writeCapabilities(head, leaf.capabilities);
    const sourceAt = head.length;
    expect(b[sourceAt]).toBe(1);
    for (const s of [0, 4, 255]) expectRule(() => decodeExact(patched(b, sourceAt, s), readLeafNode), U);
  });
});

describe("§12.4.3.3 ratchet tree", () => {
  const node = { nodeType: 1 as const, leaf };
  test("a tree ending in a blank node, or empty, is refused", () => {
    const ok = encode([node], writeRatchetTree);
    const body = ok.subarray(varintLength(ok[0] as number));
    const withBlank = new Writer().vecWith((w) => w.raw(body).u8(0)).finish();
    expectRule(() => decodeExact(withBlank, readRatchetTree), "§12.4.3.3 last node blank");
    expectRule(() => decodeExact(Uint8Array.of(0), readRatchetTree), "§12.4.3.3 last node blank");
  });

  test("the decoded tree is padded to 2^(d+1)-1 nodes; the encoding drops trailing blanks", () => {
    const three = [node, undefined, node];
    const b = encode([...three, undefined, undefined, undefined, undefined], writeRatchetTree);
    expect(b).toEqual(encode(three, writeRatchetTree));
    expect(decodeExact(b, readRatchetTree)).toHaveLength(3);
    const five = [node, undefined, node, undefined, node];
    expect(decodeExact(encode(five, writeRatchetTree), readRatchetTree)).toEqual([
      ...five,
      undefined,
      undefined,
    ]);
    expect(decodeExact(encode([node], writeRatchetTree), readRatchetTree)).toHaveLength(1);
    expect(() => encode([undefined, undefined, undefined], writeRatchetTree)).toThrow(TypeError);
  });
});

describe("§6.3.1 PrivateMessageContent padding", () => {
  const pmc: PrivateMessageContent = {
    contentType: 1,
    applicationData: Uint8Array.of(9, 9),
    auth: { signature: new Uint8Array(8).fill(5), confirmationTag: undefined },
    padding: 13,
  };
  const read = (r: Reader): PrivateMessageContent => readPrivateMessageContent(r, 1);

  test("zero padding round trips", () => {
    const b = encode(pmc, writePrivateMessageContent);
    expect(b.length).toBe(3 + 9 + 13);
    expect(decodeExact(b, read)).toEqual(pmc);
  });

  test("any non-zero octet in the padding is refused", () => {
    const b = encode(pmc, writePrivateMessageContent);
    for (let i = b.length - 13; i < b.length; i++)
      expectRule(() => decodeExact(patched(b, i, 0x80), read), "§6.3.1 padding");
  });
});

describe("encoders refuse objects that have no encoding", () => {
  test("§7.2 LeafNode select fields and LeafNodeTBS context", () => {
    expect(() => encode({ ...leaf, lifetime: undefined }, writeLeafNode)).toThrow(TypeError);
    expect(() => encode({ ...leaf, leafNodeSource: 3 as const }, writeLeafNode)).toThrow(TypeError);
    expect(() => encode({ ...leaf, leafNodeSource: 2 as const }, (w, l) => writeLeafNodeTbs(w, l))).toThrow(
      TypeError,
    );
    const withCtx = encode({ ...leaf, leafNodeSource: 2 as const }, (w, l) =>
      writeLeafNodeTbs(w, l, { groupId: Uint8Array.of(1), leafIndex: 5 }),
    );
    expect([...withCtx.subarray(-6)]).toEqual([1, 1, 0, 0, 0, 5]);
  });

  test("§6.1 confirmation_tag iff commit, §6.2 membership_tag iff member, FramedContentTBS context", () => {
    const auth = { signature: Uint8Array.of(1), confirmationTag: Uint8Array.of(2) };
    expect(() => encode(auth, (w, a) => writeFramedContentAuthData(w, a, 1))).toThrow(TypeError);
    expect(() =>
      encode({ ...auth, confirmationTag: undefined }, (w, a) => writeFramedContentAuthData(w, a, 3)),
    ).toThrow(TypeError);
    expect(
      decodeExact(
        encode(auth, (w, a) => writeFramedContentAuthData(w, a, 3)),
        (r) => readFramedContentAuthData(r, 3),
      ),
    ).toEqual(auth);
    const pm: PublicMessage = {
      content,
      auth: { signature: Uint8Array.of(1), confirmationTag: undefined },
      membershipTag: undefined,
    };
    expect(() => encode(pm, writePublicMessage)).toThrow(TypeError);
    const ext: PublicMessage = {
      ...pm,
      content: { ...content, sender: { senderType: 2, senderIndex: 0 } },
      membershipTag: Uint8Array.of(1),
    };
    expect(() => encode(ext, writePublicMessage)).toThrow(TypeError);
    expect(() => encode(content, (w, c) => writeFramedContentTbs(w, 1, c))).toThrow(TypeError);
    const external = { ...content, sender: { senderType: 2 as const, senderIndex: 1 } };
    expect(encode(external, (w, c) => writeFramedContentTbs(w, 1, c)).subarray(0, 4)).toEqual(
      Uint8Array.of(0, 1, 0, 1),
    );
  });

  test("§6.3.2 reuse_guard is 4 bytes; wire format must be known", () => {
    expect(() =>
      encode({ leafIndex: 0, generation: 0, reuseGuard: Uint8Array.of(1, 2, 3) }, writeSenderData),
    ).toThrow(TypeError);
    const bad = { wireFormat: 9, keyPackage: {} } as unknown as MlsMessage;
    expect(() => encode(bad, writeMlsMessage)).toThrow(TypeError);
  });
});
