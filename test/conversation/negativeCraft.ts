/**
 * Hostile inputs for the negative tests of the public API: a hostile group member driven through
 * raw ts-mls (it holds every secret of its own state, so it can re-sign, re-MAC and re-encrypt),
 * and byte surgery on Welcomes with the victim's own init key (read from its database, as an
 * attacker who knows the joiner secret could). ts-mls only BUILDS the attack here; what the
 * tests check is what our library answers.
 */
import {
  createApplicationMessage,
  createCommit,
  createProposal,
  createGroup,
  decodeMlsMessage,
  defaultCryptoProvider,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteImpl,
  joinGroup,
  processMessage,
  acceptAll,
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type Update,
  type MLSMessage,
  type PrivateKeyPackage,
  type Proposal,
  type Welcome,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { decodeKeyPackage, encodeKeyPackage, makeKeyPackageRef, signKeyPackage } from "ts-mls/keyPackage.js";
import { signLeafNodeCommit, signLeafNodeKeyPackage } from "ts-mls/leafNode.js";
import {
  decodeGroupInfo,
  encodeGroupInfo,
  encodeGroupInfoTBS,
  extractWelcomeSecret,
  type GroupInfo,
} from "ts-mls/groupInfo.js";
import { decryptGroupSecrets, encryptGroupSecrets, welcomeKey, welcomeNonce } from "ts-mls/welcome.js";
import type { GroupSecrets } from "ts-mls/groupSecrets.js";
import { signWithLabel } from "ts-mls/crypto/signature.js";
import {
  createConfirmationTag,
  signFramedContentTBS,
  toTbs,
  type FramedContent,
} from "ts-mls/framedContent.js";
import { createMembershipTag } from "ts-mls/authenticatedContent.js";
import { deriveKeySchedule } from "ts-mls/keySchedule.js";
import { treeHashRoot } from "ts-mls/treeHash.js";
import { decodeRatchetTree, encodeRatchetTree, type RatchetTree } from "ts-mls/ratchetTree.js";
import type { Ciphersuite, Keypackage } from "../../src/index.js";
import { enc, type Member } from "./helpers.js";

export async function tsSuite(suite: Ciphersuite): Promise<CiphersuiteImpl> {
  return getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId), defaultCryptoProvider);
}

export interface TsKeyPackage {
  kp: KeyPackage;
  priv: PrivateKeyPackage;
  bytes: Uint8Array;
}

/**
 * A ts-mls key package. Lifetime in seconds relative to `now` (default: one minute ago to one
 * day ahead); `identity` may be anything, the empty string included.
 */
export async function tsKeyPackage(
  cs: CiphersuiteImpl,
  options: {
    identity?: string;
    certificate?: Uint8Array;
    notBefore?: bigint;
    notAfter?: bigint;
    now?: number;
  } = {},
): Promise<TsKeyPackage> {
  const now = BigInt(Math.floor((options.now ?? Date.now()) / 1000));
  const { publicPackage, privatePackage } = await generateKeyPackage(
    options.certificate !== undefined
      ? { credentialType: "x509", certificates: [options.certificate] }
      : {
          credentialType: "basic",
          identity: enc(options.identity ?? "99999999-8888-4777-8666-555555555555:e1@evil.example"),
        },
    {
      versions: ["mls10"],
      ciphersuites: [cs.name],
      extensions: [],
      proposals: [],
      credentials: ["basic", "x509"],
    },
    { notBefore: now + (options.notBefore ?? -60n), notAfter: now + (options.notAfter ?? 86_400n) },
    [],
    cs,
  );
  return { kp: publicPackage, priv: privatePackage, bytes: encodeKeyPackage(publicPackage) };
}

/**
 * A validly signed key package whose leaf carries `encryptionKey` (someone else's: §7.3 forbids
 * it once in a tree; each signature on its own verifies).
 */
export async function tsKeyPackageWithEncryptionKey(
  cs: CiphersuiteImpl,
  encryptionKey: Uint8Array,
  identity = "mallory",
): Promise<KeyPackage> {
  const { kp, priv } = await tsKeyPackage(cs, { identity });
  const { signature: _leafSignature, ...leafTbs } = kp.leafNode;
  const leafNode = await signLeafNodeKeyPackage(
    { ...leafTbs, hpkePublicKey: encryptionKey },
    priv.signaturePrivateKey,
    cs.signature,
  );
  const { signature: _signature, ...tbs } = kp;
  return signKeyPackage({ ...tbs, leafNode }, priv.signaturePrivateKey, cs.signature);
}

