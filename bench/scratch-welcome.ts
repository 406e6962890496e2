import { Ciphersuite, ClientId, CoreCrypto, Credential, Database, type CommitBundle } from "../src/index.js";
const S = 1 as Ciphersuite;
const mk = async (d: number) => {
  const cc = await CoreCrypto.open(await Database.inMemory());
  const ref = await cc.transaction((tx) => tx.addCredential(Credential.basic(S, ClientId.parse(`aaaaaaaa-bbbb-4ccc-8ddd-00000000000${d}:${d}@b.example`))));
  let last: CommitBundle | undefined;
  cc.provideTransport({ async sendCommitBundle(b: CommitBundle) { last = b; return "success" as const; } } as never);
  return { cc, ref, last: () => last as CommitBundle };
};
const a = await mk(1), j = await mk(2);
const kp = await j.cc.transaction((tx) => tx.generateKeypackage(j.ref));
const id = new TextEncoder().encode("g");
await a.cc.transaction(async (tx) => { await tx.createConversation(id, a.ref); await tx.addClientsToConversation(id, [kp]); });
const welcome = a.last().welcome as Uint8Array;
const t: Record<string, number> = {};
let prev = 0;
(globalThis as any).__lap = (k: string) => { const now = performance.now(); if (k !== "start") t[k] = (t[k] ?? 0) + now - prev; prev = now; };
const N = 10;
const best: Record<string, number> = {};
for (let r = 0; r < 80; r++) {
  for (const k of Object.keys(t)) t[k] = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) { const tx = await j.cc.newTransaction(); await tx.processWelcomeMessage(welcome); await tx.abort(); }
  t["TOTAL processWelcome"] = performance.now() - t0;
  if (r >= 20) for (const k of Object.keys(t)) best[k] = Math.min(best[k] ?? 1e9, t[k]! / N);
}
let sum = 0;
for (const [k, v] of Object.entries(best)) { if (!k.startsWith("TOTAL")) sum += v; console.log(k.padEnd(24), (v * 1000).toFixed(1), "us"); }
console.log("sum verifyWelcome parts".padEnd(24), (sum * 1000).toFixed(1), "us");
import { MlsGroup } from "../src/mls/group.js";
import { encodeConversationState } from "../src/conversation/stateFormat.js";
import { parseKeyPackage } from "../src/mls/keypackage/parse.js";
import { defaultAuthenticationService } from "../src/mls/credential/authentication.js";
{
  // the join at the MlsGroup level: keys from j's keystore rows
  const db = (j.cc as any);
  const tx = await j.cc.newTransaction();
  const scope = (tx as any);
  console.log(Object.keys(scope), Object.getOwnPropertyNames(Object.getPrototypeOf(scope)).slice(0, 5));
  await tx.abort();
}
