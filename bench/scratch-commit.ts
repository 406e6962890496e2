import { Ciphersuite, ClientId, CoreCrypto, Credential, Database } from "../src/index.js";
import { createGroup } from "../src/mls/group/create.js";
import { suiteImpl } from "../src/mls/suite.js";
import { decodeExact } from "../src/mls/codec/index.js";
import { readCredential } from "../src/mls/credential/codec.js";
import { leafCapabilities } from "../src/mls/keypackage/build.js";
import { REQUIRED_CAPABILITIES_CORECRYPTO } from "../src/mls/group/defaults.js";
import { applyProposals } from "../src/mls/group/applyProposals.js";
import { treeHash } from "../src/mls/tree/hash.js";
import { signFramedContent } from "../src/mls/framing/sign.js";
import { pskSecret } from "../src/mls/keyschedule/psk.js";
import { zeroSecret } from "../src/mls/keyschedule/schedule.js";
import { nextEpoch, enterEpoch, privateKeysOf } from "../src/mls/group/epoch.js";
import { confirmationTag } from "../src/mls/keyschedule/transcript.js";
import { toPublicMessage } from "../src/mls/framing/public.js";
import { bundleGroupInfo } from "../src/mls/group/groupInfo.js";
import { createWelcome } from "../src/mls/group/welcomeCreate.js";
import { encodeMlsMessage } from "../src/mls/group/mlsMessage.js";
import { keysStillInTree } from "../src/mls/group/state.js";
import { encodeGroupState } from "../src/mls/group/stateEncoding.js";
import { ContentTypes, ProposalOrRefTypes, ProposalTypes, SenderTypes, WireFormats } from "../src/mls/framing/types.js";
import { defaultAuthenticationService } from "../src/mls/credential/authentication.js";

