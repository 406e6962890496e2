import { describe, expect, it } from "vitest";
import { ErrorCode, KEYPACKAGE_DEFAULT_LIFETIME, MlsKeypackagesError } from "../../src/index.js";
import { memorySession, withCredential } from "../helpers/session.js";

describe("transactions", () => {
  it("finish() commits staged writes atomically; reads inside see staged writes", async () => {
    const { cc, database } = await memorySession();
    const cred = await withCredential(cc);
    const tx = await cc.newTransaction();
    await tx.generateKeypackage(cred);
    await tx.generateKeypackage(cred);
    expect(await tx.getKeypackageRefs()).toHaveLength(2);
    expect((await database.counts()).keypackages).toBe(0);
    await tx.finish();
    expect(await database.counts()).toMatchObject({
      keypackages: 2,
      hpke_private_keys: 2,
      encryption_keypairs: 2,
    });
  });

  it("abort() discards everything", async () => {
    const { cc, database } = await memorySession();
    const cred = await withCredential(cc);
    const tx = await cc.newTransaction();
    await tx.generateKeypackage(cred);
    await tx.abort();
    expect((await database.counts()).keypackages).toBe(0);
    expect(await cc.transaction((t) => t.getKeypackageRefs())).toHaveLength(0);
  });

  it("any call after finish or abort rejects with TransactionFinished", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    const tx = await cc.newTransaction();
    await tx.finish();
    await expect(tx.getKeypackageRefs()).rejects.toMatchObject({ code: ErrorCode.TransactionFinished });
    await expect(tx.generateKeypackage(cred)).rejects.toMatchObject({ code: ErrorCode.TransactionFinished });
    await expect(tx.finish()).rejects.toMatchObject({ code: ErrorCode.TransactionFinished });
    await expect(tx.abort()).rejects.toMatchObject({ code: ErrorCode.TransactionFinished });
    const tx2 = await cc.newTransaction();
    await tx2.abort();
    await expect(tx2.removeKeypackagesFor(cred)).rejects.toMatchObject({
      code: ErrorCode.TransactionFinished,
    });
  });

  it("an error in one operation does not poison the context", async () => {
    const { cc, database } = await memorySession();
    const cred = await withCredential(cc);
    const tx = await cc.newTransaction();
    await tx.generateKeypackage(cred);
    await expect(tx.generateKeypackage(cred, 0)).rejects.toMatchObject({ code: ErrorCode.InvalidLifetime });
    await tx.generateKeypackage(cred);
    await tx.finish();
    expect((await database.counts()).keypackages).toBe(2);
  });

  it("two concurrent transactions serialize: the second waits for the first to end", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    const events: string[] = [];
    const tx1 = await cc.newTransaction();
    const second = cc.newTransaction().then((tx2) => {
      events.push("tx2 started");
      return tx2;
    });
    await new Promise((r) => setTimeout(r, 20));
    events.push("tx1 working");
    await tx1.generateKeypackage(cred);
    await tx1.finish();
    events.push("tx1 finished");
    const tx2 = await second;
    expect(await tx2.getKeypackageRefs()).toHaveLength(1);
    await tx2.finish();
    expect(events).toEqual(["tx1 working", "tx1 finished", "tx2 started"]);
  });

  it("transaction(cb) finishes on success and aborts + rethrows the original error", async () => {
    const { cc, database } = await memorySession();
    const cred = await withCredential(cc);
    const out = await cc.transaction(async (tx) => {
      await tx.generateKeypackage(cred);
      return 42;
    });
    expect(out).toBe(42);
    class Boom extends Error {}
    const boom = new Boom("boom");
    await expect(
      cc.transaction(async (tx) => {
        await tx.generateKeypackage(cred, KEYPACKAGE_DEFAULT_LIFETIME);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await database.counts()).keypackages).toBe(1);
    // the lock was released: a new transaction starts immediately
    await cc.transaction(async (tx) => expect(await tx.getKeypackageRefs()).toHaveLength(1));
  });

  it("errors are MlsKeypackagesError with a stable code", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    const err = await cc.transaction((tx) => tx.generateKeypackage(cred, -5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlsKeypackagesError);
    expect(MlsKeypackagesError.is(err, ErrorCode.InvalidLifetime)).toBe(true);
  });
});
