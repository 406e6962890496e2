/**
 * End-to-end ts-mls group life cycle with members on different providers:
 * key packages, createGroup, Add commit + Welcome, joinGroup, an UpdatePath
 * commit from the joiner (HPKE to the other member), application messages
 * both ways. Covers every RFC 9420 suite.
 */
import { describe, expect, test } from "vitest";
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  defaultCapabilities,
  defaultCryptoProvider,
  defaultLifetime,
  generateKeyPackage,
  joinGroup,
  makePskIndex,
  processPrivateMessage,
  type ClientState,
  type CiphersuiteImpl,
  type CryptoProvider,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { decodeMlsMessage, encodeMlsMessage } from "ts-mls/message.js";
import { bytesToHex } from "../../../src/mls/crypto/bytes.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { webCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";

const PAIRS: ReadonlyArray<readonly [string, CryptoProvider, string, CryptoProvider]> = [
  ["node", nodeCryptoProvider, "node", nodeCryptoProvider],
  ["node", nodeCryptoProvider, "webcrypto", webCryptoProvider],
  ["webcrypto", webCryptoProvider, "ts-mls default", defaultCryptoProvider],
  ["ts-mls default", defaultCryptoProvider, "node", nodeCryptoProvider],
];
const SUITES = [1, 2, 3, 4, 5, 6, 7];
const rows = PAIRS.flatMap(([an, ap, bn, bp]) => SUITES.map((s) => [s, an, ap, bn, bp] as const));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function send(
  from: ClientState,
  to: ClientState,
  text: string,
  fromCs: CiphersuiteImpl,
  toCs: CiphersuiteImpl,
): Promise<[ClientState, ClientState]> {
  const m = await createApplicationMessage(from, enc(text), fromCs);
  const wire = decodeMlsMessage(
    encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_private_message",
      privateMessage: m.privateMessage,
    }),
    0,
  )?.[0];
  if (wire === undefined || wire.wireformat !== "mls_private_message") throw new Error("bad wire message");
  const r = await processPrivateMessage(to, wire.privateMessage, makePskIndex(to, {}), toCs);
  if (r.kind !== "applicationMessage") throw new Error("expected an application message");
  expect(new TextDecoder().decode(r.message)).toBe(text);
  return [m.newState, r.newState];
}

describe("ts-mls group across providers", () => {
  test.each(rows)("suite %i: alice on %s, bob on %s", async (suite, _an, ap, _bn, bp) => {
    const cs = getCiphersuiteFromId(suite as CiphersuiteId);
    const [a, b] = await Promise.all([ap.getCiphersuiteImpl(cs), bp.getCiphersuiteImpl(cs)]);
    const alice = await generateKeyPackage(
      { credentialType: "basic", identity: enc("alice") },
      defaultCapabilities(),
      defaultLifetime,
      [],
      a,
    );
    const bob = await generateKeyPackage(
      { credentialType: "basic", identity: enc("bob") },
      defaultCapabilities(),
      defaultLifetime,
      [],
      b,
    );
    let aliceState = await createGroup(enc("group"), alice.publicPackage, alice.privatePackage, [], a);

    const add = await createCommit(
      { state: aliceState, cipherSuite: a },
      { extraProposals: [{ proposalType: "add", add: { keyPackage: bob.publicPackage } }] },
    );
    aliceState = add.newState;
    if (add.welcome === undefined) throw new Error("no Welcome");
    let bobState = await joinGroup(
      add.welcome,
      bob.publicPackage,
      bob.privatePackage,
      makePskIndex(undefined, {}),
      b,
      aliceState.ratchetTree,
    );
    expect(bytesToHex(bobState.keySchedule.epochAuthenticator)).toBe(
      bytesToHex(aliceState.keySchedule.epochAuthenticator),
    );

    // Bob commits with an UpdatePath: path secrets are HPKE-encrypted to Alice's leaf key.
    const upd = await createCommit({ state: bobState, cipherSuite: b });
    bobState = upd.newState;
    if (upd.commit.wireformat !== "mls_private_message") throw new Error("expected a private commit");
    const processed = await processPrivateMessage(
      aliceState,
      upd.commit.privateMessage,
      makePskIndex(aliceState, {}),
      a,
    );
    aliceState = processed.newState;
    expect(aliceState.groupContext.epoch).toBe(2n);
    expect(bytesToHex(aliceState.keySchedule.epochAuthenticator)).toBe(
      bytesToHex(bobState.keySchedule.epochAuthenticator),
    );

    [aliceState, bobState] = await send(aliceState, bobState, "hi bob", a, b);
    [bobState, aliceState] = await send(bobState, aliceState, "hi alice", b, a);
  });
});
