/** End to end with the library: generate → upload → claim → add → Welcome → join, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Keypackage,
  type CommitBundle,
  type MlsTransport,
  type MlsTransportResponse,
} from "../../src/index.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { Device, SUITE1, randomUserId, startServer } from "./helpers.js";

class Recording implements MlsTransport {
  readonly bundles: CommitBundle[] = [];
  async sendCommitBundle(bundle: CommitBundle): Promise<MlsTransportResponse> {
    this.bundles.push(bundle);
    return "success";
  }
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe("end to end", () => {
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const store = new SqliteDsStore(":memory:");
    await store.init();
    ({ url, close } = await startServer(store));
  });
  afterAll(async () => {
    await close();
  });

  it("Alice claims Bob's devices' packages, adds them, and both join from the Welcome", async () => {
    const alice = await Device.create();
    const bobUser = randomUserId();
    const bob1 = await Device.create({ userId: bobUser });
    const bob2 = await Device.create({ userId: bobUser });
    const aliceDs = await alice.register(url);
    const bob1Ds = await bob1.register(url);
    const bob2Ds = await bob2.register(url);

    await bob1Ds.upload([...(await bob1.generate(2)), ...(await bob1.generate(1, { lastResort: true }))]);
    await bob2Ds.upload(await bob2.generate(1, { lastResort: true }));
    expect(await bob1Ds.count(SUITE1)).toEqual({ count: 2, lastResort: 1 });

    const claimed = await aliceDs.claim(bobUser, SUITE1);
    expect(claimed.exhausted).toEqual([]);
    const byClient = new Map(claimed.keyPackages.map((k) => [k.clientId, k]));
    expect(byClient.get(bob1.id)?.lastResort).toBe(false);
    expect(byClient.get(bob2.id)?.lastResort).toBe(true);
    const kps = claimed.keyPackages.map((k) => Keypackage.deserialize(k.keyPackage));
    for (const kp of kps) await kp.verify();

    const transport = new Recording();
    alice.cc.provideTransport(transport);
    const id = enc("e2e-conversation");
    const aliceCred = alice.creds.get(SUITE1)!;
    await alice.cc.transaction((tx) => tx.createConversation(id, aliceCred));
    await alice.cc.transaction((tx) => tx.addClientsToConversation(id, kps));
    const welcome = transport.bundles.at(-1)?.welcome;
    expect(welcome).toBeInstanceOf(Uint8Array);

    for (const bob of [bob1, bob2]) {
      const joined = await bob.cc.transaction((tx) => tx.processWelcomeMessage(welcome as Uint8Array));
      expect(joined).toEqual(id);
    }
    const members = (await bob1.cc.transaction((tx) => tx.getClientIds(id))).map(String).sort();
    expect(members).toEqual([alice.id, bob1.id, bob2.id].sort());

    const ct = await alice.cc.transaction((tx) => tx.encryptMessage(id, enc("hi bobs")));
    for (const bob of [bob1, bob2]) {
      const m = await bob.cc.transaction((tx) => tx.decryptMessage(id, ct));
      expect(dec(m.message)).toBe("hi bobs");
    }

    // bob1's regular package was used up locally; bob2's last-resort one survives
    const bob1Refs = (await bob1.cc.transaction((tx) => tx.getKeypackageRefs())).map((r) => r.hex());
    expect(bob1Refs).not.toContain(byClient.get(bob1.id)?.ref);
    const bob2Refs = (await bob2.cc.transaction((tx) => tx.getKeypackageRefs())).map((r) => r.hex());
    expect(bob2Refs).toContain(byClient.get(bob2.id)?.ref);
    // and the DS handed bob1's package out once: one regular left
    expect(await bob1Ds.count(SUITE1)).toEqual({ count: 1, lastResort: 1 });
    expect(await bob2Ds.count(SUITE1)).toEqual({ count: 0, lastResort: 1 });
  });
});
