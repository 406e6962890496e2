/**
 * Browser-safe (no vitest, no node: builtins) versions of the Node-side
 * vector checks in test/vectors/{key-schedule,secret-tree,welcome}.test.ts
 * and test/vectors/passive-client.ts. Each vector case yields a fixed list of
 * named checks (see CHECKS_PER_CASE), so a caller can assert the exact count.
 */
import type { CiphersuiteImpl, ClientState, CryptoProvider, KeyPackage, PrivateKeyPackage } from "ts-mls";
import { joinGroup, makePskIndex } from "ts-mls/clientState.js";
import {
  getCiphersuiteFromId,
  getCiphersuiteNameFromId,
  type CiphersuiteId,
} from "ts-mls/crypto/ciphersuite.js";
import { encodeGroupContext, type GroupContext } from "ts-mls/groupContext.js";
import { verifyGroupInfoConfirmationTag, verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { defaultKeyRetentionConfig } from "ts-mls/keyRetentionConfig.js";
import { initializeEpoch, mlsExporter } from "ts-mls/keySchedule.js";
import { decodeMlsMessage, encodeMlsMessage } from "ts-mls/message.js";
import { processPrivateMessage, processPublicMessage } from "ts-mls/processMessages.js";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { createSecretTree, deriveKey, deriveNonce, ratchetUntil } from "ts-mls/secretTree.js";
import { expandSenderDataKey, expandSenderDataNonce } from "ts-mls/sender.js";
import { leafToNodeIndex, toLeafIndex } from "ts-mls/treemath.js";
import { bytesToBase64 } from "ts-mls/util/byteArray.js";
import { decryptGroupInfo, decryptGroupSecrets } from "ts-mls/welcome.js";
import { bytesToHex, constantTimeEqual, hexToBytes } from "../../src/mls/crypto/bytes.js";

/** One crypto-basics.json case (RFC 9420 §5.1–5.2, §8). */
export interface CryptoBasics {
  cipher_suite: number;
  ref_hash: { label: string; value: string; out: string };
  expand_with_label: { secret: string; label: string; context: string; length: number; out: string };
  derive_secret: { secret: string; label: string; out: string };
  derive_tree_secret: { secret: string; label: string; generation: number; length: number; out: string };
  sign_with_label: { priv: string; pub: string; content: string; label: string; signature: string };
  encrypt_with_label: {
    priv: string;
    pub: string;
    label: string;
    context: string;
    plaintext: string;
    kem_output: string;
    ciphertext: string;
  };
}

/** One named check: passed, or the reason it did not. */
export interface Check {
  readonly suite: number;
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

const hex = hexToBytes;

/** Named checks emitted for every case of each vector file, in order. */
export const CHECKS_PER_CASE = {
  "key-schedule.json": ["group_context", "epoch_secrets", "external_pub", "exporter"],
  "secret-tree.json": ["sender_data", "handshake_ratchet", "application_ratchet"],
  "welcome.json": [
    "reencode",
    "verify_key_package",
    "key_package_ref",
    "decrypt_group_secrets",
    "decrypt_group_info",
    "confirmation_tag",
    "group_info_signature",
  ],
  "passive-client-welcome.json": [
    "init_priv",
    "encryption_priv",
    "signature_priv",
    "initial_epoch_authenticator",
    "epoch_authenticators",
  ],
} as const satisfies Record<string, readonly string[]>;

export type VectorFile = keyof typeof CHECKS_PER_CASE;

/**
 * Records the outcome of a case's named checks. Every name in `names` is
 * emitted exactly once: failed if any `expect` on it failed, if it was never
 * reached, or (for names not yet passed) if the case threw.
 */
class CaseRecorder {
  private readonly failures = new Map<string, string[]>();
  private readonly reached = new Set<string>();

  constructor(private readonly names: readonly string[]) {}

  /** Marks `name` reached; records a failure unless `actual === expected`. */
  eq(name: string, actual: unknown, expected: unknown, where = ""): void {
    this.touch(name);
    if (actual !== expected) {
      this.fail(name, `${where}expected ${String(expected)}, got ${String(actual)}`);
    }
  }

  /** Marks `name` reached; records a failure unless `cond`. */
  true(name: string, cond: boolean, where = ""): void {
    this.touch(name);
    if (!cond) this.fail(name, `${where}check returned false`);
  }

  /** Marks `name` reached without a comparison (a loop with nothing to compare). */
  touch(name: string): void {
    if (!this.names.includes(name)) throw new Error(`unknown check name ${name}`);
    this.reached.add(name);
  }

  private fail(name: string, detail: string): void {
    const list = this.failures.get(name) ?? [];
    list.push(detail);
    this.failures.set(name, list);
  }

  emit(out: Check[], suite: number, label: string, error?: unknown): void {
    const err = error === undefined ? undefined : String((error as Error)?.stack ?? error);
    for (const name of this.names) {
      const f = this.failures.get(name);
      const full = `${label} ${name}`;
      if (f !== undefined) out.push({ suite, name: full, ok: false, detail: f.join("; ") });
      else if (!this.reached.has(name)) {
        out.push({ suite, name: full, ok: false, detail: err ?? "never reached" });
      } else out.push({ suite, name: full, ok: true });
    }
  }
}

async function runCase(
  out: Check[],
  file: VectorFile,
  index: number,
  suite: number,
  body: (r: CaseRecorder) => Promise<void>,
): Promise<void> {
  const r = new CaseRecorder(CHECKS_PER_CASE[file]);
  let error: unknown;
  try {
    await body(r);
  } catch (e) {
    error = e ?? new Error("threw undefined");
  }
  r.emit(out, suite, `#${index}`, error);
}

function impl(provider: CryptoProvider, suite: number): Promise<CiphersuiteImpl> {
  return provider.getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId));
}

