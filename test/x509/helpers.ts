/**
 * A test PKI (src/pki/devCa.ts) and X.509 members: sessions whose PKI environment trusts the
 * test root and whose credential is an X.509 credential issued by it.
 */
import "../../src/pki/index.js"; // registers X.509 support (mls-keypackages/x509)
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  type CredentialRef,
  type X509Policy,
} from "../../src/index.js";
import {
  createDevCa,
  devKeyAlgorithmFor,
  type DevCa,
  type DevDeviceCertificate,
} from "../../src/pki/devCa.js";
import { RecordingTransport, type Member } from "../conversation/helpers.js";
import { TestClock } from "../helpers/session.js";

export const DAY = 86_400_000;

/** A CA valid from a year ago for ten years (so that expired device certificates still chain). */
export async function testCa(algorithm: "Ed25519" | "P-256" | "P-384" | "P-521" = "P-256"): Promise<DevCa> {
  const now = Date.now();
  return createDevCa({
    algorithm,
    rootNotBefore: new Date(now - 365 * DAY),
    rootNotAfter: new Date(now + 3650 * DAY),
    intermediateNotBefore: new Date(now - 365 * DAY),
    intermediateNotAfter: new Date(now + 1825 * DAY),
  });
}

export function wireId(n: number, domain = "wire.example"): ClientId {
  const hex = n.toString(16).padStart(12, "0");
  return ClientId.parse(`3c4a8bd6-9b53-4c2f-8f36-${hex}:${(0x4d2a + n).toString(16)}@${domain}`);
}

export interface X509Member extends Member {
  device: DevDeviceCertificate;
}

/** A device certificate of the suite's key algorithm. */
export async function device(
  ca: DevCa,
  n: number,
  suite: Ciphersuite,
  options: { notBefore?: Date; notAfter?: Date; handle?: string } = {},
): Promise<DevDeviceCertificate> {
  return ca.issueDevice({
    clientId: wireId(n),
    handle: options.handle ?? `user_${n}`,
    displayName: `User ${n}`,
    algorithm: devKeyAlgorithmFor(suite),
    ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore }),
    ...(options.notAfter === undefined ? {} : { notAfter: options.notAfter }),
  });
}

export function x509Credential(suite: Ciphersuite, dev: DevDeviceCertificate): Credential {
  return Credential.x509(suite, { certificateChain: dev.chainPem, privateKey: dev.privateKeyPem as string });
}

/** A session trusting `ca` (anchor) with an X.509 credential for client `n`. */
export async function x509Member(
  ca: DevCa,
  n: number,
  suite: Ciphersuite = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
  options: { dev?: DevDeviceCertificate; policy?: X509Policy; clock?: TestClock; anchors?: boolean } = {},
): Promise<X509Member> {
  const clock = options.clock ?? new TestClock(Date.now());
  const database = await Database.inMemory();
  const cc = await CoreCrypto.open(database, {
    clock: clock.now,
    ...(options.policy === undefined ? {} : { x509Policy: options.policy }),
  });
  if (options.anchors !== false) await cc.pki.addTrustAnchor(ca.root.pem);
  const dev = options.dev ?? (await device(ca, n, suite));
  const cred: CredentialRef = await cc.transaction((tx) => tx.addCredential(x509Credential(suite, dev)));
  const transport = new RecordingTransport();
  cc.provideTransport(transport);
  return { cc, database, cred, clientId: wireId(n), transport, clock, device: dev };
}
