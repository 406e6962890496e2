/**
 * Browser-safe (no vitest, no node: builtins) versions of the Node-side vector checks, run
 * through OUR engine (src/mls) with whatever provider the caller gives (in Chromium: WebCrypto,
 * native and with the @noble fallbacks):
 * - key-schedule.json as test/vectors/key-schedule.test.ts (src/mls/keyschedule);
 * - secret-tree.json as test/vectors/secret-tree.test.ts (src/mls/framing sender data,
 *   src/mls/keyschedule/secretTree.ts);
 * - welcome.json as test/mls/group/welcome-vectors.test.ts (src/mls/group/welcome.ts);
 * - passive-client-welcome.json as test/vectors/passive-client.ts (verifyWelcome, joinGroup,
 *   receiveMessage).
 * Each vector case yields a fixed list of named checks (see CHECKS_PER_CASE), so a caller can
 * assert the exact count.
 */
import { decodeExact, encode } from "../../src/mls/codec/index.js";
import { defaultAuthenticationService } from "../../src/mls/credential/authentication.js";
import { bytesEqual, bytesToHex, hexToBytes } from "../../src/mls/crypto/bytes.js";
import { makeKeyPackageRef, verifyWithLabel } from "../../src/mls/crypto/labels.js";
import { ciphersuiteImpl } from "../../src/mls/crypto/select.js";
import type { CiphersuiteImpl, CryptoProvider } from "../../src/mls/crypto/types.js";
import { senderDataKeyNonce } from "../../src/mls/framing/private.js";
import { ContentTypes, WireFormats } from "../../src/mls/framing/types.js";
import { readMlsMessage, writeMlsMessage } from "../../src/mls/group/codec.js";
import { groupInfoTbs } from "../../src/mls/group/groupInfo.js";
import { receiveMessage } from "../../src/mls/group/message.js";
import {
  joinGroup,
  openGroupInfo,
  openGroupSecrets,
  parseWelcome,
  verifyWelcome,
} from "../../src/mls/group/welcome.js";
import type { KeyPackage } from "../../src/mls/keypackage/types.js";
import { keyPackageSignContents } from "../../src/mls/keypackage/validate.js";
import { writeGroupContext } from "../../src/mls/keyschedule/codec.js";
import {
  epochSecretsFromJoiner,
  externalKeyPair,
  mlsExporter,
  nextEpochSecrets,
  welcomeSecret,
  zeroSecret,
} from "../../src/mls/keyschedule/schedule.js";
import { SecretTree } from "../../src/mls/keyschedule/secretTree.js";
import { verifyConfirmationTag } from "../../src/mls/keyschedule/transcript.js";
import type { GroupContext, PreSharedKeyId } from "../../src/mls/keyschedule/types.js";
import { readRatchetTree } from "../../src/mls/tree/codec.js";

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
 * emitted exactly once: failed if any comparison on it failed, if it was never
 * reached, or, when the case threw after all were reached, if it was the check
 * in progress (the last one: a loop such as "epoch_authenticators" is reached
 * before its body runs).
 */
