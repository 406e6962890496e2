/**
 * Fast TLS decoders (RFC 9420 §2.1) for the structures on our hot paths: LeafNode, ParentNode,
 * the ratchet tree (§12.4.3.3), KeyPackage (§10), GroupContext (§8.1) and GroupInfo (§12.4.3).
 *
 * ts-mls 1.6.4's decoders are correct but slow: every enum value (cipher suite, credential
 * type, extension type…) is mapped back to its name through a reverse map rebuilt, with
 * object spreads, on every call, so decoding one leaf node costs ~40–160 µs — more than the
 * Ed25519 verification of its signature. These decoders produce exactly the same JavaScript
 * values as ts-mls's (same shapes, same enum names, numbers kept for unknown code points,
 * byte fields as views into the input), accept exactly the same inputs, and reject the same
 * malformed ones (test/mls/fast-decode.test.ts checks them against ts-mls). The only
 * difference: an `optional<T>` presence octet other than 0 or 1 is refused, where ts-mls
 * reads it as "absent" (RFC 9420 §2.1.1 allows only 0 and 1; ts-mls only ever writes those).
 */
import type {
  Capabilities,
  CiphersuiteName,
  Credential,
  Extension,
  GroupContext,
  KeyPackage,
  LeafNode,
  ParentNode,
  RatchetTree,
  Welcome,
} from "ts-mls";
import type { GroupInfo } from "ts-mls/groupInfo.js";
import { ciphersuites } from "ts-mls/crypto/ciphersuite.js";
import { defaultExtensionTypes } from "ts-mls/defaultExtensionType.js";

/** Thrown internally on malformed input; every exported decoder turns it into `undefined`. */
class Malformed extends Error {}

function invert<K extends string>(rec: Readonly<Record<K, number>>): Map<number, K> {
  const m = new Map<number, K>();
  for (const [k, v] of Object.entries(rec) as [K, number][]) m.set(v, k);
  return m;
}

const SUITE_NAMES = invert(ciphersuites as Record<CiphersuiteName, number>);
const EXTENSION_NAMES = invert(defaultExtensionTypes as Record<string, number>);
const CREDENTIAL_NAMES = new Map<number, string>([
  [1, "basic"],
  [2, "x509"],
]);
const LEAF_SOURCES = new Map<number, LeafNode["leafNodeSource"]>([
  [1, "key_package"],
  [2, "update"],
  [3, "commit"],
]);

/** A cursor over `b`, bounded by `end`. */
class Reader {
  /** False once a variable-length integer used more bytes than needed (RFC 9420 §2.1.2). */
  minimal = true;
  constructor(
    readonly b: Uint8Array,
    public off: number,
    readonly end: number,
  ) {}

  u8(): number {
    if (this.off + 1 > this.end) throw new Malformed();
    return this.b[this.off++] as number;
  }

  u16(): number {
    if (this.off + 2 > this.end) throw new Malformed();
    const v = ((this.b[this.off] as number) << 8) | (this.b[this.off + 1] as number);
    this.off += 2;
    return v;
  }

