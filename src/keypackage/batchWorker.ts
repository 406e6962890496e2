/** Worker entry for batch key package generation (see batchPool.ts). */
import { parentPort } from "node:worker_threads";
import { buildKeypackagesHere } from "./batch.js";
import type { WorkerReply, WorkerRequest } from "./batchPool.js";

const port = parentPort;
if (port === null) throw new Error("batchWorker must run in a worker thread");

port.on("message", async (req: WorkerRequest) => {
  const signaturePrivateKey = new Uint8Array(req.signaturePrivateKey);
  try {
    const built = await buildKeypackagesHere({ ...req.input, signaturePrivateKey, count: req.count });
    let total = 0;
    for (const b of built) total += b.initPrivateKey.length + b.encryptionPrivateKey.length;
    const secrets = new ArrayBuffer(total);
    const view = new Uint8Array(secrets);
    let o = 0;
    const packages: WorkerReply["packages"] = built.map((b) => {
      view.set(b.initPrivateKey, o);
      view.set(b.encryptionPrivateKey, o + b.initPrivateKey.length);
      o += b.initPrivateKey.length + b.encryptionPrivateKey.length;
      b.initPrivateKey.fill(0);
      b.encryptionPrivateKey.fill(0);
      return {
        bytes: b.bytes,
        ref: b.ref,
        initPublicKey: b.initPublicKey,
        encryptionPublicKey: b.encryptionPublicKey,
        initLen: b.initPrivateKey.length,
        encLen: b.encryptionPrivateKey.length,
      };
    });
    const reply: WorkerReply = { id: req.id, packages, secrets };
    port.postMessage(reply, [secrets]);
  } catch (err) {
    const reply: WorkerReply = {
      id: req.id,
      error: err instanceof Error ? err.message : String(err),
      packages: [],
      secrets: new ArrayBuffer(0),
    };
    port.postMessage(reply);
  } finally {
    signaturePrivateKey.fill(0);
  }
});