const S = 1 as Ciphersuite;
const cs = await suiteImpl(S);
const cred = Credential.basic(S, ClientId.parse("aaaaaaaa-bbbb-4ccc-8ddd-000000000001:1@b.example"));
const cc = await CoreCrypto.open(await Database.inMemory());
const jref = await cc.transaction((tx) => tx.addCredential(Credential.basic(S, ClientId.parse("aaaaaaaa-bbbb-4ccc-8ddd-000000000002:2@b.example"))));
const kpo = await cc.transaction((tx) => tx.generateKeypackage(jref));
const kp = kpo.parsed;
const state = await createGroup({ cs, ciphersuite: S, groupId: new TextEncoder().encode("g"), credential: decodeExact(cred.encoded, readCredential), signaturePublicKey: cred.publicKey, signaturePrivateKey: cred.signaturePrivateKey(), capabilities: leafCapabilities(false), notBefore: 0n, notAfter: 2n ** 32n, extensions: [REQUIRED_CAPABILITIES_CORECRYPTO] });
const t: Record<string, number> = {};
const lap = (k: string, t0: number) => { t[k] = (t[k] ?? 0) + performance.now() - t0; return performance.now(); };
const me = { senderType: SenderTypes.member, leafIndex: 0 } as const;
const N = 20;
async function once() {
  let x = performance.now();
  const list = [{ proposal: { proposalType: ProposalTypes.add, keyPackage: kp }, sender: me, ref: undefined }] as const;
  const applied = await applyProposals(list as never, { cs, context: state.context, tree: state.tree, committer: me, authenticationService: defaultAuthenticationService, now: BigInt(Math.floor(Date.now()/1000)), code: 0 as never, psk: () => undefined, verifiedKeyPackages: new Set([kp]) });
  x = lap("applyProposals", x);
  const th = await treeHash(applied.tree, cs.hash);
  x = lap("treeHash", x);
  const content = { groupId: state.context.groupId, epoch: state.context.epoch, sender: me, authenticatedData: new Uint8Array(0), contentType: ContentTypes.commit, commit: { proposals: [{ type: ProposalOrRefTypes.proposal, proposal: list[0].proposal }], path: undefined } } as never;
  const signature = await signFramedContent(cs, state.signaturePrivateKey, WireFormats.mls_public_message, content, state.context);
  x = lap("signFramedContent", x);
  const psk = await pskSecret(cs, []);
  const next = await nextEpoch({ cs, current: state.context, interimTranscriptHash: state.interimTranscriptHash, wireFormat: WireFormats.mls_public_message, content, signature, extensions: applied.extensions, treeHash: th, initSecret: state.keys.initSecret, commitSecret: zeroSecret(cs), pskSecret: psk });
  x = lap("pskSecret+nextEpoch", x);
  const tag = await confirmationTag(cs, next.secrets.confirmationKey, next.context.confirmedTranscriptHash);
  const message = await toPublicMessage(cs, { wireFormat: WireFormats.mls_public_message, content, auth: { signature, confirmationTag: tag } }, state.context, state.keys.membershipKey);
  x = lap("tag+toPublicMessage", x);
  const groupInfo = await bundleGroupInfo(cs, { context: next.context, tree: applied.tree, confirmationTag: tag, externalSecret: next.secrets.externalSecret, signer: 0, signaturePrivateKey: state.signaturePrivateKey });
  x = lap("bundleGroupInfo", x);
  const w = await createWelcome(cs, { groupInfo, joinerSecret: next.joinerSecret, pskSecret: psk, pskIds: [], joiners: [{ keyPackage: kp, keyPackageBytes: kpo.serialize(), pathSecret: undefined }] });
  x = lap("createWelcome", x);
  encodeMlsMessage({ wireFormat: WireFormats.mls_welcome, welcome: w } as never);
  encodeMlsMessage({ wireFormat: WireFormats.mls_public_message, publicMessage: message } as never);
  x = lap("encode welcome+commit", x);
  const ns = await enterEpoch(state, { cs, context: next.context, tree: applied.tree, ownLeaf: 0, privateKeys: privateKeysOf(keysStillInTree(applied.tree, state.nodeKeys)), signaturePrivateKey: state.signaturePrivateKey, secrets: next.secrets, confirmationTag: tag });
  x = lap("enterEpoch", x);
  encodeGroupState(ns);
  x = lap("encodeGroupState", x);
}
for (let i = 0; i < N; i++) await once();
for (const k of Object.keys(t)) t[k] = 0;
let best: Record<string, number> = {};
for (let r = 0; r < 60; r++) {
  for (const k of Object.keys(t)) t[k] = 0;
  for (let i = 0; i < N; i++) await once();
  for (const k of Object.keys(t)) best[k] = Math.min(best[k] ?? 1e9, t[k]! / N);
}
let sum = 0;
for (const [k, v] of Object.entries(best)) { sum += v; console.log(k.padEnd(24), (v * 1000).toFixed(1), "us"); }
console.log("sum".padEnd(24), (sum * 1000).toFixed(1), "us");
import { createCommit } from "../src/mls/group/commit.js";
{
  const f = () => createCommit(state, { adds: [{ keyPackage: kp, bytes: kpo.serialize() }], now: BigInt(Math.floor(Date.now()/1000)), authenticationService: defaultAuthenticationService, verifiedKeyPackages: new Set([kp]) });
  for (let i = 0; i < N; i++) await f();
  let b = 1e9;
  for (let r = 0; r < 60; r++) { const t0 = performance.now(); for (let i = 0; i < N; i++) await f(); b = Math.min(b, (performance.now() - t0) / N); }
  console.log("createCommit".padEnd(24), (b * 1000).toFixed(1), "us");
}
import { MlsGroup } from "../src/mls/group.js";
{
  const g = await MlsGroup.create({ ciphersuite: S, groupId: new TextEncoder().encode("g"), credential: cred.encoded, signaturePublicKey: cred.publicKey, signaturePrivateKey: cred.signaturePrivateKey(), notBefore: 0, notAfter: 2 ** 32 });
  const policy = { now: new Date(), authenticationService: defaultAuthenticationService };
  const f = () => g.commit({ adds: [{ keyPackage: kp, bytes: kpo.serialize() }], addsVerified: true, policy });
  const st = (g as any);
  for (let i = 0; i < N; i++) await f();
  let b = 1e9;
  for (let r = 0; r < 60; r++) { const t0 = performance.now(); for (let i = 0; i < N; i++) await f(); b = Math.min(b, (performance.now() - t0) / N); }
  console.log("MlsGroup.commit".padEnd(24), (b * 1000).toFixed(1), "us", !!st);
}