  u32(): number {
    if (this.off + 4 > this.end) throw new Malformed();
    const b = this.b;
    const o = this.off;
    const v =
      (b[o] as number) * 0x1000000 +
      (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number));
    this.off += 4;
    return v;
  }

  u64(): bigint {
    const hi = this.u32();
    const lo = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** RFC 9420 §2.1.2 variable-length integer, as ts-mls reads it (1, 2 or 4 bytes). */
  varint(): number {
    if (this.off >= this.end) throw new Malformed();
    const b = this.b;
    const first = b[this.off] as number;
    const prefix = first >> 6;
    if (prefix === 0) {
      this.off += 1;
      return first & 0x3f;
    }
    if (prefix === 1) {
      if (this.off + 2 > this.end) throw new Malformed();
      const v = ((first & 0x3f) << 8) | (b[this.off + 1] as number);
      this.off += 2;
      if (v < 0x40) this.minimal = false;
      return v;
    }
    if (prefix === 2) {
      if (this.off + 4 > this.end) throw new Malformed();
      const v =
        ((first & 0x3f) << 24) |
        ((b[this.off + 1] as number) << 16) |
        ((b[this.off + 2] as number) << 8) |
        (b[this.off + 3] as number);
      this.off += 4;
      if (v < 0x4000) this.minimal = false;
      return v;
    }
    throw new Malformed();
  }

  /** `opaque data<V>`: a view into the input, like ts-mls's `decodeVarLenData`. */
  bytes(): Uint8Array {
    const n = this.varint();
    if (this.off + n > this.end) throw new Malformed();
    const out = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  /** `T items<V>`: decodes items until the vector's end; an item may not cross it. */
  vector<T>(item: (r: Reader) => T): T[] {
    const n = this.varint();
    const end = this.off + n;
    if (end > this.end) throw new Malformed();
    const inner = new Reader(this.b, this.off, end);
    const out: T[] = [];
    while (inner.off < end) out.push(item(inner));
    if (!inner.minimal) this.minimal = false;
    this.off = end;
    return out;
  }
}

const suiteName = (r: Reader): CiphersuiteName => {
  const n = r.u16();
  return SUITE_NAMES.get(n) ?? (n.toString() as CiphersuiteName);
};

const protocolVersion = (r: Reader): "mls10" => {
  if (r.u16() !== 1) throw new Malformed(); // ts-mls knows mls10 only
  return "mls10";
};

const credentialType = (r: Reader): string => {
  const n = r.u16();
  return CREDENTIAL_NAMES.get(n) ?? n.toString();
};

function extension(r: Reader): Extension {
  const n = r.u16();
  const extensionType = EXTENSION_NAMES.get(n) ?? n;
  return { extensionType, extensionData: r.bytes() } as Extension;
}

function credential(r: Reader): Credential {
  const t = credentialType(r);
  if (t === "basic") return { credentialType: "basic", identity: r.bytes() };
  if (t === "x509") return { credentialType: "x509", certificates: r.vector((x) => x.bytes()) };
  throw new Malformed(); // ts-mls 1.6.4 cannot decode other credential types either
}

function capabilities(r: Reader): Capabilities {
  const versions = r.vector(protocolVersion);
  const ciphersuites = r.vector(suiteName);
  const extensions = r.vector((x) => x.u16());
  const proposals = r.vector((x) => x.u16());
  const credentials = r.vector(credentialType);
  return { versions, ciphersuites, extensions, proposals, credentials } as Capabilities;
}

function leafNode(r: Reader): LeafNode {
  const hpkePublicKey = r.bytes();
  const signaturePublicKey = r.bytes();
  const cred = credential(r);
  const caps = capabilities(r);
  const source = LEAF_SOURCES.get(r.u8());
  const data = { hpkePublicKey, signaturePublicKey, credential: cred, capabilities: caps };
  switch (source) {
    case "key_package": {
      const notBefore = r.u64();
      const notAfter = r.u64();
      const extensions = r.vector(extension);
      return {
        ...data,
        leafNodeSource: source,
        lifetime: { notBefore, notAfter },
        extensions,
        signature: r.bytes(),
      } as LeafNode;
    }
    case "update": {
      const extensions = r.vector(extension);
      return { ...data, leafNodeSource: source, extensions, signature: r.bytes() } as LeafNode;
    }
    case "commit": {
      const parentHash = r.bytes();
      const extensions = r.vector(extension);
      return { ...data, leafNodeSource: source, parentHash, extensions, signature: r.bytes() } as LeafNode;
    }
    default:
      throw new Malformed();
  }
}

function parentNode(r: Reader): ParentNode {
  const hpkePublicKey = r.bytes();
  const parentHash = r.bytes();
  const unmergedLeaves = r.vector((x) => x.u32());
  return { hpkePublicKey, parentHash, unmergedLeaves };
}

type TreeNode = RatchetTree[number];

function optionalNode(r: Reader): TreeNode {
  const present = r.u8();
  if (present === 0) return undefined;
  if (present !== 1) throw new Malformed();
  const t = r.u8();
  if (t === 1) return { nodeType: "leaf", leaf: leafNode(r) };
  if (t === 2) return { nodeType: "parent", parent: parentNode(r) };
  throw new Malformed();
}

/** ts-mls `extendRatchetTree`: last node non-blank, then blank-padded to 2^(d+1) - 1 nodes. */
function extend(tree: TreeNode[]): RatchetTree {
  if (tree.length === 0 || tree[tree.length - 1] === undefined) throw new Malformed();
  let d = 0;
  while ((1 << (d + 1)) - 1 < tree.length) d++;
  const size = (1 << (d + 1)) - 1;
  while (tree.length < size) tree.push(undefined);
  return tree as RatchetTree;
}

function groupContext(r: Reader): GroupContext {
  const version = protocolVersion(r);
  const cipherSuite = suiteName(r);
  const groupId = r.bytes();
  const epoch = r.u64();
  const treeHash = r.bytes();
  const confirmedTranscriptHash = r.bytes();
  const extensions = r.vector(extension);
  return { version, cipherSuite, groupId, epoch, treeHash, confirmedTranscriptHash, extensions };
}

/** Runs `f` over `bytes[offset..]`; [value, bytes read], or undefined when malformed. */
function run<T>(f: (r: Reader) => T, bytes: Uint8Array, offset: number): [T, number] | undefined {
  const r = new Reader(bytes, offset, bytes.length);
  try {
    const v = f(r);
    return [v, r.off - offset];
  } catch (err) {
    if (err instanceof Malformed) return undefined;
    throw err;
  }
}

/** Same as ts-mls `decodeLeafNode`. */
export function fastDecodeLeafNode(bytes: Uint8Array, offset: number): [LeafNode, number] | undefined {
  return run(leafNode, bytes, offset);
}

/** Same as ts-mls `decodeRatchetTree` (`optional<Node> ratchet_tree<V>`, extended with blanks). */
export function fastDecodeRatchetTree(bytes: Uint8Array, offset: number): [RatchetTree, number] | undefined {
  return run((r) => extend(r.vector(optionalNode)), bytes, offset);
}

/**
 * A whole `ratchet_tree` extension (§12.4.3.3), decoded as by ts-mls's `ratchetTreeFromExtension`,
 * plus whether `bytes` is exactly ts-mls's encoding of the result (`encodeRatchetTree`): true
 * when the tree takes all of `bytes` and every length is minimally encoded (the structures
 * decoded here have no other encoding freedom: presence octets are 0/1, no trailing blanks).
 */
export function fastDecodeTreeExtension(
  bytes: Uint8Array,
): { tree: RatchetTree; canonical: boolean } | undefined {
  const r = new Reader(bytes, 0, bytes.length);
  try {
    const tree = extend(r.vector(optionalNode));
    return { tree, canonical: r.minimal && r.off === bytes.length };
  } catch (err) {
    if (err instanceof Malformed) return undefined;
    throw err;
  }
}

/** Same as ts-mls `decodeKeyPackage` (the leaf node must have source key_package). */
export function fastDecodeKeyPackage(bytes: Uint8Array, offset: number): [KeyPackage, number] | undefined {
  return run(
    (r): KeyPackage => {
      const version = protocolVersion(r);
      const cipherSuite = suiteName(r);
      const initKey = r.bytes();
      const leaf = leafNode(r);
      if (leaf.leafNodeSource !== "key_package") throw new Malformed();
      const extensions = r.vector(extension);
      return {
        version,
        cipherSuite,
        initKey,
        leafNode: leaf,
        extensions,
        signature: r.bytes(),
      } as KeyPackage;
    },
    bytes,
    offset,
  );
}

/** Same as ts-mls `decodeGroupContext`. */
export function fastDecodeGroupContext(
  bytes: Uint8Array,
  offset: number,
): [GroupContext, number] | undefined {
  return run(groupContext, bytes, offset);
}

/** Same as ts-mls `decodeGroupInfo`. */
export function fastDecodeGroupInfo(bytes: Uint8Array, offset: number): [GroupInfo, number] | undefined {
  return run(
    (r): GroupInfo => {
      const gc = groupContext(r);
      const extensions = r.vector(extension);
      const confirmationTag = r.bytes();
      const signer = r.u32();
      return { groupContext: gc, extensions, confirmationTag, signer, signature: r.bytes() };
    },
    bytes,
    offset,
  );
}

/** Same as ts-mls `decodeWelcome` (§12.4.3.1). */
export function fastDecodeWelcome(bytes: Uint8Array, offset: number): [Welcome, number] | undefined {
  return run(
    (r): Welcome => {
      const cipherSuite = suiteName(r);
      const secrets = r.vector((x) => {
        const newMember = x.bytes();
        const kemOutput = x.bytes();
        return { newMember, encryptedGroupSecrets: { kemOutput, ciphertext: x.bytes() } };
      });
      return { cipherSuite, secrets, encryptedGroupInfo: r.bytes() };
    },
    bytes,
    offset,
  );
}

/** Same as ts-mls `decodeCredential` (basic and X509 only, like ts-mls 1.6.4). */
export function fastDecodeCredential(bytes: Uint8Array, offset: number): [Credential, number] | undefined {
  return run(credential, bytes, offset);
}
