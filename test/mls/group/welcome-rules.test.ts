/**
 * One negative test per check of RFC 9420 §12.4.3.1 (joining from a Welcome): a valid Welcome
 * from alice adding bob, then one field changed — re-encrypted (and re-signed by alice where the
 * GroupInfo changes) so that exactly the check under test fails. Each must be InvalidWelcome (or
 * CredentialRejected) naming the rule.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { Writer, encode } from "../../../src/mls/codec/index.js";
import {
  defaultAuthenticationService,
  type AuthenticationService,
} from "../../../src/mls/credential/authentication.js";
import { encryptWithLabel } from "../../../src/mls/crypto/labels.js";
import { writeGroupInfo, writeGroupSecrets } from "../../../src/mls/group/codec.js";
import { signGroupInfo } from "../../../src/mls/group/groupInfo.js";
import { encodeMlsMessage } from "../../../src/mls/group/mlsMessage.js";
import type { GroupInfo, GroupSecrets } from "../../../src/mls/group/types.js";
import {
  joinGroup,
  openGroupInfo,
  openGroupSecrets,
  parseWelcome,
  verifyWelcome,
} from "../../../src/mls/group/welcome.js";
import { WireFormats } from "../../../src/mls/framing/types.js";
import { ExtensionTypes } from "../../../src/mls/keypackage/types.js";
import { welcomeKeyNonce, welcomeSecret, zeroSecret } from "../../../src/mls/keyschedule/schedule.js";
import { readRatchetTreeExtension, ratchetTreeExtension } from "../../../src/mls/group/extensions.js";
import { encodedRatchetTree } from "../../../src/mls/group/stateEncoding.js";
import { treeHash } from "../../../src/mls/tree/hash.js";
import type { RatchetTree } from "../../../src/mls/tree/types.js";
import {
  commit,
  keyPackage,
  member,
  newGroup,
  NOW,
  OPTS,
  type TestKeyPackage,
  type TestMember,
} from "./helpers.js";

let alice: TestMember;
let bob: TestMember;
let kb: TestKeyPackage;
let welcome: Uint8Array;
let updateWelcome: Uint8Array;
let kc: TestKeyPackage;
let carol: TestMember;

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([member("alice"), member("bob"), member("carol")]);
  kb = await keyPackage(bob);
  kc = await keyPackage(carol);
  const g = await newGroup(alice);
  welcome = (await commit(g, { adds: [{ keyPackage: kb.keyPackage }] })).welcome as Uint8Array;
  // a Welcome with a path secret: alice adds carol and updates her path in the same commit
  updateWelcome = (await commit(g, { adds: [{ keyPackage: kc.keyPackage }], forcePath: true }))
    .welcome as Uint8Array;
});

function joinAs(m: TestMember, kp: TestKeyPackage, w: Uint8Array, options: Partial<typeof OPTS> = {}) {
  return verifyWelcome(
    m.cs,
    parseWelcome(w),
    {
      keyPackage: kp.keyPackage,
      keyPackageRef: kp.ref,
      initPrivateKey: kp.initPrivateKey,
      encryptionPrivateKey: kp.encryptionPrivateKey,
      signaturePrivateKey: m.signaturePrivateKey,
    },
    { ...OPTS, ...options },
  );
}

interface Change {
  /** Change the GroupInfo (re-signed by alice unless `resign` is false), or replace its encoding. */
  groupInfo?: (gi: GroupInfo) => GroupInfo | Uint8Array;
  resign?: boolean;
  secrets?: (gs: GroupSecrets) => GroupSecrets;
  /** Change the encrypted GroupInfo (the group secrets are then bound to the changed one). */
  encryptedGroupInfo?: (egi: Uint8Array) => Uint8Array;
}