/** ts-mls's decoded form of one of our key packages. */
export function asTs(kp: Keypackage): KeyPackage {
  const r = decodeKeyPackage(kp.serialize(), 0);
  if (r === undefined) throw new Error("our key package does not decode in ts-mls");
  return r[0];
}

function mls(bytes: Uint8Array): MLSMessage {
  const r = decodeMlsMessage(bytes, 0);
  if (r === undefined) throw new Error("not an MLSMessage");
  return r[0];
}

/** A group member driven through raw ts-mls; commits are sent as PublicMessage unless told. */
export class Hostile {
  constructor(
    public state: ClientState,
    readonly cs: CiphersuiteImpl,
    readonly signaturePrivateKey: Uint8Array,
  ) {}

  static async create(id: Uint8Array, cs: CiphersuiteImpl, own?: TsKeyPackage): Promise<Hostile> {
    const { kp, priv } = own ?? (await tsKeyPackage(cs));
    return new Hostile(await createGroup(id, kp, priv, [], cs), cs, priv.signaturePrivateKey);
  }

  static async join(welcome: Uint8Array, cs: CiphersuiteImpl, own: TsKeyPackage): Promise<Hostile> {
    const w = mls(welcome);
    if (w.wireformat !== "mls_welcome") throw new Error("not a Welcome");
    return new Hostile(
      await joinGroup(w.welcome, own.kp, own.priv, emptyPskIndex, cs),
      cs,
      own.priv.signaturePrivateKey,
    );
  }

  /**
   * A commit with `proposals` by value (and a path when ts-mls needs or `path` asks one).
   * `apply: false` keeps our state at the current epoch (the commit is then only an input).
   */
  async commit(
    proposals: Proposal[] = [],
    options: { apply?: boolean; publicMessage?: boolean } = {},
  ): Promise<{ commit: Uint8Array; welcome: Uint8Array | undefined; before: ClientState }> {
    const before = this.state;
    const r = await createCommit(
      { state: this.state, cipherSuite: this.cs },
      {
        extraProposals: proposals,
        ratchetTreeExtension: true,
        wireAsPublicMessage: options.publicMessage ?? true,
      },
    );
    if (options.apply !== false) this.state = r.newState;
    return {
      commit: encodeMlsMessage(r.commit),
      welcome:
        r.welcome === undefined
          ? undefined
          : encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: r.welcome }),
      before,
    };
  }

  async add(...kps: KeyPackage[]) {
    return this.commit(kps.map((keyPackage): Proposal => ({ proposalType: "add", add: { keyPackage } })));
  }

  /** A proposal (PublicMessage unless told), stored in our own state as ts-mls does. */
  async propose(proposal: Proposal, publicMessage = true): Promise<Uint8Array> {
    const r = await createProposal(this.state, publicMessage, proposal, this.cs);
    this.state = r.newState;
    return encodeMlsMessage(r.message);
  }

  /** A new leaf for our own position (§7.2, leaf_node_source update): fresh encryption key, same credential. */
  async updateLeaf(): Promise<Update["leafNode"]> {
    const leafIndex = this.state.privatePath.leafIndex;
    const current = this.state.ratchetTree[2 * leafIndex];
    if (current?.nodeType !== "leaf") throw new Error("no own leaf");
    const { signature: _old, ...rest } = current.leaf;
    const keys = await this.cs.hpke.generateKeyPair();
    const tbs = {
      ...rest,
      hpkePublicKey: await this.cs.hpke.exportPublicKey(keys.publicKey),
      leafNodeSource: "update" as const,
      groupId: this.state.groupContext.groupId,
      leafIndex,
    };
    // LeafNodeTBS of an update leaf carries group_id and leaf_index (§7.2); the leaf does not
    const signed = (await signLeafNodeCommit(
      tbs as unknown as Parameters<typeof signLeafNodeCommit>[0],
      this.signaturePrivateKey,
      this.cs.signature,
    )) as unknown as Record<string, unknown>;
    const { groupId: _g, leafIndex: _l, ...leaf } = signed;
    return leaf as unknown as Update["leafNode"];
  }

  async send(text: string): Promise<Uint8Array> {
    const r = await createApplicationMessage(this.state, enc(text), this.cs);
    this.state = r.newState;
    return encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_private_message",
      privateMessage: r.privateMessage,
    });
  }

  async receive(bytes: Uint8Array): Promise<Uint8Array | undefined> {
    const m = mls(bytes);
    if (m.wireformat !== "mls_public_message" && m.wireformat !== "mls_private_message")
      throw new Error("not a message");
    const r = await processMessage(m, this.state, emptyPskIndex, acceptAll, this.cs);
    this.state = r.newState;
    return r.kind === "applicationMessage" ? r.message : undefined;
  }

  /**
   * A PublicMessage of ours with its content and auth changed by `edit`, then signed again
   * (FramedContentTBS, §6.1) and MACed again (membership tag, §6.2) with the keys of `at` (the
   * state it was sent from): a well-authenticated message carrying whatever the member wants.
   */
  async reauthenticate(
    bytes: Uint8Array,
    at: ClientState,
    edit: (
      content: FramedContent,
      auth: { signature: Uint8Array; confirmationTag?: Uint8Array },
    ) => {
      content: FramedContent;
      confirmationTag?: Uint8Array;
    },
    options: { resign?: boolean } = {},
  ): Promise<Uint8Array> {
    const m = mls(bytes);
    if (m.wireformat !== "mls_public_message") throw new Error("not a PublicMessage");
    const pm = m.publicMessage;
    const auth = pm.auth as { contentType: string; signature: Uint8Array; confirmationTag?: Uint8Array };
    const edited = edit(pm.content, auth);
    const tbs = toTbs(edited.content, "mls_public_message", at.groupContext);
    const signature =
      options.resign === false
        ? auth.signature
        : await signFramedContentTBS(this.signaturePrivateKey, tbs, this.cs.signature);
    const newAuth = {
      ...auth,
      signature,
      ...(edited.confirmationTag === undefined ? {} : { confirmationTag: edited.confirmationTag }),
    } as typeof pm.auth;
    const membershipTag = await createMembershipTag(
      at.keySchedule.membershipKey,
      { contentTbs: tbs, auth: newAuth },
      this.cs.hash,
    );
    return encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_public_message",
      publicMessage: { ...pm, content: edited.content, auth: newAuth, membershipTag } as typeof pm,
    });
  }
}

