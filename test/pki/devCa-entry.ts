/**
 * Browser-side half of devCa.browser.test.ts: the development CA and chain validation on the
 * page's WebCrypto. Exposes `globalThis.devCaTest`.
 */
import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import { createDevCa, type DevKeyAlgorithm } from "../../src/pki/devCa.js";
import { validateCertificateChain } from "../../src/pki/validate.js";

const CLIENT = "0d8d0b6c-3a2b-4c1d-9e8f-7a6b5c4d3e2f:9ff0457928ebe5f4@wire.example";
const DAY = 86_400_000;

async function run(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const caAlg of ["P-256", "Ed25519"] as const) {
    const ca = await createDevCa({ algorithm: caAlg });
    const trust = { anchors: [ca.root.der] };
    const now = new Date();
    for (const alg of ["Ed25519", "P-256", "P-384", "P-521"] as DevKeyAlgorithm[]) {
      const dev = await ca.issueDevice({ clientId: CLIENT, handle: "alice", algorithm: alg });
      const r = await validateCertificateChain(dev.chain, trust, now);
      out[`${caAlg}/${alg}`] =
        `${r.status} ${r.identity?.clientId ?? "-"} ${dev.signaturePrivateKey?.length ?? 0}`;
    }
    const expired = await ca.issueDevice({
      clientId: CLIENT,
      handle: "alice",
      notBefore: new Date(now.getTime() - 30 * DAY),
      notAfter: new Date(now.getTime() - DAY),
    });
    out[`${caAlg}/expired`] = (await validateCertificateChain(expired.chain, trust, now)).status;
    const revoked = await ca.issueDevice({ clientId: CLIENT, handle: "alice" });
    ca.revoke(revoked);
    const crl = await ca.crl();
    out[`${caAlg}/revoked`] = (
      await validateCertificateChain(revoked.chain, { ...trust, crls: [crl.der] }, now)
    ).status;
  }
  return out;
}

(globalThis as { devCaTest?: { run: typeof run } }).devCaTest = { run };
