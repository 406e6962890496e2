import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  type CommitBundle,
  type CredentialRef,
  type Keypackage,
  type MlsTransport,
  type MlsTransportResponse,
  type X509Policy,
} from "../../src/index.js";
import { TestClock } from "../helpers/session.js";

export const SUITE1 = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

export function clientId(n: number): ClientId {
  const hex = n.toString(16).padStart(12, "0");
  return ClientId.parse(`11111111-2222-4333-8444-${hex}:${n.toString(16)}@example.com`);
}

/** Records every bundle and answers with queued responses (default "success"). */
export class RecordingTransport implements MlsTransport {
  readonly bundles: CommitBundle[] = [];
  readonly responses: MlsTransportResponse[] = [];
  async sendCommitBundle(bundle: CommitBundle): Promise<MlsTransportResponse> {
    this.bundles.push(bundle);
    return this.responses.shift() ?? "success";
  }
  last(): CommitBundle {
    const b = this.bundles.at(-1);
    if (b === undefined) throw new Error("no bundle sent");
    return b;
  }
}

export interface Member {
  cc: CoreCrypto;
  database: Database;
  cred: CredentialRef;
  clientId: ClientId;
  transport: RecordingTransport;
  clock: TestClock;
}

/**
 * A session on an in-memory database with a credential and a transport. The clock starts at
 * the real time: ts-mls checks new members' lifetimes against `Date.now()` (see docs).
 */
export async function member(
  n: number,
  suite: Ciphersuite = SUITE1,
  options: { database?: Database; clock?: TestClock; transport?: boolean; x509Policy?: X509Policy } = {},
): Promise<Member> {
  const clock = options.clock ?? new TestClock(Date.now());
  const database = options.database ?? (await Database.inMemory());
  const cc = await CoreCrypto.open(database, {
    clock: clock.now,
    ...(options.x509Policy === undefined ? {} : { x509Policy: options.x509Policy }),
  });
  const id = clientId(n);
  const cred = await cc.transaction((tx) => tx.addCredential(Credential.basic(suite, id)));
  const transport = new RecordingTransport();
  if (options.transport !== false) cc.provideTransport(transport);
  return { cc, database, cred, clientId: id, transport, clock };
}

export async function keypackage(m: Member, options: { lastResort?: boolean } = {}): Promise<Keypackage> {
  return m.cc.transaction((tx) => tx.generateKeypackage(m.cred, undefined, options));
}

/** `creator` creates `id` and adds each of `joiners`; every joiner processes the Welcome. */
export async function group(id: Uint8Array, creator: Member, ...joiners: Member[]): Promise<void> {
  await creator.cc.transaction((tx) => tx.createConversation(id, creator.cred));
  if (joiners.length === 0) return;
  const kps = await Promise.all(joiners.map((j) => keypackage(j)));
  await creator.cc.transaction((tx) => tx.addClientsToConversation(id, kps));
  const welcome = creator.transport.last().welcome;
  if (welcome === undefined) throw new Error("no welcome");
  for (const j of joiners) await j.cc.transaction((tx) => tx.processWelcomeMessage(welcome));
}

export async function send(from: Member, id: Uint8Array, text: string): Promise<Uint8Array> {
  return from.cc.transaction((tx) => tx.encryptMessage(id, enc(text)));
}

export async function receive(to: Member, id: Uint8Array, message: Uint8Array) {
  return to.cc.transaction((tx) => tx.decryptMessage(id, message));
}
