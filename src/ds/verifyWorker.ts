/** Worker entry of the signature verification pool (verifyPool.ts). */
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import type { X509ValidationResult } from "../pki/validate.js";
import { validateChain, verifyPackage, type VerifyResult } from "./verifyOne.js";
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
  if (req.chains !== undefined) {
    // X.509 chains (src/ds/x509.ts); the PKI code loads on the first chain only.
    const chains: X509ValidationResult[] = [];
    for (const c of req.chains.list) chains.push(await validateChain(c, req.chains.trust, req.nowMs));
    port.postMessage({ id: req.id, results: chains } satisfies VerifyReply);
    return;
  }
  const results: VerifyResult[] = [];
  for (const p of req.packages) results.push(await verifyPackage(p, req.nowMs));
  const reply: VerifyReply = { id: req.id, results };
  port.postMessage(reply);
});