class CaseRecorder {
  private readonly failures = new Map<string, string[]>();
  private readonly reached = new Set<string>();
  private last: string | undefined;

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
    this.last = name;
  }

  private fail(name: string, detail: string): void {
    const list = this.failures.get(name) ?? [];
    list.push(detail);
    this.failures.set(name, list);
  }

  emit(out: Check[], suite: number, label: string, error?: unknown): void {
    const err = error === undefined ? undefined : String((error as Error)?.stack ?? error);
    // A throw after every check was reached: the check in progress failed.
    if (err !== undefined && this.last !== undefined && this.names.every((n) => this.reached.has(n)))
      this.fail(this.last, `threw: ${err}`);
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
  return ciphersuiteImpl(suite, provider);
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

/** RFC 9420 §8: GroupContext encoding, epoch secrets, external key pair, exporter. */
async function keySchedule(v: KeyScheduleVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  let initSecret = hex(v.initial_init_secret);
  for (const [i, epoch] of v.epochs.entries()) {
    const at = `epoch ${i}: `;
    const groupContext: GroupContext = {
      version: 1,
      ciphersuite: v.cipher_suite,
      groupId: hex(v.group_id),
      epoch: BigInt(i),
      treeHash: hex(epoch.tree_hash),
      confirmedTranscriptHash: hex(epoch.confirmed_transcript_hash),
      extensions: [],
    };
    r.eq("group_context", bytesToHex(encode(groupContext, writeGroupContext)), epoch.group_context, at);

    const pskSecret = hex(epoch.psk_secret);
    const { joinerSecret, secrets: s } = await nextEpochSecrets(cs, {
      initSecret,
      commitSecret: hex(epoch.commit_secret),
      pskSecret,
      groupContext,
    });
    const pairs: Array<[string, Uint8Array, string]> = [
      ["joiner_secret", joinerSecret, epoch.joiner_secret],
      ["welcome_secret", await welcomeSecret(cs, joinerSecret, pskSecret), epoch.welcome_secret],
      ["encryption_secret", s.encryptionSecret, epoch.encryption_secret],
      ["init_secret", s.initSecret, epoch.init_secret],
      ["sender_data_secret", s.senderDataSecret, epoch.sender_data_secret],
      ["exporter_secret", s.exporterSecret, epoch.exporter_secret],
      ["external_secret", s.externalSecret, epoch.external_secret],
      ["confirmation_key", s.confirmationKey, epoch.confirmation_key],
      ["membership_key", s.membershipKey, epoch.membership_key],
      ["resumption_psk", s.resumptionPsk, epoch.resumption_psk],
      ["epoch_authenticator", s.epochAuthenticator, epoch.epoch_authenticator],
    ];
    for (const [field, got, want] of pairs) r.eq("epoch_secrets", bytesToHex(got), want, `${at}${field}: `);

    // external_pub == SerializePublicKey(DeriveKeyPair(external_secret).pk)
    const external = await externalKeyPair(cs, s.externalSecret);
    r.eq("external_pub", bytesToHex(external.publicKey), epoch.external_pub, at);

    const ex = epoch.exporter;
    r.eq(
      "exporter",
      bytesToHex(await mlsExporter(cs, s.exporterSecret, ex.label, hex(ex.context), ex.length)),
      ex.secret,
      at,
    );
    initSecret = s.initSecret;
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

/** RFC 9420 §6.3.2 sender data key and nonce, §9 the per-leaf ratchets of our secret tree. */
async function secretTree(v: SecretTreeVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  const sd = v.sender_data;
  const { key, nonce } = await senderDataKeyNonce(cs, hex(sd.sender_data_secret), hex(sd.ciphertext));
  r.eq("sender_data", bytesToHex(key), sd.key, "key: ");
  r.eq("sender_data", bytesToHex(nonce), sd.nonce, "nonce: ");

  let tree = SecretTree.create(cs, v.leaves.length, hex(v.encryption_secret));
  for (const [kind, contentType] of [
    ["handshake", ContentTypes.commit],
    ["application", ContentTypes.application],
  ] as const) {
    const name = `${kind}_ratchet`;
    r.true(name, v.leaves.length > 0, "no leaves: ");
    for (const [leaf, gens] of v.leaves.entries()) {
      r.true(name, gens.length > 0, `leaf ${leaf} has no generations: `);
      for (const g of gens) {
        const at = `leaf ${leaf} generation ${g.generation}: `;
        const staged = await tree.keyAndNonce(leaf, contentType, g.generation);
        r.eq(name, staged.generation, g.generation, `${at}generation: `);
        r.eq(name, bytesToHex(staged.key), g[`${kind}_key`], `${at}key: `);
        r.eq(name, bytesToHex(staged.nonce), g[`${kind}_nonce`], `${at}nonce: `);
        tree = tree.merge(staged);
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

/** The MLSMessage(KeyPackage) of a vector and its KeyPackage encoding (what the ref hashes). */
function keyPackageOf(hexMessage: string): {
  keyPackage: KeyPackage;
  bytes: Uint8Array;
  message: Uint8Array;
} {
  const message = hex(hexMessage);
  const m = decodeExact(message, readMlsMessage);
  if (m.wireFormat !== WireFormats.mls_key_package) throw new Error("not a KeyPackage");
  return { keyPackage: m.keyPackage, bytes: message.subarray(4), message };
}

/**
 * RFC 9420 §12.4.3.1 through src/mls/group/welcome.ts: KeyPackageRef, GroupSecrets decrypted
 * with init_priv, GroupInfo decrypted and decoded, confirmation tag, GroupInfo signature.
 */
async function welcome(v: WelcomeVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  const kp = keyPackageOf(v.key_package);
  const welcomeMessage = decodeExact(hex(v.welcome), readMlsMessage);
  r.eq("reencode", bytesToHex(encode(welcomeMessage, writeMlsMessage)), v.welcome, "welcome: ");
  r.eq(
    "reencode",
    bytesToHex(encode(decodeExact(kp.message, readMlsMessage), writeMlsMessage)),
    v.key_package,
    "key_package: ",
  );
  // §10.1 the package's two signatures (not the whole §10.1 check: case #6's package does not
  // list its own suite in its capabilities; see test/mls/group/welcome-vectors.test.ts).
  const signed = keyPackageSignContents(kp.keyPackage);
  const leaf = kp.keyPackage.leafNode;
  r.true(
    "verify_key_package",
    await cs.signature.verify(leaf.signatureKey, signed.leaf, leaf.signature),
    "leaf: ",
  );
  r.true(
    "verify_key_package",
    await cs.signature.verify(leaf.signatureKey, signed.keyPackage, kp.keyPackage.signature),
    "key package: ",
  );

  const w = parseWelcome(hex(v.welcome));
  const ref = await makeKeyPackageRef(kp.bytes, cs.hash);
  r.true(
    "key_package_ref",
    w.newMembers.some((m) => bytesEqual(m, ref)),
  );
  const secrets = await openGroupSecrets(cs, w.welcome, ref, hex(v.init_priv));
  r.touch("decrypt_group_secrets");
  const gi = await openGroupInfo(cs, w.welcome, secrets.joinerSecret, zeroSecret(cs));
  r.touch("decrypt_group_info");
  const epoch = await epochSecretsFromJoiner(cs, secrets.joinerSecret, zeroSecret(cs), gi.groupContext);
  // verifyConfirmationTag throws on a mismatch (the case then fails "confirmation_tag")
  await verifyConfirmationTag(
    cs,
    epoch.confirmationKey,
    gi.groupContext.confirmedTranscriptHash,
    gi.confirmationTag,
  );
  r.touch("confirmation_tag");
  r.true(
    "group_info_signature",
    await verifyWithLabel(hex(v.signer_pub), "GroupInfoTBS", groupInfoTbs(gi), gi.signature, cs.signature),
  );
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
  return bytesEqual(out, pt);
}

/** The vectors' generation date for key packages with lifetime 0..2^64-1 (as test/vectors/passive-client.ts). */
const GENERATED_2024 = 1710422003n + 3600n;

/** The session time of a vector: shortly after its key package's not_before, or its generation date. */
function vectorNow(kp: KeyPackage): bigint {
  const nb = kp.leafNode.lifetime?.notBefore ?? 0n;
  return nb === 0n ? GENERATED_2024 : nb + 60n;
}

/**
 * test-vectors.md "Passive Client Scenarios" through our engine: the vector's private keys
 * belong to its KeyPackage; join from the Welcome (verifyWelcome, joinGroup) with its external
 * PSKs and ratchet tree; then every proposal and commit through receiveMessage.
 */
async function passiveClient(v: PassiveClientVector, cs: CiphersuiteImpl, r: CaseRecorder): Promise<void> {
  const { keyPackage, bytes } = keyPackageOf(v.key_package);
  const leaf = keyPackage.leafNode;
  r.true("init_priv", await hpkePairMatches(cs, keyPackage.initKey, hex(v.init_priv)));
  r.true("encryption_priv", await hpkePairMatches(cs, leaf.encryptionKey, hex(v.encryption_priv)));
  const probe = new TextEncoder().encode("signature key check");
  const sig = await cs.signature.sign(hex(v.signature_priv), probe);
  r.true("signature_priv", await cs.signature.verify(leaf.signatureKey, probe, sig));

  const psks = v.external_psks.map((p) => ({ id: hex(p.psk_id), psk: hex(p.psk) }));
  const psk = (id: PreSharedKeyId): Uint8Array | undefined =>
    id.pskType === 1 ? psks.find((p) => bytesEqual(p.id, id.pskId))?.psk : undefined;
  const options = { now: vectorNow(keyPackage), authenticationService: defaultAuthenticationService, psk };
  const joinable = await verifyWelcome(
    cs,
    parseWelcome(hex(v.welcome)),
    {
      keyPackage,
      keyPackageBytes: bytes,
      initPrivateKey: hex(v.init_priv),
      encryptionPrivateKey: hex(v.encryption_priv),
      signaturePrivateKey: hex(v.signature_priv),
    },
    {
      ...options,
      ...(v.ratchet_tree === null ? {} : { ratchetTree: decodeExact(hex(v.ratchet_tree), readRatchetTree) }),
    },
  );
  let state = await joinGroup(joinable);
  r.eq(
    "initial_epoch_authenticator",
    bytesToHex(state.keys.epochAuthenticator),
    v.initial_epoch_authenticator,
  );

  // passive-client-welcome.json has no epochs after the join; kept for the general scenario shape.
  r.touch("epoch_authenticators");
  for (const [i, epoch] of v.epochs.entries()) {
    const at = `epoch ${i + 1}: `;
    for (const p of epoch.proposals) {
      const received = await receiveMessage(state, hex(p), options);
      r.eq("epoch_authenticators", received.kind, "proposal", at);
      state = received.state;
    }
    const received = await receiveMessage(state, hex(epoch.commit), options);
    r.eq("epoch_authenticators", received.kind, "commit", at);
    state = received.state;
    r.eq("epoch_authenticators", bytesToHex(state.keys.epochAuthenticator), epoch.epoch_authenticator, at);
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