// ---------------------------------------------------------------- key-schedule

export interface KeyScheduleEpoch {
  commit_secret: string;
  confirmation_key: string;
  confirmed_transcript_hash: string;
  encryption_secret: string;
  epoch_authenticator: string;
  exporter: { context: string; label: string; length: number; secret: string };
  exporter_secret: string;
  external_pub: string;
  external_secret: string;
  group_context: string;
  init_secret: string;
  joiner_secret: string;
  membership_key: string;
  psk_secret: string;
  resumption_psk: string;
  sender_data_secret: string;
  tree_hash: string;
  welcome_secret: string;
}
export interface KeyScheduleVector {
  cipher_suite: number;
  group_id: string;
  initial_init_secret: string;
  epochs: KeyScheduleEpoch[];
}

async function keySchedule(v: KeyScheduleVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  let initSecret = hex(v.initial_init_secret);
  for (const [i, epoch] of v.epochs.entries()) {
    const at = `epoch ${i}: `;
    const gc: GroupContext = {
      version: "mls10",
      cipherSuite: getCiphersuiteNameFromId(v.cipher_suite as CiphersuiteId),
      groupId: hex(v.group_id),
      epoch: BigInt(i),
      treeHash: hex(epoch.tree_hash),
      confirmedTranscriptHash: hex(epoch.confirmed_transcript_hash),
      extensions: [],
    };
    r.eq("group_context", bytesToHex(encodeGroupContext(gc)), epoch.group_context, at);

    const s = await initializeEpoch(initSecret, hex(epoch.commit_secret), gc, hex(epoch.psk_secret), cs.kdf);
    const ks = s.keySchedule;
    const pairs: Array<[string, Uint8Array, string]> = [
      ["joiner_secret", s.joinerSecret, epoch.joiner_secret],
      ["welcome_secret", s.welcomeSecret, epoch.welcome_secret],
      ["encryption_secret", s.encryptionSecret, epoch.encryption_secret],
      ["init_secret", ks.initSecret, epoch.init_secret],
      ["sender_data_secret", ks.senderDataSecret, epoch.sender_data_secret],
      ["exporter_secret", ks.exporterSecret, epoch.exporter_secret],
      ["external_secret", ks.externalSecret, epoch.external_secret],
      ["confirmation_key", ks.confirmationKey, epoch.confirmation_key],
      ["membership_key", ks.membershipKey, epoch.membership_key],
      ["resumption_psk", ks.resumptionPsk, epoch.resumption_psk],
      ["epoch_authenticator", ks.epochAuthenticator, epoch.epoch_authenticator],
    ];
    for (const [field, got, want] of pairs) r.eq("epoch_secrets", bytesToHex(got), want, `${at}${field}: `);

    // external_pub == SerializePublicKey(DeriveKeyPair(external_secret).pk)
    const kp = await cs.hpke.deriveKeyPair(hex(epoch.external_secret));
    r.eq("external_pub", bytesToHex(await cs.hpke.exportPublicKey(kp.publicKey)), epoch.external_pub, at);

    const ex = epoch.exporter;
    r.eq(
      "exporter",
      bytesToHex(await mlsExporter(ks.exporterSecret, ex.label, hex(ex.context), ex.length, cs)),
      ex.secret,
      at,
    );
    initSecret = ks.initSecret;
  }
}

// ----------------------------------------------------------------- secret-tree