// ── Welcome surgery ─────────────────────────────────────────────────────────

/** A Welcome opened with the victim's init private key: its group secrets and GroupInfo in clear. */
export interface OpenedWelcome {
  readonly cs: CiphersuiteImpl;
  readonly welcome: Welcome;
  readonly newMember: Uint8Array;
  readonly initPublicKey: Uint8Array;
  readonly groupSecrets: GroupSecrets;
  /** The decrypted GroupInfo bytes (GroupInfoTBS || signature<V>). */
  readonly groupInfoBytes: Uint8Array;
  readonly groupInfo: GroupInfo;
}

/** Open the Welcome sent to `kp` (one of the victim's stored packages). */
export async function openWelcome(bytes: Uint8Array, victim: Member, kp: Keypackage): Promise<OpenedWelcome> {
  const m = mls(bytes);
  if (m.wireformat !== "mls_welcome") throw new Error("not a Welcome");
  const cs = await tsSuite(kp.ciphersuite());
  const initPublicKey = kp.initKey();
  const row = await victim.database.keystore.get(
    "hpke_private_keys",
    Buffer.from(initPublicKey).toString("hex"),
  );
  if (row === undefined) throw new Error("the victim has no such init key");
  const newMember = await makeKeyPackageRef(asTs(kp), cs.hash);
  const groupSecrets = await decryptGroupSecrets(
    await cs.hpke.importPrivateKey(row.privateKey),
    newMember,
    m.welcome,
    cs.hpke,
  );
  if (groupSecrets === undefined) throw new Error("group secrets do not decode");
  const welcomeSecret = await extractWelcomeSecret(
    groupSecrets.joinerSecret,
    new Uint8Array(cs.kdf.size),
    cs.kdf,
  );
  const groupInfoBytes = await cs.hpke.decryptAead(
    await welcomeKey(welcomeSecret, cs),
    await welcomeNonce(welcomeSecret, cs),
    undefined,
    m.welcome.encryptedGroupInfo,
  );
  const gi = decodeGroupInfo(groupInfoBytes, 0);
  if (gi === undefined) throw new Error("GroupInfo does not decode");
  return { cs, welcome: m.welcome, newMember, initPublicKey, groupSecrets, groupInfoBytes, groupInfo: gi[0] };
}

