import { fillers, oursBench, OPS } from "./conversationOurs.js";
import { coreCryptoClient, loadCoreCrypto } from "../test/interop/corecrypto.js";
const fill = await fillers();
const ours = await oursBench(fill);
let ccRound: (() => Promise<void>) | undefined;
if (process.env.LOADCC) {
  const cc = await loadCoreCrypto();
  const a = await coreCryptoClient("aaaaaaaa-bbbb-4ccc-8ddd-00000000c001:c1@bench.example", 1);
  const j = await coreCryptoClient("aaaaaaaa-bbbb-4ccc-8ddd-00000000c002:c2@bench.example", 1);
  const jKp = await j.core.transaction((ctx) => ctx.generateKeyPackage(j.credentialRef));
  let n = 0;
  ccRound = async () => {
    for (let i = 0; i < OPS; i++) {
      const id = new cc.ConversationId(new TextEncoder().encode(`cc${n++}`));
      await a.core.transaction(async (ctx) => { await ctx.createConversation(id, a.credentialRef); await ctx.addClientsToConversation(id, [jKp]); });
    }
  };
}
for (const k of ["createAdd2", "welcome2"] as const) {
  const c = ours[k];
  let best = 1e9;
  for (let r = 0; r < 45; r++) {
    const input = await c.prepare();
    const t0 = performance.now();
    await c.run(input);
    const t = (performance.now() - t0) / OPS;
    if (r >= 15) best = Math.min(best, t);
    if (process.env.LOADCC === "2") await ccRound?.();
  }
  console.log(k, process.env.LOADCC ?? "0", (best * 1000).toFixed(1), "us");
}
