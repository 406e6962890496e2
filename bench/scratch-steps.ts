import { Ciphersuite, ClientId, CoreCrypto, Credential, Database } from "../src/index.js";
import { MlsGroup } from "../src/mls/group.js";
import { encodeConversationState } from "../src/conversation/stateFormat.js";
import { defaultAuthenticationService } from "../src/mls/credential/authentication.js";

const S = 1 as Ciphersuite;
const cred = Credential.basic(S, ClientId.parse("aaaaaaaa-bbbb-4ccc-8ddd-000000000001:1@b.example"));
const cc = await CoreCrypto.open(await Database.inMemory());
const jref = await cc.transaction((tx) => tx.addCredential(Credential.basic(S, ClientId.parse("aaaaaaaa-bbbb-4ccc-8ddd-000000000002:2@b.example"))));
const kp = await cc.transaction((tx) => tx.generateKeypackage(jref));
const a = await CoreCrypto.open(await Database.inMemory());
a.provideTransport({ async sendCommitBundle() { return "success" as const; } } as never);
const aref = await a.transaction((tx) => tx.addCredential(cred));
const fixed = new TextEncoder().encode("fixed");
await a.transaction((tx) => tx.createConversation(fixed, aref));
const policy = { now: new Date(), authenticationService: defaultAuthenticationService };
const enc = new TextEncoder();
let n = 0;
const create = () => MlsGroup.create({ ciphersuite: S, groupId: enc.encode(`g${n++}`), credential: cred.encoded, signaturePublicKey: cred.publicKey, signaturePrivateKey: cred.signaturePrivateKey(), notBefore: 0, notAfter: 2 ** 32 });
const g0 = await create();
const steps: [string, () => Promise<unknown>][] = [
  ["MlsGroup.create", create],
  ["encodeConversationState(g0)", async () => encodeConversationState(g0)],
  ["kp.verify", () => kp.verify({ now: policy.now })],
  ["g0.commit(add, verified)", () => g0.commit({ adds: [{ keyPackage: kp.parsed, bytes: kp.serialize() }], addsVerified: true, policy })],
  ["g0.members()", async () => g0.members()],
  ["create+add via API", async () => { const id = enc.encode(`x${n++}`); await a.transaction(async (tx) => { await tx.createConversation(id, aref); await tx.addClientsToConversation(id, [kp]); }); }],
  ["createConversation via API", async () => { const id = enc.encode(`y${n++}`); await a.transaction(async (tx) => { await tx.createConversation(id, aref); }); }],
  ["empty transaction", async () => { await a.transaction(async () => {}); }],
  ["add via API, aborted", async () => { const tx = await a.newTransaction(); await tx.addClientsToConversation(fixed, [kp]); await tx.abort(); }],
  ["g0.commit + encodeState", async () => { const o = await g0.commit({ adds: [{ keyPackage: kp.parsed, bytes: kp.serialize() }], addsVerified: true, policy }); encodeConversationState(o.group); }],
];
const N = Number(process.env.N ?? 10);
for (const [name, f] of steps) {
  for (let i = 0; i < N; i++) await f();
  let best = 1e9;
  for (let r = 0; r < 80; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await f();
    best = Math.min(best, (performance.now() - t0) / N);
  }
  console.log(name.padEnd(34), (best * 1000).toFixed(1), "us");
}
