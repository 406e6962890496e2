/**
 * Our external commit (RFC 9420 §12.4.3.2) into a CoreCrypto 10.3.0 group, for every suite both
 * support: CoreCrypto publishes a GroupInfo in its commit bundle, we join with
 * `MlsGroup.externalCommit`, CoreCrypto merges our commit, and messages flow both ways. (The
 * other direction, CoreCrypto's external commit into our group, is in
 * test/interop/conversation.interop.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { defaultAuthenticationService } from "../../../src/mls/credential/authentication.js";
import { encode } from "../../../src/mls/codec/index.js";
import { writeCredential } from "../../../src/mls/credential/codec.js";
import { signatureSchemeOf, type Ciphersuite } from "../../../src/mls/ciphersuite.js";
import { MlsGroup } from "../../../src/mls/group.js";
import { generateSignatureKeyPair } from "../../../src/mls/signatureKeys.js";
import { coreCryptoClient } from "../../interop/corecrypto.js";

const SUITES = [1, 2, 3, 5, 7] as Ciphersuite[];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

describe.each(SUITES)("our external commit into a CoreCrypto group, suite %i", (suite) => {
  it("CoreCrypto merges it; messages flow both ways", async () => {
    const bundles: { commit: Uint8Array; groupInfo: { payload: Uint8Array } }[] = [];
    const theirs = await coreCryptoClient(
      `3c4a8bd6-9b53-4c2f-8f36-00000000e${suite}00:4e0${suite}@wire.com`,
      suite,
      {
        async sendCommitBundle(b: unknown) {
          bundles.push(b as (typeof bundles)[number]);
        },
      },
    );
    const { cc, core } = theirs;
    const id = enc(`cc-group-external-${suite}`);
    const convId = new cc.ConversationId(id);
    await core.transaction(async (ctx) => {
      await ctx.createConversation(convId, theirs.credentialRef);
      await ctx.updateKeyingMaterial(convId);
    });
    const groupInfo = new Uint8Array((bundles.at(-1) as (typeof bundles)[number]).groupInfo.payload);

    const keys = generateSignatureKeyPair(signatureSchemeOf(suite));
    const identity = enc(`5d1f3b2a-1c4e-4f6a-9b8d-00000000f${suite}00:5e0${suite}@wire.com`);
    const policy = { now: new Date(), authenticationService: defaultAuthenticationService };
    const joined = await MlsGroup.externalCommit({
      ciphersuite: suite,
      groupInfo,
      credential: encode({ credentialType: 1, identity }, writeCredential),
      signaturePublicKey: keys.publicKey,
      signaturePrivateKey: keys.privateKey,
      policy,
    });
    await core.transaction((ctx) => ctx.decryptMessage(convId, joined.commit));
    let us = joined.group;
    expect(us.epoch()).toBe(await core.transaction((ctx) => ctx.conversationEpoch(convId)));
    expect(await core.transaction((ctx) => ctx.getClientIds(convId))).toHaveLength(2);

    const out = await us.encrypt(enc("hello from the external joiner"));
    us = out.group;
    const d = await core.transaction((ctx) => ctx.decryptMessage(convId, out.message));
    expect(d.tag === "Text" ? dec(new Uint8Array(d.inner.plaintext)) : undefined).toBe(
      "hello from the external joiner",
    );
    const back = new Uint8Array(
      await core.transaction((ctx) => ctx.encryptMessage(convId, enc("welcome aboard"))),
    );
    const r = await us.process(back, policy);
    expect(dec(r.applicationData)).toBe("welcome aboard");
    us = r.group;

    // and CoreCrypto's next commit is one we follow
    await core.transaction((ctx) => ctx.updateKeyingMaterial(convId));
    const next = await us.process(
      new Uint8Array((bundles.at(-1) as (typeof bundles)[number]).commit),
      policy,
    );
    expect(next.kind).toBe("commit");
    expect(next.group.epoch()).toBe(await core.transaction((ctx) => ctx.conversationEpoch(convId)));
  });
});
