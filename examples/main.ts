/**
 * `npm start`: the whole key package lifecycle on embedded defaults.
 *
 *   a Delivery Service on an ephemeral local port (SQLite) ·
 *   two clients with encrypted SQLite keystores ·
 *   Alice's key package pool: one sync() generates and uploads 100 key packages + a last-resort one ·
 *   Bob claims one, creates a conversation and adds Alice · Alice processes the Welcome ·
 *   the package is consumed exactly once · a message each way ·
 *   a credential rotation in one step, with a Welcome in flight still processed ·
 *   an expired package is pruned locally and refused by the DS.
 *
 * `npm start -- --x509`: the same with X.509 credentials from a development CA (src/pki/devCa.ts,
 * NOT for production): the sessions and the DS trust its root, identities are shown, and the
 * rotation is a certificate renewal (docs/x509.md).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import cliProgress from "cli-progress";
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  DatabaseKey,
  DeliveryServiceClient,
  DeliveryServiceError,
  DeviceStatus,
  E2eiConversationState,
  Keypackage,
  type CommitBundle,
  type PoolSyncReport,
} from "../src/index.js";
import { createDeliveryService, openStore } from "../src/ds/index.js";
import { createDevCa } from "../src/pki/index.js"; // mls-keypackages/x509: registers X.509 support

const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const UPLOAD = 100;
const DAY = 24 * 60 * 60 * 1000;
const text = new TextEncoder();
const utf8 = new TextDecoder();
const step = (n: number, s: string) => console.log(`\n${n}. ${s}`);
const say = (s: string) => console.log(`   ${s}`);

const X509 = process.argv.includes("--x509");
// --x509: a development CA whose certificates start three days ago (step 8 goes back two days).
const ca = X509 ? await createDevCa({ now: Date.now() - 3 * DAY }) : undefined;
const dir = mkdtempSync(join(tmpdir(), "mlskp-demo-"));
const ds = await createDeliveryService({
  store: await openStore(join(dir, "ds.sqlite")),
  dev: true,
  ...(ca === undefined ? {} : { trustAnchors: [ca.root.pem] }),
});
try {
  step(1, "Delivery Service");
  const url = await ds.listen({ host: "127.0.0.1", port: 0 });
  say(`listening on ${url} (SQLite store, open enrollment for this demo)`);

  // A client: an encrypted SQLite keystore, a session, a Basic credential, and a DS account.
  async function client(name: string, id: string, clock?: () => Date) {
    const key = DatabaseKey.generate(); // in an app: from the platform's secure key storage
    const database = await Database.open(join(dir, `${name}.keystore`), key);
    const cc = await CoreCrypto.open(database, clock ? { clock } : {});
    if (ca !== undefined) await cc.pki.addTrustAnchor(ca.root.pem); // CoreCrypto's setPkiEnvironment
    const clientId = ClientId.parse(id);
    const credential = await cc.transaction(async (tx) =>
      tx.addCredential(await newCredential(name, clientId)),
    );
    const dsClient = new DeliveryServiceClient({ baseUrl: url });
    await dsClient.register({ clientId, signatureKeys: { [SUITE]: credential.publicKey() } });
    return { name, cc, database, clientId, credential, ds: dsClient };
  }

  step(2, "Two clients, each with an encrypted SQLite keystore");
  let aliceTime = Date.now();
  const alice = await client(
    "alice",
    "0f4c3a1e-8a51-4f1e-9c1c-2d3e4f5a6b7c:a11ce@example.com",
    () => new Date(aliceTime),
  );
  const bob = await client("bob", "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8:b0b@example.com");
  say(
    `alice ${alice.clientId}  ·  bob ${bob.clientId}${ca ? "  (X.509 credentials from a development CA)" : ""}`,
  );

  const localCount = async (c: { cc: CoreCrypto }) =>
    c.cc.transaction(async (tx) => (await tx.getKeypackageRefs()).filter((r) => r.isValid()).length);
  const dsCount = async (c: { ds: DeliveryServiceClient }) => c.ds.count(SUITE);

  step(
    3,
    `Alice's key package pool: one sync() generates and uploads ${UPLOAD} key packages and a last-resort one`,
  );
  // The pool keeps `target` (100) packages on the DS, replaces them before they expire, keeps one
  // last-resort package and reconciles the DS with the keystore (docs/pool.md).
  const pool = alice.cc.keypackagePool({ ds: alice.ds, credential: alice.credential, target: UPLOAD });
  const bar = new cliProgress.SingleBar(
    { format: "   {bar} {stage}", hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { stage: "syncing" });
  const first = await pool.sync();
  bar.update(1, { stage: "synced" });
  bar.stop();
  say(syncReport(first));
  const before = { local: await localCount(alice), ds: await dsCount(alice) };
  say(
    `Alice's keystore: ${before.local} valid packages · DS: ${before.ds.count} regular + ${before.ds.lastResort} last resort`,
  );

  step(4, "Bob claims a key package of Alice's, creates a conversation and adds her");
  const claim = await bob.ds.claim(alice.clientId.userId(), SUITE);
  const claimed = claim.keyPackages[0]!;
  say(`claimed ${claimed.ref.slice(0, 16)}… for ${claimed.clientId} (last resort: ${claimed.lastResort})`);
  const afterClaim = await dsCount(alice);
  say(`DS now holds ${afterClaim.count} regular packages for Alice (one handed out, deleted on the DS)`);

  const conversationId = text.encode("demo-conversation");
  let welcome: Uint8Array | undefined;
  bob.cc.provideTransport({
    async sendCommitBundle(bundle: CommitBundle) {
      welcome = bundle.welcome; // a real app posts the bundle to its DS; here Bob hands the Welcome over
      return "success";
    },
  });
  await bob.cc.transaction(async (tx) => {
    await tx.createConversation(conversationId, bob.credential);
    await tx.addClientsToConversation(conversationId, [Keypackage.deserialize(claimed.keyPackage)]);
  });
  say(
    `Bob's conversation has ${(await bob.cc.transaction((tx) => tx.getClientIds(conversationId))).length} members; Welcome: ${welcome?.length} bytes`,
  );

  step(5, "Alice processes the Welcome: she joins, and the key package is consumed");
  const joined = await alice.cc.transaction((tx) => tx.processWelcomeMessage(welcome!));
  say(`joined conversation "${utf8.decode(joined)}"`);
  const after = { local: await localCount(alice), ds: await dsCount(alice) };
  say(
    `Alice's keystore: ${before.local} → ${after.local} valid packages (the claimed one is gone, with its private keys)`,
  );
  say(`DS: ${before.ds.count} → ${after.ds.count} regular, last resort kept: ${after.ds.lastResort}`);
  const again = await alice.cc
    .transaction((tx) => tx.processWelcomeMessage(welcome!))
    .catch((e: { code?: string }) => e.code);
  say(`the same Welcome again → ${String(again)} (a key package is consumed exactly once)`);

  const afterWelcome = await pool.sync();
  say(
    `the pool saw ${pool.consumedCount} package consumed; sync: ${syncReport(afterWelcome)} (${afterWelcome.dsCountAtHorizon} ≥ low water ${pool.options.lowWater}: nothing to do)`,
  );

  step(6, "A message each way");
  const m1 = await bob.cc.transaction((tx) => tx.encryptMessage(conversationId, text.encode("Hello Alice!")));
  const d1 = await alice.cc.transaction((tx) => tx.decryptMessage(conversationId, m1));
  say(`Bob → Alice: "${utf8.decode(d1.message)}"`);
  const m2 = await alice.cc.transaction((tx) =>
    tx.encryptMessage(conversationId, text.encode("Hi Bob, got your Welcome.")),
  );
  const d2 = await bob.cc.transaction((tx) => tx.decryptMessage(conversationId, m2));
  say(`Alice → Bob: "${utf8.decode(d2.message)}"`);
  if (ca !== undefined) {
    const [seen] = await bob.cc.transaction((tx) => tx.getDeviceIdentities(conversationId, [alice.clientId]));
    const state = await bob.cc.transaction((tx) => tx.conversationCredentialState(conversationId));
    say(
      `Bob sees Alice as "${seen?.x509Identity?.displayName}" (${seen?.x509Identity?.handle}), certificate ${DeviceStatus[seen?.status ?? 0]}, serial ${seen?.x509Identity?.serialNumber}; conversation ${E2eiConversationState[state]}`,
    );
  }

  step(7, "Credential rotation in one step, with a Welcome in flight");
  const inFlight = (await bob.ds.claim(alice.clientId.userId(), SUITE)).keyPackages[0]!;
  say(`Bob claims another package of Alice's (${inFlight.ref.slice(0, 16)}…), to add her later`);
  const fresh = await alice.cc.transaction(async (tx) =>
    tx.addCredential(await newCredential("alice", alice.clientId)),
  );
  if (ca !== undefined)
    say("Alice's certificate is renewed (new key, new certificate): a credential rotation");
  const dsBefore = await dsCount(alice);
  const rotation = await pool.rotateCredential(fresh);
  say(`pool.rotateCredential(newCredential): ${rotation.generated} packages generated with the new key`);
  say(
    `the DS swapped Alice's signature key and all her packages in one transaction: ${JSON.stringify(dsBefore)} (old key) → ${JSON.stringify(await dsCount(alice))} (new key)`,
  );
  const second = text.encode("demo-conversation-2");
  await bob.cc.transaction(async (tx) => {
    await tx.createConversation(second, bob.credential);
    await tx.addClientsToConversation(second, [Keypackage.deserialize(inFlight.keyPackage)]);
  });
  const joined2 = await alice.cc.transaction((tx) => tx.processWelcomeMessage(welcome!));
  say(
    `the in-flight Welcome (old key's package) still works: joined "${utf8.decode(joined2)}" (old packages stay ${pool.options.gracePeriod / DAY} days)`,
  );

  step(8, "Expiry: an expired package is pruned locally and refused by the DS");
  aliceTime = Date.now() - 2 * DAY; // Alice's clock made it two days ago, with a one-day lifetime
  const stale = await alice.cc.transaction((tx) => tx.generateKeypackage(fresh, 1 * DAY));
  aliceTime = Date.now();
  const pruned = await pruneExpired(alice.cc);
  say(`pruned ${pruned} expired package(s) locally`);
  try {
    await alice.ds.upload([stale]);
    say("unexpected: the DS accepted an expired package");
    process.exitCode = 1;
  } catch (err) {
    if (!(err instanceof DeliveryServiceError)) throw err;
    say(`DS refused it: HTTP ${err.status}, rule ${err.rules.join(", ")}`);
  }

  step(9, "Done");
  say(
    `Alice: ${await localCount(alice)} valid packages locally (the old key's stay for the grace period), DS ${JSON.stringify(await dsCount(alice))}`,
  );
  await alice.cc.close();
  await bob.cc.close();
} finally {
  await ds.close();
  rmSync(dir, { recursive: true, force: true });
}

/** A Basic credential, or with --x509 an X.509 one from a certificate the development CA issues now. */
async function newCredential(name: string, clientId: ClientId): Promise<Credential> {
  if (ca === undefined) return Credential.basic(SUITE, clientId);
  const handle = name.toLowerCase();
  const device = await ca.issueDevice({
    clientId,
    handle,
    displayName: name[0]!.toUpperCase() + name.slice(1),
  });
  return Credential.x509(SUITE, { certificateChain: device.chainPem, privateKey: device.privateKeyPem! });
}

function syncReport(r: PoolSyncReport): string {
  return `generated ${r.generated}, uploaded ${r.uploaded}, deleted on the DS ${r.deletedOnDs}, last resort ${r.lastResort}, ${r.requests} DS request(s)`;
}

async function pruneExpired(cc: CoreCrypto): Promise<number> {
  return cc.transaction(async (tx) => {
    let n = 0;
    for (const ref of await tx.getKeypackageRefs()) {
      if (!ref.isValid()) {
        await tx.removeKeypackage(ref);
        n++;
      }
    }
    return n;
  });
}
