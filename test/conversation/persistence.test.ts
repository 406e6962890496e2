import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CoreCrypto, Database, DatabaseKey } from "../../src/index.js";
import { TestClock } from "../helpers/session.js";
import { dec, enc, keypackage, member, receive, send } from "./helpers.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "conv-sqlite-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("conversations on the encrypted SQLite keystore", () => {
  it("a reopened session continues its conversations (decrypt, commit, encrypt)", async () => {
    const path = join(dir, "bob.db");
    const key = DatabaseKey.generate();
    const clock = new TestClock(Date.now());
    const a = await member(1);
    const b = await member(2, undefined, { database: await Database.open(path, key), clock });
    const id = enc("persisted");
    await a.cc.transaction((tx) => tx.createConversation(id, a.cred));
    await a.cc.transaction(async (tx) => tx.addClientsToConversation(id, [await keypackage(b)]));
    await b.cc.transaction((tx) => tx.processWelcomeMessage(a.transport.last().welcome as Uint8Array));
    expect(await b.database.counts()).toMatchObject({
      keypackages: 0,
      hpke_private_keys: 0,
      encryption_keypairs: 0,
      conversations: 1,
    });
    expect(dec((await receive(b, id, await send(a, id, "before close"))).message)).toBe("before close");
    await b.cc.close();

    const pending = await send(a, id, "while closed");
    const db2 = await Database.open(path, key);
    const b2 = await CoreCrypto.open(db2, { clock: clock.now });
    b2.provideTransport(b.transport);
    expect(await b2.transaction((tx) => tx.conversationEpoch(id))).toBe(1n);
    expect(dec((await b2.transaction((tx) => tx.decryptMessage(id, pending))).message)).toBe("while closed");
    await b2.transaction((tx) => tx.updateKeyingMaterial(id));
    expect((await receive(a, id, b.transport.last().commit)).epoch).toBe(2n);
    const back = await b2.transaction((tx) => tx.encryptMessage(id, enc("after reopen")));
    expect(dec((await receive(a, id, back)).message)).toBe("after reopen");
    await b2.close();
  });
});
