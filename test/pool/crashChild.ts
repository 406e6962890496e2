/**
 * Child process of the crash test: opens the keystore file, then runs `sync()` (or a credential
 * rotation followed by syncs) in a loop until it is SIGKILLed. Environment: MLSKP_CRASH_DS,
 * MLSKP_CRASH_CLIENT, MLSKP_CRASH_TOKEN, MLSKP_CRASH_KEYSTORE, MLSKP_CRASH_KEY (hex),
 * then one line of JSON on stdin: { offset (ms added to the clock), mode ("sync" | "rotate") }.
 */
// Module by module rather than the package entry: a quarter less to load in each child.
import { ClientId } from "../../src/credential/clientId.js";
import { Credential } from "../../src/credential/credential.js";
import { CoreCrypto } from "../../src/session.js";
import { Database, registerPersistentKeystore } from "../../src/keystore/database.js";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { DeliveryServiceClient } from "../../src/ds/client.js";
import { openSqliteKeystore } from "../../src/keystore/sqlite.js";
import { CRASH_POOL_OPTIONS } from "./crashOptions.js";

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

// Started ahead of time (loading the library is the slow part): wait for this run's settings.
process.stdout.write("loaded\n");
const settings = await new Promise<{ offset: number; mode: string }>((resolve) => {
  let line = "";
  process.stdin.on("data", (d: Buffer) => {
    line += d.toString();
    if (line.includes("\n")) resolve(JSON.parse(line) as { offset: number; mode: string });
  });
});
registerPersistentKeystore((path, key) => openSqliteKeystore(path, key));
const offset = settings.offset;
const db = await Database.open(
  env("MLSKP_CRASH_KEYSTORE"),
  new DatabaseKey(Buffer.from(env("MLSKP_CRASH_KEY"), "hex")),
);
const cc = await CoreCrypto.open(db, { clock: () => new Date(Date.now() + offset) });
const clientId = ClientId.parse(env("MLSKP_CRASH_CLIENT"));
const ds = new DeliveryServiceClient({
  baseUrl: env("MLSKP_CRASH_DS"),
  clientId,
  token: env("MLSKP_CRASH_TOKEN"),
});
const [first] = await cc.transaction((tx) => tx.findCredentials({ clientId }));
if (first === undefined) throw new Error("no credential");
const pool = cc.keypackagePool({ ds, credential: first, ...CRASH_POOL_OPTIONS });
process.stdout.write("ready\n");
if (settings.mode === "rotate") {
  const suite = first.ciphersuite();
  const next = await cc.transaction((tx) => tx.addCredential(Credential.basic(suite, clientId)));
  await pool.rotateCredential(next);
  process.stdout.write("rotated\n");
}
for (;;) {
  await pool.sync();
  process.stdout.write("synced\n");
}
