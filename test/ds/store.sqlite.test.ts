import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { openStore } from "../../src/ds/open.js";
import { describeStoreContract } from "./store.contract.js";

describeStoreContract("SQLite :memory:", async () => {
  const store = new SqliteDsStore(":memory:");
  await store.init();
  return { store, cleanup: () => store.close() };
});

describeStoreContract("SQLite file (WAL)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
  const store = await openStore(join(dir, "ds.db"));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe("SQLite file store", () => {
  it("keeps its data across reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
    try {
      const path = join(dir, "ds.db");
      const a = await openStore(path);
      expect(a.kind).toBe("sqlite");
      const tokenHash = new Uint8Array(32).fill(7);
      await a.createClient({
        clientId: "c",
        userId: "u",
        signatureKeys: new Map([[1, new Uint8Array(32)]]),
        createdAt: 1,
        tokenHash,
      });
      await a.close();
      const b = await openStore(path);
      expect((await b.clientByTokenHash(tokenHash))?.clientId).toBe("c");
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
