/**
 * Negative tests of §6 framing: one valid message, one field changed, the one error expected.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { Reader } from "../../../src/mls/codec/index.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import type { CiphersuiteImpl, Hpke } from "../../../src/mls/crypto/types.js";
import {
  confirmedTranscriptHashInput,
  encodeAuthenticatedContent,
  proposalRef,
  readAuthenticatedContent,
} from "../../../src/mls/framing/authenticatedContent.js";
import {
  NO_PADDING,
  padToMultipleOf,
  protectPrivate,
  unprotectPrivate,
} from "../../../src/mls/framing/private.js";
import { protectPublic, unprotectPublic } from "../../../src/mls/framing/public.js";
import {
  SenderTypes,
  type FramedContent,
  type PrivateMessage,
  type PublicMessage,
} from "../../../src/mls/framing/types.js";
import { SecretTree } from "../../../src/mls/keyschedule/secretTree.js";
import type { GroupContext } from "../../../src/mls/keyschedule/types.js";
import { bytesToHex, impl } from "../../vectors/helpers.js";

let cs: CiphersuiteImpl;
let keys: { publicKey: Uint8Array; signKey: Uint8Array };
let membershipKey: Uint8Array;
let senderDataSecret: Uint8Array;
let encryptionSecret: Uint8Array;
const groupContext: GroupContext = {
  version: 1,
  ciphersuite: 1,
  groupId: new TextEncoder().encode("framing group"),
  epoch: 7n,
  treeHash: new Uint8Array(32).fill(3),
  confirmedTranscriptHash: new Uint8Array(32).fill(4),
  extensions: [],
};

beforeAll(async () => {
  cs = await impl(nodeCryptoProvider, 1);
  keys = await cs.signature.keygen();
  membershipKey = cs.rng.randomBytes(32);
  senderDataSecret = cs.rng.randomBytes(32);
  encryptionSecret = cs.rng.randomBytes(32);
});

function content(body: Partial<FramedContent> = {}): FramedContent {
  return {
    groupId: groupContext.groupId,
    epoch: groupContext.epoch,
    sender: { senderType: SenderTypes.member, leafIndex: 2 },
    authenticatedData: new Uint8Array([1, 2]),
    contentType: 2,
    proposal: { proposalType: 3, removed: 1 },
    ...body,
  } as FramedContent;
}

const application = (text: string): Partial<FramedContent> =>
  ({ contentType: 1, applicationData: new TextEncoder().encode(text) }) as Partial<FramedContent>;

async function rejection(p: Promise<unknown>): Promise<{ code: string; rule: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: string; rule: string };
    return { code: err.code, rule: err.rule };
  }
  throw new Error("accepted");
}

describe("PublicMessage", () => {
  const ctx = () => ({ groupContext, membershipKey, signatureKey: () => keys.publicKey });
  const make = () =>
    protectPublic(cs, { content: content(), signKey: keys.signKey, groupContext, membershipKey });

  test("round trip", async () => {
    const msg = await make();
    const ac = await unprotectPublic(cs, msg, ctx());
    expect(ac.content).toEqual(msg.content);
  });

  test("membership tag mismatch", async () => {
    const msg = await make();
    const tag = new Uint8Array(msg.membershipTag as Uint8Array);
    tag[0]! ^= 1;
    expect(await rejection(unprotectPublic(cs, { ...msg, membershipTag: tag }, ctx()))).toEqual({
      code: ErrorCode.InvalidMessage,
      rule: "§6.2 membership_tag",
    });
    // A tag under another membership key (a non-member, or another epoch).
    const other = { ...ctx(), membershipKey: cs.rng.randomBytes(32) };
    expect((await rejection(unprotectPublic(cs, msg, other))).rule).toBe("§6.2 membership_tag");
  });

  test("bad signature (valid membership tag)", async () => {
    const wrong = await cs.signature.keygen();
    const msg = await protectPublic(cs, {
      content: content(),
      signKey: wrong.signKey,
      groupContext,
      membershipKey,
    });
    expect(await rejection(unprotectPublic(cs, msg, ctx()))).toEqual({
      code: ErrorCode.InvalidMessage,
      rule: "§6.1 signature",
    });
  });

  test("signature over another GroupContext", async () => {
    const msg = await protectPublic(cs, {
      content: content(),
      signKey: keys.signKey,
      groupContext: { ...groupContext, treeHash: new Uint8Array(32) },
      membershipKey,
    });
    // The membership tag covers the TBS too, so it fails first.
    expect((await rejection(unprotectPublic(cs, msg, ctx()))).rule).toBe("§6.2 membership_tag");
  });

  test("wrong epoch, wrong group", async () => {
    const msg = await make();
    expect(
      await rejection(unprotectPublic(cs, msg, { ...ctx(), groupContext: { ...groupContext, epoch: 8n } })),
    ).toEqual({ code: ErrorCode.InvalidMessage, rule: "§6 wrong_epoch" });
    expect(
      (
        await rejection(
          unprotectPublic(cs, msg, {
            ...ctx(),
            groupContext: { ...groupContext, groupId: new Uint8Array([1]) },
          }),
        )
      ).rule,
    ).toBe("§6 wrong_group");
  });

  test("application data is refused", async () => {
    const msg = await make();
    const forged: PublicMessage = { ...msg, content: content(application("hi")) };
    expect((await rejection(unprotectPublic(cs, forged, ctx()))).rule).toBe("§6.2 application_in_public");
  });

  test("a missing membership tag for a member", async () => {
    const msg = await make();
    expect((await rejection(unprotectPublic(cs, { ...msg, membershipTag: undefined }, ctx()))).rule).toBe(
      "§6.2 membership_tag",
    );
  });

  test("an external sender: no membership tag, signature checked", async () => {
    const c = content({ sender: { senderType: SenderTypes.external, senderIndex: 0 } });
    const msg = await protectPublic(cs, { content: c, signKey: keys.signKey, groupContext });
    expect(msg.membershipTag).toBeUndefined();
    await unprotectPublic(cs, msg, ctx());
    const wrong = await cs.signature.keygen();
    expect(
      (await rejection(unprotectPublic(cs, msg, { ...ctx(), signatureKey: () => wrong.publicKey }))).rule,
    ).toBe("§6.1 signature");
  });

  test("AuthenticatedContent round trip, transcript input and ProposalRef", async () => {
    const msg = await make();
    const ac = await unprotectPublic(cs, msg, ctx());
    const bytes = encodeAuthenticatedContent(ac);
    const r = new Reader(bytes);
    const back = readAuthenticatedContent(r);
    r.finish();
    expect(back).toEqual(ac);
    // Without a confirmation tag, the transcript input is the whole AuthenticatedContent.
    expect(bytesToHex(confirmedTranscriptHashInput(ac))).toBe(bytesToHex(bytes));
    expect((await proposalRef(cs, ac)).length).toBe(32);
  });
});

describe("PrivateMessage", () => {
  const tree = () => SecretTree.create(cs, 4, encryptionSecret);
  const ctx = (secretTree: SecretTree) => ({
    groupContext,
    senderDataSecret,
    secretTree,
    signatureKey: () => keys.publicKey,
  });
  const send = async (c: FramedContent, secretTree = tree(), padding = padToMultipleOf(32)) =>
    protectPrivate(cs, {
      content: c,
      signKey: keys.signKey,
      groupContext,
      senderDataSecret,
      secretTree,
      padding,
    });

  test("round trip, with and without padding", async () => {
    for (const padding of [NO_PADDING, padToMultipleOf(64)]) {
      const { message } = await send(content(application("hello")), tree(), padding);
      const got = await unprotectPrivate(cs, message, ctx(tree()));
      expect(
        new TextDecoder().decode((got.content.content as { applicationData: Uint8Array }).applicationData),
      ).toBe("hello");
    }
  });

  test("reused generation", async () => {
    const { message } = await send(content(application("once")));
    const first = await unprotectPrivate(cs, message, ctx(tree()));
    expect(await rejection(unprotectPrivate(cs, message, ctx(first.secretTree)))).toEqual({
      code: ErrorCode.InvalidMessage,
      rule: "§9.2 generation_reused",
    });
  });

  test("sender's generations advance; out of order accepted once", async () => {
    let sender = tree();
    const msgs: PrivateMessage[] = [];
    for (const text of ["a", "b", "c"]) {
      const out = await send(content(application(text)), sender);
      msgs.push(out.message);
      sender = out.secretTree;
    }
    let receiver = tree();
    for (const i of [2, 0, 1]) {
      const got = await unprotectPrivate(cs, msgs[i] as PrivateMessage, ctx(receiver));
      expect(got.generation).toBe(i);
      receiver = got.secretTree;
    }
  });

  test("tampered sender data", async () => {
    const { message } = await send(content());
    const esd = new Uint8Array(message.encryptedSenderData);
    esd[0]! ^= 1;
    expect(
      await rejection(unprotectPrivate(cs, { ...message, encryptedSenderData: esd }, ctx(tree()))),
    ).toEqual({
      code: ErrorCode.InvalidMessage,
      rule: "§6.3.2 sender_data",
    });
  });

  test("tampered ciphertext or authenticated data, and nothing consumed", async () => {
    const { message } = await send(content(application("x")));
    const ct = new Uint8Array(message.ciphertext);
    ct[ct.length - 1]! ^= 1;
    const receiver = tree();
    expect((await rejection(unprotectPrivate(cs, { ...message, ciphertext: ct }, ctx(receiver)))).rule).toBe(
      "§6.3.1 decryption",
    );
    expect(
      (
        await rejection(
          unprotectPrivate(cs, { ...message, authenticatedData: new Uint8Array([9]) }, ctx(receiver)),
        )
      ).rule,
    ).toBe("§6.3.1 decryption");
    // The failed attempts consumed no key: the genuine message still decrypts.
    await unprotectPrivate(cs, message, ctx(receiver));
  });

  test("non-zero padding", async () => {
    // Encrypt with a provider whose content AEAD flips the last padding byte to 1.
    let first = true;
    const hpke: Hpke = {
      ...cs.hpke,
      encryptAead: (key, nonce, aad, pt) => {
        if (first) {
          first = false;
          const bad = new Uint8Array(pt);
          bad[bad.length - 1] = 1;
          return cs.hpke.encryptAead(key, nonce, aad, bad);
        }
        return cs.hpke.encryptAead(key, nonce, aad, pt);
      },
    };
    const evil = { ...cs, hpke };
    const { message } = await protectPrivate(evil, {
      content: content(application("pad")),
      signKey: keys.signKey,
      groupContext,
      senderDataSecret,
      secretTree: tree(),
      padding: () => 5,
    });
    expect(await rejection(unprotectPrivate(cs, message, ctx(tree())))).toEqual({
      code: ErrorCode.InvalidMessage,
      rule: "§6.3.1 padding",
    });
  });

  test("bad signature", async () => {
    const wrong = await cs.signature.keygen();
    const { message } = await protectPrivate(cs, {
      content: content(),
      signKey: wrong.signKey,
      groupContext,
      senderDataSecret,
      secretTree: tree(),
    });
    expect((await rejection(unprotectPrivate(cs, message, ctx(tree())))).rule).toBe("§6.1 signature");
  });

  test("wrong epoch", async () => {
    const { message } = await send(content());
    expect(
      await rejection(
        unprotectPrivate(cs, message, { ...ctx(tree()), groupContext: { ...groupContext, epoch: 6n } }),
      ),
    ).toEqual({ code: ErrorCode.InvalidMessage, rule: "§6 wrong_epoch" });
  });

  test("only members send PrivateMessages", async () => {
    const c = content({ sender: { senderType: SenderTypes.external, senderIndex: 0 } });
    expect((await rejection(send(c))).rule).toBe("§6.3 sender_type");
  });
});
