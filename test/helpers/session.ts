import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  type CredentialRef,
} from "../../src/index.js";

export const ALICE = ClientId.parse("11111111-2222-4333-8444-555555555555:1a2b@example.com");
export const BOB = ClientId.parse("66666666-7777-4888-9999-aaaaaaaaaaaa:ff@example.com");

/** A clock tests can move. */
export class TestClock {
  t: number;
  constructor(start = Date.UTC(2026, 10, 27, 12, 0, 0)) {
    this.t = start;
  }
  now = (): Date => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
}

export async function memorySession(clock = new TestClock()) {
  const database = await Database.inMemory();
  const cc = await CoreCrypto.open(database, { clock: clock.now });
  return { database, cc, clock };
}

export async function withCredential(
  cc: CoreCrypto,
  suite: Ciphersuite = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
  clientId: ClientId = ALICE,
): Promise<CredentialRef> {
  return cc.transaction((tx) => tx.addCredential(Credential.basic(suite, clientId)));
}