export interface Generation {
  generation: number;
  handshake_key: string;
  handshake_nonce: string;
  application_key: string;
  application_nonce: string;
}
export interface SecretTreeVector {
  cipher_suite: number;
  encryption_secret: string;
  sender_data: { sender_data_secret: string; ciphertext: string; key: string; nonce: string };
  leaves: Generation[][];
}

async function secretTree(v: SecretTreeVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  const sd = v.sender_data;
  r.eq(
    "sender_data",
    bytesToHex(await expandSenderDataKey(cs, hex(sd.sender_data_secret), hex(sd.ciphertext))),
    sd.key,
    "key: ",
  );
  r.eq(
    "sender_data",
    bytesToHex(await expandSenderDataNonce(cs, hex(sd.sender_data_secret), hex(sd.ciphertext))),
    sd.nonce,
    "nonce: ",
  );

  const tree = await createSecretTree(v.leaves.length, hex(v.encryption_secret), cs.kdf);
  for (const kind of ["handshake", "application"] as const) {
    const name = `${kind}_ratchet`;
    r.true(name, v.leaves.length > 0, "no leaves: ");
    for (const [i, gens] of v.leaves.entries()) {
      const node = tree[leafToNodeIndex(toLeafIndex(i))];
      if (node === undefined) throw new Error(`no secret tree node for leaf ${i}`);
      r.true(name, gens.length > 0, `leaf ${i} has no generations: `);
      for (const g of gens) {
        const at = `leaf ${i} generation ${g.generation}: `;
        const [ratchet] = await ratchetUntil(node[kind], g.generation, defaultKeyRetentionConfig, cs.kdf);
        r.eq(name, ratchet.generation, g.generation, `${at}generation: `);
        r.eq(name, bytesToHex(await deriveKey(ratchet.secret, ratchet.generation, cs)), g[`${kind}_key`], at);
        r.eq(
          name,
          bytesToHex(await deriveNonce(ratchet.secret, ratchet.generation, cs)),
          g[`${kind}_nonce`],
          at,
        );
      }
    }
  }
}

// --------------------------------------------------------------------- welcome

export interface WelcomeVector {
  cipher_suite: number;
  init_priv: string;
  key_package: string;
  signer_pub: string;
  welcome: string;
}

async function welcome(v: WelcomeVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  const w = decodeMlsMessage(hex(v.welcome), 0)?.[0];
  if (w === undefined || w.wireformat !== "mls_welcome") throw new Error("not a Welcome");
  const kp = decodeMlsMessage(hex(v.key_package), 0)?.[0];
  if (kp === undefined || kp.wireformat !== "mls_key_package") throw new Error("not a KeyPackage");
  r.eq("reencode", bytesToHex(encodeMlsMessage(w)), v.welcome, "welcome: ");
  r.eq("reencode", bytesToHex(encodeMlsMessage(kp)), v.key_package, "key_package: ");
  r.true("verify_key_package", await verifyKeyPackage(kp.keyPackage, cs.signature));

  const ref = await makeKeyPackageRef(kp.keyPackage, cs.hash);
  r.true(
    "key_package_ref",
    w.welcome.secrets.some((s) => constantTimeEqual(s.newMember, ref)),
  );

  const initKey = await cs.hpke.importPrivateKey(hex(v.init_priv));
  const secrets = await decryptGroupSecrets(initKey, ref, w.welcome, cs.hpke);
  if (secrets === undefined) throw new Error("GroupSecrets did not decrypt");
  r.touch("decrypt_group_secrets");
  const pskSecret = new Uint8Array(cs.kdf.size);
  const gi = await decryptGroupInfo(w.welcome, secrets.joinerSecret, pskSecret, cs);
  if (gi === undefined) throw new Error("GroupInfo did not decrypt");
  r.touch("decrypt_group_info");
  r.true("confirmation_tag", await verifyGroupInfoConfirmationTag(gi, secrets.joinerSecret, pskSecret, cs));
  r.true("group_info_signature", await verifyGroupInfoSignature(gi, hex(v.signer_pub), cs.signature));
}

// ------------------------------------------------------ passive-client-welcome

export interface PassiveClientVector {
  cipher_suite: number;
  external_psks: { psk_id: string; psk: string }[];
  key_package: string;
  signature_priv: string;
  encryption_priv: string;
  init_priv: string;
  welcome: string;
  ratchet_tree: string | null;
  initial_epoch_authenticator: string;
  epochs: { proposals: string[]; commit: string; epoch_authenticator: string }[];
}

