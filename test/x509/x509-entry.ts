/**
 * Browser-side half of x509.browser.test.ts: a development PKI made with WebCrypto, X.509
 * credentials, RFC 5280 validation (pkijs) and identities, all in the page. Exposes
 * `globalThis.x509Test`.
 */
import { validateCertificateChain } from "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import {
  Credential,
  CoreCrypto,
  Database,
  DeviceStatus,
  E2eiConversationState,
  type Ciphersuite,
} from "../../src/index.js";
import { createDevCa, devKeyAlgorithmFor } from "../../src/pki/devCa.js";

const CLIENT = "3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.example";

async function run(suite: Ciphersuite): Promise<Record<string, string>> {
  const now = Date.now();
  const ca = await createDevCa({ now: now - 10 * 86_400_000 });
  const other = await createDevCa();
  const algorithm = devKeyAlgorithmFor(suite);
  const dev = await ca.issueDevice({ clientId: CLIENT, handle: "alice", displayName: "Alice", algorithm });
  const expired = await ca.issueDevice({
    clientId: CLIENT,
    handle: "alice",
    algorithm,
    notBefore: new Date(now - 5 * 86_400_000),
    notAfter: new Date(now - 86_400_000),
  });
  const revoked = await ca.issueDevice({ clientId: CLIENT, handle: "alice", algorithm });
  ca.revoke(revoked);
  const crl = await ca.crl();
  const alien = await other.issueDevice({ clientId: CLIENT, handle: "alice", algorithm });
  const trust = { anchors: [ca.root.der], crls: [crl.der] };
  const at = new Date();
  const out: Record<string, string> = {
    valid: (await validateCertificateChain(dev.chain, trust, at)).status,
    expired: (await validateCertificateChain(expired.chain, trust, at)).status,
    revoked: (await validateCertificateChain(revoked.chain, trust, at)).status,
    unknownRoot: (await validateCertificateChain(alien.chain, trust, at)).status,
  };
  const cc = await CoreCrypto.open(await Database.inMemory());
  await cc.pki.addTrustAnchor(ca.root.pem);
  const credential = Credential.x509(suite, {
    certificateChain: dev.chainPem,
    privateKey: dev.privateKeyPem!,
  });
  out.clientId = credential.clientId.toString();
  const ref = await cc.transaction((tx) => tx.addCredential(credential));
  const kp = await cc.transaction((tx) => tx.generateKeypackage(ref));
  out.capped = String(kp.lifetime().notAfter.getTime() <= dev.notAfter.getTime());
  const id = new TextEncoder().encode("browser");
  await cc.transaction((tx) => tx.createConversation(id, ref));
  const [me] = await cc.transaction((tx) => tx.getDeviceIdentities(id, [credential.clientId]));
  out.identity = `${DeviceStatus[me?.status ?? 0]} ${me?.x509Identity?.handle} ${me?.x509Identity?.displayName}`;
  out.state = E2eiConversationState[await cc.transaction((tx) => tx.conversationCredentialState(id))];
  return out;
}

(globalThis as { x509Test?: unknown }).x509Test = { run };
