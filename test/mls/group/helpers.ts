/**
 * Members for the group engine's tests: a Basic credential, a signature key pair, key packages
 * built by our own builder (src/mls/keypackage/build.ts), and shortcuts over src/mls/group.
 */
import { encode } from "../../../src/mls/codec/index.js";
import { writeCredential } from "../../../src/mls/credential/codec.js";
import { defaultAuthenticationService } from "../../../src/mls/credential/authentication.js";
import type { Credential } from "../../../src/mls/credential/types.js";
import { ciphersuiteImpl } from "../../../src/mls/crypto/select.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { createCommit, type CommitOptions, type CreatedCommit } from "../../../src/mls/group/commit.js";
import { createGroup } from "../../../src/mls/group/create.js";
import { REQUIRED_CAPABILITIES_CORECRYPTO } from "../../../src/mls/group/defaults.js";
import { receiveMessage, type ReceiveOptions, type Received } from "../../../src/mls/group/message.js";
import type { GroupState } from "../../../src/mls/group/state.js";
import { joinGroup, parseWelcome, verifyWelcome } from "../../../src/mls/group/welcome.js";
import { buildKeyPackage, leafCapabilities } from "../../../src/mls/keypackage/build.js";
import { parseKeyPackage } from "../../../src/mls/keypackage/parse.js";
import type { KeyPackage } from "../../../src/mls/keypackage/types.js";

export const NOW = BigInt(Math.floor(Date.now() / 1000));
export const OPTS: ReceiveOptions = { now: NOW, authenticationService: defaultAuthenticationService };

export interface TestMember {
  readonly name: string;
  readonly cs: CiphersuiteImpl;
  readonly suite: number;
  readonly credential: Credential;
  readonly signaturePublicKey: Uint8Array;
  readonly signaturePrivateKey: Uint8Array;
}

export interface TestKeyPackage {
  readonly keyPackage: KeyPackage;
  readonly bytes: Uint8Array;
  readonly ref: Uint8Array;
  readonly initPrivateKey: Uint8Array;
  readonly encryptionPrivateKey: Uint8Array;
}

export async function member(name: string, suite = 1): Promise<TestMember> {
  const cs = await ciphersuiteImpl(suite);
  const { publicKey, signKey } = await cs.signature.keygen();
  return {
    name,
    cs,
    suite,
    credential: { credentialType: 1, identity: new TextEncoder().encode(name) },
    signaturePublicKey: publicKey,
    signaturePrivateKey: signKey,
  };
}

export async function keyPackage(
  m: TestMember,
  lifetime?: { notBefore: number; notAfter: number },
): Promise<TestKeyPackage> {
  const now = Number(NOW);
  const built = await buildKeyPackage(m.cs, {
    ciphersuite: m.suite,
    credential: encode(m.credential, writeCredential),
    signaturePublicKey: m.signaturePublicKey,
    signaturePrivateKey: m.signaturePrivateKey,
    notBefore: lifetime?.notBefore ?? now - 60,
    notAfter: lifetime?.notAfter ?? now + 86400,
    lastResort: false,
  });
  return {
    keyPackage: parseKeyPackage(built.bytes),
    bytes: built.bytes,
    ref: built.ref,
    initPrivateKey: built.initPrivateKey,
    encryptionPrivateKey: built.encryptionPrivateKey,
  };
}

export function newGroup(m: TestMember, groupId = "group"): Promise<GroupState> {
  return createGroup({
    cs: m.cs,
    ciphersuite: m.suite,
    groupId: new TextEncoder().encode(groupId),
    credential: m.credential,
    signaturePublicKey: m.signaturePublicKey,
    signaturePrivateKey: m.signaturePrivateKey,
    capabilities: leafCapabilities(false),
    notBefore: NOW - 60n,
    notAfter: NOW + 86400n,
    extensions: [REQUIRED_CAPABILITIES_CORECRYPTO],
  });
}

export function commit(state: GroupState, options: Partial<CommitOptions> = {}): Promise<CreatedCommit> {
  return createCommit(state, { now: NOW, authenticationService: defaultAuthenticationService, ...options });
}

export async function join(m: TestMember, kp: TestKeyPackage, welcome: Uint8Array): Promise<GroupState> {
  const j = await verifyWelcome(
    m.cs,
    parseWelcome(welcome),
    {
      keyPackage: kp.keyPackage,
      keyPackageBytes: kp.bytes,
      initPrivateKey: kp.initPrivateKey,
      encryptionPrivateKey: kp.encryptionPrivateKey,
      signaturePrivateKey: m.signaturePrivateKey,
    },
    OPTS,
  );
  return joinGroup(j);
}

export function receive(state: GroupState, message: Uint8Array): Promise<Received> {
  return receiveMessage(state, message, OPTS);
}