/** Encrypt again (GroupInfo under the welcome secret, then the group secrets to the init key). */
export async function sealWelcome(
  opened: OpenedWelcome,
  change: { groupSecrets?: GroupSecrets; groupInfoBytes?: Uint8Array } = {},
): Promise<Uint8Array> {
  const { cs } = opened;
  const groupSecrets = change.groupSecrets ?? opened.groupSecrets;
  const welcomeSecret = await extractWelcomeSecret(
    groupSecrets.joinerSecret,
    new Uint8Array(cs.kdf.size),
    cs.kdf,
  );
  const encryptedGroupInfo = await cs.hpke.encryptAead(
    await welcomeKey(welcomeSecret, cs),
    await welcomeNonce(welcomeSecret, cs),
    undefined,
    change.groupInfoBytes ?? opened.groupInfoBytes,
  );
  const egs = await encryptGroupSecrets(
    await cs.hpke.importPublicKey(opened.initPublicKey),
    encryptedGroupInfo,
    groupSecrets,
    cs.hpke,
  );
  const welcome: Welcome = {
    cipherSuite: opened.welcome.cipherSuite,
    secrets: [
      { newMember: opened.newMember, encryptedGroupSecrets: { kemOutput: egs.enc, ciphertext: egs.ct } },
    ],
    encryptedGroupInfo,
  };
  return encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome });
}

/** GroupInfo bytes signed by `signer` (GroupInfoTBS, §12.4.3). */
export async function signedGroupInfo(
  gi: GroupInfo,
  signer: Uint8Array,
  cs: CiphersuiteImpl,
): Promise<Uint8Array> {
  const tbs = encodeGroupInfoTBS(gi);
  const signature = await signWithLabel(signer, "GroupInfoTBS", tbs, cs.signature);
  return encodeGroupInfo({ ...gi, signature });
}

/** The ratchet tree of a GroupInfo's `ratchet_tree` extension. */
export function treeOf(gi: GroupInfo): RatchetTree {
  const ext = gi.extensions.find((e) => e.extensionType === "ratchet_tree");
  const t = ext === undefined ? undefined : decodeRatchetTree(ext.extensionData, 0);
  if (t === undefined) throw new Error("no ratchet tree");
  return t[0];
}

/**
 * What a hostile creator who knows the joiner secret can send: the GroupInfo with `tree` in its
 * ratchet_tree extension, the matching tree hash in the GroupContext, the confirmation tag of the
 * key schedule that context gives (§8), signed by `signer`. Every check passes but the tree's own.
 */
export async function withTree(
  opened: OpenedWelcome,
  tree: RatchetTree,
  signer: Uint8Array,
): Promise<Uint8Array> {
  const { cs, groupInfo: gi } = opened;
  const groupContext = { ...gi.groupContext, treeHash: await treeHashRoot(tree, cs.hash) };
  const [keySchedule] = await deriveKeySchedule(
    opened.groupSecrets.joinerSecret,
    new Uint8Array(cs.kdf.size),
    groupContext,
    cs.kdf,
  );
  const confirmationTag = await createConfirmationTag(
    keySchedule.confirmationKey,
    groupContext.confirmedTranscriptHash,
    cs.hash,
  );
  const extensions = gi.extensions.map((e) =>
    e.extensionType === "ratchet_tree" ? { ...e, extensionData: encodeRatchetTree(tree) } : e,
  );
  return signedGroupInfo({ ...gi, groupContext, confirmationTag, extensions }, signer, cs);
}

/**
 * Leaf `leafIndex` (source commit) of `tree` signed again by `signer` (LeafNodeTBS with group_id
 * and leaf_index, §7.2): the tree then breaks whatever rule the edit made, but not the signature.
 */
export async function resignCommitLeaf(
  tree: RatchetTree,
  leafIndex: number,
  groupId: Uint8Array,
  signer: Uint8Array,
  cs: CiphersuiteImpl,
): Promise<void> {
  const n = tree[2 * leafIndex];
  if (n?.nodeType !== "leaf" || n.leaf.leafNodeSource !== "commit") throw new Error("not a commit leaf");
  const { signature: _old, ...rest } = n.leaf;
  const signed = (await signLeafNodeCommit(
    { ...rest, groupId, leafIndex },
    signer,
    cs.signature,
  )) as unknown as Record<string, unknown>;
  const { groupId: _g, leafIndex: _l, ...leaf } = signed;
  tree[2 * leafIndex] = { ...n, leaf: leaf as unknown as typeof n.leaf };
}

/** Read our stored key package refs (hex) — "not consumed" means still listed. */
export async function refsOf(m: Member): Promise<string[]> {
  return (await m.cc.transaction((tx) => tx.getKeypackageRefs())).map((r) => r.hex()).sort();
}
