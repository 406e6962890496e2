/**
 * Quickstart: the key package lifecycle on in-memory storage.
 * Run with `npx tsx examples/quickstart.ts`.
 */
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  KEYPACKAGE_DEFAULT_LIFETIME,
} from "../src/index.js";

const DAY = 24 * 60 * 60 * 1000;

// A movable clock, so the example can show expiry without waiting 30 days.
let now = Date.now();
const cc = await CoreCrypto.open(await Database.inMemory(), { clock: () => new Date(now) });
const clientId = ClientId.parse("3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.com");
const suite = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

// 1. A credential, then key packages with the default (84 days) and a 30-day lifetime.
const credential = await cc.transaction((tx) => tx.addCredential(Credential.basic(suite, clientId)));
await cc.transaction(async (tx) => {
  for (let i = 0; i < 5; i++) await tx.generateKeypackage(credential); // KEYPACKAGE_DEFAULT_LIFETIME
  for (let i = 0; i < 3; i++) await tx.generateKeypackage(credential, 30 * DAY);
});
console.log(`default lifetime: ${KEYPACKAGE_DEFAULT_LIFETIME / DAY} days`);

// 2. Count the valid ones.
const countValid = () =>
  cc.transaction(async (tx) => (await tx.getKeypackageRefs()).filter((r) => r.isValid()).length);
console.log(`valid key packages: ${await countValid()}`);

// 3. 31 days later the 30-day ones have expired: remove them.
now += 31 * DAY;
await cc.transaction(async (tx) => {
  for (const ref of await tx.getKeypackageRefs()) if (!ref.isValid()) await tx.removeKeypackage(ref);
});
console.log(`after pruning expired ones: ${await countValid()} valid`);

// 4. Replace the credential: a new one with fresh keys and packages, then drop the old one
//    (removeCredential deletes its key packages first).
const replacement = await cc.transaction(async (tx) => {
  const fresh = await tx.addCredential(Credential.basic(suite, clientId));
  for (let i = 0; i < 5; i++) await tx.generateKeypackage(fresh);
  await tx.removeCredential(credential);
  return fresh;
});
console.log(`replaced credential; valid key packages now: ${await countValid()}`);
console.log(
  `credentials left: ${(await cc.transaction((tx) => tx.findCredentials({ clientId }))).length}`,
  replacement.toString(),
);
