import "fake-indexeddb/auto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { openIndexedDbKeystore } from "../../src/keystore/indexeddb.js";
import { MemoryKeystore } from "../../src/keystore/memory.js";
import { openSqliteKeystore } from "../../src/keystore/sqlite.js";
import { runKeystoreContract } from "./contract.js";

runKeystoreContract("memory", async () => ({ keystore: new MemoryKeystore(), cleanup: async () => {} }));

runKeystoreContract("sqlite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ks-contract-"));
  const keystore = await openSqliteKeystore(join(dir, "keystore.db"), DatabaseKey.generate());
  return { keystore, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

let n = 0;
runKeystoreContract("indexeddb (fake-indexeddb)", async () => {
  const name = `contract-${process.pid}-${n++}`;
  const keystore = await openIndexedDbKeystore(name, DatabaseKey.generate());
  return {
    keystore,
    cleanup: async () => {
      await new Promise<void>((resolve, reject) => {
        const req = indexedDB.deleteDatabase(name);
        req.onsuccess = () => resolve();
        req.onerror = () => reject(req.error);
      });
    },
  };
});
