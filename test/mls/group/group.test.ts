/**
 * The group engine end to end, our engine on every side: create (§11), add by commit and join
 * from the Welcome (§12.4.3.1), application messages both ways (§6.3), late messages of a past
 * epoch (§9.2), removes and self-updates (§12.4 with path), proposals by reference (§12.1),
 * external commits (§12.4.3.2), and the state encoding round trip.
 */
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../../src/mls/crypto/bytes.js";
import { createExternalCommit } from "../../../src/mls/group/external.js";
import { encryptApplication } from "../../../src/mls/group/message.js";
import type { GroupState } from "../../../src/mls/group/state.js";
import { decodeGroupState, encodeGroupState } from "../../../src/mls/group/stateEncoding.js";
import { leafCapabilities } from "../../../src/mls/keypackage/build.js";
import { members } from "../../../src/mls/tree/tree.js";
import {
  commit,
  join,
  keyPackage,
  member,
  newGroup,
  NOW,
  OPTS,
  receive,
  type TestMember,
} from "./helpers.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function say(
  from: GroupState,
  text: string,
  to: GroupState[],
): Promise<{ from: GroupState; to: GroupState[] }> {
  const sent = await encryptApplication(from, enc(text));
  const out: GroupState[] = [];
  for (const s of to) {
    const r = await receive(s, sent.message);
    expect(r.kind).toBe("application");
    if (r.kind === "application") expect(dec(r.data)).toBe(text);
    out.push(r.state);
  }
  return { from: sent.state, to: out };
}

function sameEpoch(states: GroupState[]): void {
  const [first, ...rest] = states;
  for (const s of rest) {
    expect(s.context.epoch).toBe(first?.context.epoch);
    expect(bytesEqual(s.keys.epochAuthenticator, first?.keys.epochAuthenticator ?? new Uint8Array())).toBe(
      true,
    );
  }
}

describe.each([1, 2, 3, 5, 7])("group engine, suite %i", (suite) => {
  it("create, add two, messages, remove, self-update, late message, proposals by reference, state round trip", async () => {
    const [alice, bob, carol] = await Promise.all([
      member("alice", suite),
      member("bob", suite),
      member("carol", suite),
    ]);
    let a = await newGroup(alice);
    const kb = await keyPackage(bob);
    const kc = await keyPackage(carol);
    const add = await commit(a, {
      adds: [{ keyPackage: kb.keyPackage, bytes: kb.bytes }, { keyPackage: kc.keyPackage }],
    });
    expect(add.welcome).toBeDefined();
    a = add.state;
    let b = await join(bob, kb, add.welcome as Uint8Array);
    let c = await join(carol, kc, add.welcome as Uint8Array);
    sameEpoch([a, b, c]);
    expect(a.context.epoch).toBe(1n);

    let r = await say(a, "hello", [b, c]);
    a = r.from;
    [b, c] = r.to as [GroupState, GroupState];
    r = await say(c, "hi from carol", [a, b]);
    c = r.from;
    [a, b] = r.to as [GroupState, GroupState];

    // a late message: bob sends in epoch 1, delivered after the next commit
    const late = await encryptApplication(b, enc("late"));
    b = late.state;

    // bob updates (path only); alice and carol follow
    const upd = await commit(b, { forcePath: true });
    b = upd.state;
    for (const s of [a, c]) expect((await receive(s, upd.commit)).kind).toBe("commit");
    a = (await receive(a, upd.commit)).state;
    c = (await receive(c, upd.commit)).state;
    sameEpoch([a, b, c]);
    const lateR = await receive(a, late.message);
    expect(lateR.kind === "application" && dec(lateR.data)).toBe("late");
    a = lateR.state;

    // carol proposes nothing; alice removes carol
    const rem = await commit(a, { removes: [2] });
    a = rem.state;
    b = (await receive(b, rem.commit)).state;
    const cr = await receive(c, rem.commit);
    expect(cr.kind === "commit" && cr.removedUs).toBe(true);
    expect(cr.state.active).toBe(false);
    sameEpoch([a, b]);
    expect(members(a.tree).map((m) => m.leafIndex)).toEqual([0, 1]);
    r = await say(b, "just us", [a]);
    b = r.from;
    a = r.to[0] as GroupState;

    // state encoding round trip, then keep going from the decoded states
    a = decodeGroupState(encodeGroupState(a), a.cs, suite);
    b = decodeGroupState(encodeGroupState(b), b.cs, suite);
    expect(encodeGroupState(a)).toEqual(encodeGroupState(decodeGroupState(encodeGroupState(a), a.cs, suite)));
    const again = await commit(a, { forcePath: true });
    b = (await receive(b, again.commit)).state;
    a = again.state;
    sameEpoch([a, b]);
    r = await say(a, "after decode", [b]);
  });

  it("external commit: a new member joins from the GroupInfo, the members follow", async () => {
    const [alice, bob, dave] = await Promise.all([
      member("alice", suite),
      member("bob", suite),
      member("dave", suite),
    ]);
    let a = await newGroup(alice);
    const kb = await keyPackage(bob);
    const add = await commit(a, { adds: [{ keyPackage: kb.keyPackage }] });
    a = add.state;
    let b = await join(bob, kb, add.welcome as Uint8Array);
    const ext = await externalJoin(dave, add.groupInfo);
    let d = ext.state;
    a = (await receive(a, ext.commit)).state;
    const br = await receive(b, ext.commit);
    expect(br.kind).toBe("commit");
    b = br.state;
    sameEpoch([a, b, d]);
    expect(d.context.epoch).toBe(2n);
    const r = await say(d, "dave here", [a, b]);
    d = r.from;
    // and a resync: dave rejoins by external commit, removing his old leaf
    const resync = await externalJoin(dave, (await commit(a, { forcePath: true })).groupInfo, d.ownLeaf);
    expect(resync.state.ownLeaf).toBe(d.ownLeaf);
  });
});

async function externalJoin(m: TestMember, groupInfo: Uint8Array, removeLeaf?: number) {
  return createExternalCommit(m.cs, m.suite, {
    groupInfo,
    leaf: {
      signatureKey: m.signaturePublicKey,
      credential: m.credential,
      capabilities: leafCapabilities(false),
      extensions: [],
    },
    signaturePrivateKey: m.signaturePrivateKey,
    ...(removeLeaf === undefined ? {} : { removeLeaf }),
    now: NOW,
    authenticationService: OPTS.authenticationService,
  });
}
