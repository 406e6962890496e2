import { fillers, oursBench, OPS } from "./conversationOurs.js";
const fill = process.env.NOFILL ? [] : await fillers();
const ours = await oursBench(fill);
const c = ours.createAdd2;
let best = 1e9;
for (let r = 0; r < 95; r++) {
  const input = await c.prepare();
  const t0 = performance.now();
  await c.run(input);
  const t = (performance.now() - t0) / OPS;
  if (r >= 15) best = Math.min(best, t);
}
console.log("createAdd2 (oursBench)", process.env.NOFILL ?? "", process.env.BENCH_BIG, (best * 1000).toFixed(1), "us");
