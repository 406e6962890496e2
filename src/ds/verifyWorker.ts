/** Worker entry of the signature verification pool (verifyPool.ts). */
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import { verifyPackage } from "./verifyOne.js";
import type { VerifyReply, VerifyRequest } from "./verifyPool.js";

const port = parentPort;
if (port === null) throw new Error("verifyWorker must run in a worker thread");

// On Linux a priority set with pid 0 applies to the calling thread only: verification then
// yields the CPU to the server's event loop (health checks, claims) under load.
if (process.platform === "linux") {
  try {
    setPriority(0, 10);
  } catch {
    // not permitted: run at normal priority
  }
}

port.on("message", async (req: VerifyRequest) => {
  const results: VerifyReply["results"] = [];
  for (const p of req.packages) results.push(await verifyPackage(p, req.nowMs));
  const reply: VerifyReply = { id: req.id, results };
  port.postMessage(reply);
});