/** `w` for `kp` with its GroupInfo and/or GroupSecrets changed, encrypted again as a committer would. */
async function reseal(w: Uint8Array, kp: TestKeyPackage, change: Change): Promise<Uint8Array> {
  const cs = alice.cs;
  const parsed = parseWelcome(w).welcome;
  const gs = await openGroupSecrets(cs, parsed, kp.ref, kp.initPrivateKey);
  const gi = await openGroupInfo(cs, parsed, gs.joinerSecret, zeroSecret(cs));
  let giBytes: Uint8Array;
  const changed = change.groupInfo?.(gi) ?? gi;
  if (changed instanceof Uint8Array) giBytes = changed;
  else {
    const { signature, ...tbs } = changed;
    const signed =
      change.resign === false
        ? { ...tbs, signature }
        : await signGroupInfo(cs, tbs, alice.signaturePrivateKey);
    giBytes = encode(signed, writeGroupInfo);
  }
  const ws = await welcomeSecret(cs, gs.joinerSecret, zeroSecret(cs));
  const { key, nonce } = await welcomeKeyNonce(cs, ws);
  const sealedGroupInfo = await cs.hpke.encryptAead(key, nonce, new Uint8Array(0), giBytes);
  const encryptedGroupInfo = change.encryptedGroupInfo?.(sealedGroupInfo) ?? sealedGroupInfo;
  const secrets = encode(change.secrets?.(gs) ?? gs, writeGroupSecrets);
  const sealed = await encryptWithLabel(
    await cs.hpke.importPublicKey(kp.keyPackage.initKey),
    "Welcome",
    encryptedGroupInfo,
    secrets,
    cs.hpke,
  );
  return encodeMlsMessage({
    wireFormat: WireFormats.mls_welcome,
    welcome: {
      ciphersuite: parsed.ciphersuite,
      secrets: [
        { newMember: kp.ref, encryptedGroupSecrets: { kemOutput: sealed.enc, ciphertext: sealed.ct } },
      ],
      encryptedGroupInfo,
    },
  });
}

const flip = (b: Uint8Array): Uint8Array => b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x));

async function rejects(
  p: Promise<unknown>,
  rule: string,
  code: string = ErrorCode.InvalidWelcome,
): Promise<void> {
  await expect(p).rejects.toMatchObject({ code, rule });
}

