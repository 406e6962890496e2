/**
 * Our key package codec (src/mls/keypackage/codec.ts, src/mls/credential/codec.ts) on packages
 * made by another implementation, ts-mls 1.6.4 being only the oracle: its GREASE capabilities
 * and an X.509 credential, which messages.json (the input of test/mls/codec/fuzz.test.ts) does
 * not carry; and ours. (Ported from the old adapter's fast-decode test onto the engine.)
 *
 * For each package: we decode it and re-encode it byte for byte, and both its signatures verify
 * with our checks. For every truncation and 300 seeded bit flips of the package, its leaf node
 * and its credential: what we accept re-encodes to the very same bytes; when ts-mls also reads
 * it fully, ts-mls's re-encoding is those bytes too; and what ts-mls reads canonically but we
 * refuse is refused by a rule RFC 9420 gives us (an unknown enum value without a length).
 */
import { describe, expect, it } from "vitest";
import { generateKeyPackage } from "ts-mls";
import { decodeCredential, encodeCredential } from "ts-mls/credential.js";
import { getCiphersuiteFromId } from "ts-mls/crypto/ciphersuite.js";
import { defaultCapabilities } from "ts-mls/defaultCapabilities.js";
import { decodeKeyPackage, encodeKeyPackage } from "ts-mls/keyPackage.js";
import { decodeLeafNode, encodeLeafNode } from "ts-mls/leafNode.js";
import { defaultLifetime } from "ts-mls/lifetime.js";
import { DecodeError, decodeExact, encode, type Reader, type Writer } from "../../../src/mls/codec/index.js";
import { readCredential, writeCredential } from "../../../src/mls/credential/codec.js";
import { bytesEqual } from "../../../src/mls/crypto/bytes.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import {
  readKeyPackage,
  readLeafNode,
  writeKeyPackage,
  writeLeafNode,
} from "../../../src/mls/keypackage/codec.js";
import { parseKeyPackage } from "../../../src/mls/keypackage/parse.js";
import { keyPackageSignContents } from "../../../src/mls/keypackage/validate.js";
import { node, validPackage } from "./fixtures.js";

/** Rules by which we may refuse a canonical encoding ts-mls reads (RFC 9420 §2.1: no way to skip). */
const INTENDED_DIFFERENCES: ReadonlySet<string> = new Set(["§2.1 unknown enum value"]);

interface Codec {
  readonly read: (r: Reader) => unknown;
  readonly write: (w: Writer, v: never) => void;
  readonly tsDecode: (b: Uint8Array, offset: number) => [unknown, number] | undefined;
  readonly tsEncode: (v: never) => Uint8Array;
}

const KEY_PACKAGE: Codec = {
  read: readKeyPackage,
  write: writeKeyPackage,
  tsDecode: decodeKeyPackage,
  tsEncode: encodeKeyPackage,
};
const LEAF_NODE: Codec = {
  read: readLeafNode,
  write: writeLeafNode,
  tsDecode: decodeLeafNode,
  tsEncode: encodeLeafNode,
};
const CREDENTIAL: Codec = {
  read: readCredential,
  write: writeCredential,
  tsDecode: decodeCredential,
  tsEncode: encodeCredential,
};

/** ts-mls's re-encoding of its full decode of `input`, or undefined when it refuses. */
function tsRoundTrip(c: Codec, input: Uint8Array): Uint8Array | undefined {
  try {
    const d = c.tsDecode(input, 0);
    if (d === undefined || d[1] !== input.length) return undefined;
    return c.tsEncode(d[0] as never);
  } catch {
    return undefined;
  }
}

/** `expect(actual).toEqual(expected)`, paid for only when they differ (thousands of inputs). */
function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (!bytesEqual(actual, expected)) expect(actual, what).toEqual(expected);
}

function agree(c: Codec, input: Uint8Array): void {
  let ours: unknown;
  let refused: DecodeError | undefined;
  try {
    ours = decodeExact(input, c.read);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e; // only ever a DecodeError
    refused = e;
  }
  const theirs = tsRoundTrip(c, input);
  if (refused === undefined) {
    sameBytes(encode(ours as never, c.write), input, "our re-encoding");
    if (theirs !== undefined) sameBytes(theirs, input, "ts-mls's re-encoding");
  } else if (theirs !== undefined && bytesEqual(theirs, input) && !INTENDED_DIFFERENCES.has(refused.rule)) {
    expect.fail(`we refuse a canonical encoding ts-mls reads: ${refused.rule}: ${refused.message}`);
  }
}

function fuzz(c: Codec, bytes: Uint8Array): void {
  agree(c, bytes);
  for (let n = 0; n < bytes.length; n++) agree(c, bytes.subarray(0, n));
  let seed = bytes.length;
  for (let i = 0; i < 300; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const copy = Uint8Array.from(bytes);
    const at = seed % copy.length;
    copy[at] = (copy[at] as number) ^ (1 << ((seed >>> 8) % 8));
    agree(c, copy);
  }
}

async function packages(): Promise<Array<[string, Uint8Array]>> {
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
  return [
    ["ours", (await validPackage(1)).bytes],
    ["ours, last resort", (await validPackage(1, { lastResort: true })).bytes],
    ["ts-mls basic, GREASE", encodeKeyPackage(basic.publicPackage)],
    ["ts-mls X.509, GREASE, last resort", encodeKeyPackage(x509.publicPackage)],
  ];
}

describe("key package codec against ts-mls (oracle)", () => {
  it("decodes, re-encodes and verifies foreign and own packages; agrees on mutations", async () => {
    const cs = await node(1);
    for (const [name, bytes] of await packages()) {
      const kp = parseKeyPackage(bytes);
      expect(encode(kp, writeKeyPackage), name).toEqual(bytes);
      const signed = keyPackageSignContents(kp);
      const key = kp.leafNode.signatureKey;
      expect(await cs.signature.verify(key, signed.leaf, kp.leafNode.signature), name).toBe(true);
      expect(await cs.signature.verify(key, signed.keyPackage, kp.signature), name).toBe(true);

      fuzz(KEY_PACKAGE, bytes);
      fuzz(LEAF_NODE, encode(kp.leafNode, writeLeafNode));
      fuzz(CREDENTIAL, encode(kp.leafNode.credential, writeCredential));
    }
  }, 60_000);
});