/** Checks that a private key matches a public key by an HPKE round trip. */
export async function hpkePairMatches(
  cs: CiphersuiteImpl,
  pub: Uint8Array,
  priv: Uint8Array,
): Promise<boolean> {
  const info = new TextEncoder().encode("passive client key check");
  const pt = new TextEncoder().encode("ping");
  const { ct, enc } = await cs.hpke.seal(await cs.hpke.importPublicKey(pub), pt, info);
  const out = await cs.hpke.open(await cs.hpke.importPrivateKey(priv), enc, ct, info);
  return bytesToHex(out) === bytesToHex(pt);
}

export async function processMessage(
  state: ClientState,
  bytes: string,
  psks: Record<string, Uint8Array>,
  cs: CiphersuiteImpl,
): Promise<ClientState> {
  const m = decodeMlsMessage(hex(bytes), 0)?.[0];
  if (m === undefined) throw new Error("cannot decode MLSMessage");
  if (m.wireformat === "mls_private_message") {
    return (await processPrivateMessage(state, m.privateMessage, makePskIndex(state, psks), cs)).newState;
  }
  if (m.wireformat === "mls_public_message") {
    return (await processPublicMessage(state, m.publicMessage, makePskIndex(state, psks), cs)).newState;
  }
  throw new Error(`unexpected wireformat ${m.wireformat}`);
}

async function passiveClient(v: PassiveClientVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  const kpMsg = decodeMlsMessage(hex(v.key_package), 0)?.[0];
  if (kpMsg === undefined || kpMsg.wireformat !== "mls_key_package") throw new Error("not a KeyPackage");
  const kp: KeyPackage = kpMsg.keyPackage;
  const w = decodeMlsMessage(hex(v.welcome), 0)?.[0];
  if (w === undefined || w.wireformat !== "mls_welcome") throw new Error("not a Welcome");

  // The private keys given by the vector belong to the KeyPackage.
  r.true("init_priv", await hpkePairMatches(cs, kp.initKey, hex(v.init_priv)));
  r.true("encryption_priv", await hpkePairMatches(cs, kp.leafNode.hpkePublicKey, hex(v.encryption_priv)));
  const probe = new TextEncoder().encode("signature key check");
  const sig = await cs.signature.sign(hex(v.signature_priv), probe);
  r.true("signature_priv", await cs.signature.verify(kp.leafNode.signaturePublicKey, probe, sig));

  const keys: PrivateKeyPackage = {
    initPrivateKey: hex(v.init_priv),
    hpkePrivateKey: hex(v.encryption_priv),
    signaturePrivateKey: hex(v.signature_priv),
  };
  const tree = v.ratchet_tree === null ? undefined : decodeRatchetTree(hex(v.ratchet_tree), 0)?.[0];
  const psks: Record<string, Uint8Array> = {};
  for (const p of v.external_psks) psks[bytesToBase64(hex(p.psk_id))] = hex(p.psk);

  let state = await joinGroup(w.welcome, kp, keys, makePskIndex(undefined, psks), cs, tree);
  r.eq(
    "initial_epoch_authenticator",
    bytesToHex(state.keySchedule.epochAuthenticator),
    v.initial_epoch_authenticator,
  );

  // passive-client-welcome.json has no epochs after the join; kept for the general scenario shape.
  r.touch("epoch_authenticators");
  for (const [i, epoch] of v.epochs.entries()) {
    for (const p of epoch.proposals) state = await processMessage(state, p, psks, cs);
    state = await processMessage(state, epoch.commit, psks, cs);
    r.eq(
      "epoch_authenticators",
      bytesToHex(state.keySchedule.epochAuthenticator),
      epoch.epoch_authenticator,
      `epoch ${i + 1}: `,
    );
  }
}

// ---------------------------------------------------------------------- driver

const RUNNERS: Record<VectorFile, (v: never, cs: CiphersuiteImpl, r: CaseRecorder) => Promise<void>> = {
  "key-schedule.json": keySchedule,
  "secret-tree.json": secretTree,
  "welcome.json": welcome,
  "passive-client-welcome.json": passiveClient,
};

/** Runs every case of `file` (already parsed) with `provider`; CHECKS_PER_CASE[file].length checks per case. */
export async function runVectorFile(
  file: VectorFile,
  vectors: ReadonlyArray<{ cipher_suite: number }>,
  provider: CryptoProvider,
): Promise<Check[]> {
  const run = RUNNERS[file] as (v: unknown, cs: CiphersuiteImpl, r: CaseRecorder) => Promise<void>;
  const out: Check[] = [];
  for (const [i, v] of vectors.entries()) {
    await runCase(out, file, i, v.cipher_suite, async (r) => run(v, await impl(provider, v.cipher_suite), r));
  }
  return out;
}