describe("§12.4.3.1 joining from a Welcome", () => {
  it("the untouched Welcomes join (and resealing alone changes nothing)", async () => {
    await joinGroup(await joinAs(bob, kb, welcome));
    await joinGroup(await joinAs(bob, kb, await reseal(welcome, kb, {})));
    await joinGroup(await joinAs(carol, kc, await reseal(updateWelcome, kc, {})));
  });
  it("not a Welcome", async () => {
    const gi = new Writer().u16(1).u16(WireFormats.mls_group_info).finish();
    expect(() => parseWelcome(gi)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidWelcome }));
  });
  it("trailing bytes after the Welcome", () =>
    expect(() => parseWelcome(Uint8Array.of(...welcome, 0))).toThrow(
      expect.objectContaining({ rule: "§2.1 trailing bytes" }),
    ));
  it("no group secrets for our key package", async () => {
    const other = await keyPackage(bob);
    await rejects(joinAs(bob, other, welcome), "§12.4.3.1 new_member");
  });
  it("group secrets that do not decrypt with our init key", async () => {
    const other = await keyPackage(bob);
    await rejects(
      joinAs(bob, { ...kb, initPrivateKey: other.initPrivateKey }, welcome),
      "§12.4.3.1 group_secrets_decryption",
    );
  });
  it("an encrypted GroupInfo that does not decrypt", async () => {
    const w = await reseal(welcome, kb, { encryptedGroupInfo: flip });
    await rejects(joinAs(bob, kb, w), "§12.4.3.1 group_info_decryption");
  });
  it("trailing bytes after the GroupInfo", async () => {
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => Uint8Array.of(...encode(gi, writeGroupInfo), 0),
    });
    await rejects(joinAs(bob, kb, w), "§2.1 trailing bytes");
  });
  it("a bad GroupInfo signature", async () => {
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => ({ ...gi, signature: flip(gi.signature) }),
      resign: false,
    });
    await rejects(joinAs(bob, kb, w), "§12.4.3.1 group_info_signature");
  });
  it("a GroupInfo signer that is not a member", async () => {
    const w = await reseal(welcome, kb, { groupInfo: (gi) => ({ ...gi, signer: 7 }) });
    await rejects(joinAs(bob, kb, w), "§12.4.3.1 group_info_signer");
  });
  it("a GroupInfo of another cipher suite", async () => {
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => ({ ...gi, groupContext: { ...gi.groupContext, ciphersuite: 3 } }),
    });
    await rejects(joinAs(bob, kb, w), "§12.4.3.1 ciphersuite");
  });
  it("no ratchet tree", async () => {
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => ({
        ...gi,
        extensions: gi.extensions.filter((e) => e.extensionType !== ExtensionTypes.ratchet_tree),
      }),
    });
    await rejects(joinAs(bob, kb, w), "§12.4.3.3 ratchet_tree");
  });
  it("a tree whose hash is not the GroupContext's", async () => {
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => ({
        ...gi,
        groupContext: { ...gi.groupContext, treeHash: flip(gi.groupContext.treeHash) },
      }),
    });
    await rejects(joinAs(bob, kb, w), "§7.8 tree_hash");
  });
  it("a tree leaf whose signature is bad (tree hash matching)", async () => {
    let bad: RatchetTree = [];
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => {
        const ext = gi.extensions.find((e) => e.extensionType === ExtensionTypes.ratchet_tree);
        const tree = readRatchetTreeExtension((ext as { extensionData: Uint8Array }).extensionData);
        const n = tree[0];
        if (n?.nodeType !== 1) throw new Error("leaf 0 blank");
        bad = [
          { nodeType: 1 as const, leaf: { ...n.leaf, signature: flip(n.leaf.signature) } },
          ...tree.slice(1),
        ];
        return {
          ...gi,
          extensions: [
            ratchetTreeExtension(encodedRatchetTree(bad)),
            ...gi.extensions.filter((e) => e !== ext),
          ],
        };
      },
    });
    // the GroupContext then names the bad tree's hash (and alice signs it)
    const th = await treeHash(bad, alice.cs.hash);
    const w2 = await reseal(w, kb, {
      groupInfo: (gi) => ({ ...gi, groupContext: { ...gi.groupContext, treeHash: th } }),
    });
    await rejects(joinAs(bob, kb, w2), "§7.3 leaf_signature");
  });
  it("a bad confirmation tag", async () => {
    const w = await reseal(welcome, kb, {
      groupInfo: (gi) => ({ ...gi, confirmationTag: flip(gi.confirmationTag) }),
    });
    await rejects(joinAs(bob, kb, w), "§12.4.3.1 confirmation_tag");
  });
  it("a path secret that does not match the tree", async () => {
    const w = await reseal(updateWelcome, kc, {
      secrets: (gs) => ({ ...gs, pathSecret: new Uint8Array(32).fill(7) }),
    });
    await rejects(joinAs(carol, kc, w), "§12.4.3.1 path_secret");
  });
  it("a PSK we do not hold", async () => {
    const w = await reseal(welcome, kb, {
      secrets: (gs) => ({
        ...gs,
        psks: [{ pskType: 1, pskId: Uint8Array.of(1), pskNonce: new Uint8Array(32) }],
      }),
    });
    await rejects(joinAs(bob, kb, w), "§8.4 psk_unknown");
  });
  it("our leaf is not in the tree", async () => {
    const other = await keyPackage(bob);
    await rejects(
      joinAs(bob, { ...other, ref: kb.ref, initPrivateKey: kb.initPrivateKey }, welcome),
      "§12.4.3.1 own_leaf",
    );
  });
  it("our own stored key package's signature is bad", async () => {
    const kp = kb.keyPackage;
    const bad = { ...kb, keyPackage: { ...kp, signature: flip(kp.signature) } };
    await rejects(joinAs(bob, bad, welcome), "§12.4.3.1 own_key_package");
  });
  it("a leaf whose lifetime is over at the session clock", async () =>
    rejects(joinAs(bob, kb, welcome, { now: NOW + 10n * 86400n }), "§7.3 lifetime"));
  it("a leaf not yet valid at the session clock", async () =>
    rejects(joinAs(bob, kb, welcome, { now: NOW - 86400n }), "§7.3 lifetime"));
  it("a member whose credential the authentication service refuses", async () => {
    const refuseAlice: AuthenticationService = {
      validate: (input) =>
        input.credential.credentialType === 1 &&
        new TextDecoder().decode(input.credential.identity) === "alice"
          ? { ok: false, reason: "not alice" }
          : defaultAuthenticationService.validate(input),
    };
    await rejects(
      joinAs(bob, kb, welcome, { authenticationService: refuseAlice }),
      "§5.3.1 credential",
      ErrorCode.CredentialRejected,
    );
  });
  it("an empty Basic identity in the tree (default authentication service)", async () => {
    const nobody = await member("");
    const kn = await keyPackage(nobody);
    const g = await newGroup(alice);
    const accept: AuthenticationService = { validate: () => ({ ok: true }) };
    const w = (
      await commit(g, {
        adds: [{ keyPackage: kn.keyPackage }, { keyPackage: kb.keyPackage }],
        authenticationService: accept,
      })
    ).welcome as Uint8Array;
    await rejects(joinAs(bob, kb, w), "§5.3.1 credential", ErrorCode.CredentialRejected);
  });
});
