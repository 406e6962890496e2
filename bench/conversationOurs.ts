/**
 * Our side of the conversation benchmark (bench/conversation.ts), also run alone by
 * bench/conversation-profile.ts (CPU profiles, primitive call counts). Each case times OPS
 * operations through the public API, on in-memory databases.
 */
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  Keypackage,
  type CommitBundle,
  type CredentialRef,
  type MlsTransportResponse,
} from "../src/index.js";

export const OPS = Number(process.env.BENCH_OPS ?? 10);
export const SUITE = Number(process.env.BENCH_SUITE ?? 1) as Ciphersuite;
/** Members of the large group before the timed add (→ this + 1). */
export const BIG = Number(process.env.BENCH_BIG ?? 99);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
let seq = 0;
export const freshId = (): Uint8Array => enc(`bench-${process.pid}-${++seq}`);
export const wireId = (n: number, device: number): ClientId =>
  ClientId.parse(
    `aaaaaaaa-bbbb-4ccc-8ddd-${n.toString(16).padStart(12, "0")}:${device.toString(16)}@bench.example`,
  );
/** 1 KiB of application data. */
export const MESSAGE = new Uint8Array(1024).fill(0x61);

/** One operation to time: `prepare` (untimed) builds the input of `run`, which performs OPS operations. */
export interface Case {
  prepare(): Promise<unknown>;
  run(input: unknown): Promise<void>;
}

export function kase<T>(prepare: () => Promise<T>, run: (input: T) => Promise<void>): Case {
  return { prepare, run: (input) => run(input as T) };
}

export async function timeOnce(c: Case): Promise<number> {
  const input = await c.prepare();
  const t0 = performance.now();
  await c.run(input);
  return (performance.now() - t0) / OPS;
}

export const CASES = [
  ["createAdd2", "create + add 1 member (2 members), committed"],
  ["welcome2", "processWelcomeMessage, 2 members, committed"],
  ["add100", `add 1 member to ${BIG} (→ ${BIG + 1} members), rolled back`],
  ["commit100", `process that commit as another member (${BIG + 1} members), rolled back`],
  ["welcome100", `processWelcomeMessage, ${BIG + 1} members, rolled back`],
  ["message1k", "encrypt + decrypt 1 KiB (2 members), committed"],
] as const;
export type CaseName = (typeof CASES)[number][0];
export type Cases = Record<CaseName, Case>;

class LastBundle {
  bundle: CommitBundle | undefined;
  async sendCommitBundle(b: CommitBundle): Promise<MlsTransportResponse> {
    this.bundle = b;
    return "success";
  }
}

async function ourSession(
  device: number,
): Promise<{ cc: CoreCrypto; cred: CredentialRef; transport: LastBundle }> {
  const cc = await CoreCrypto.open(await Database.inMemory());
  const cred = await cc.transaction((tx) =>
    tx.addCredential(Credential.basic(SUITE, wireId(device, device))),
  );
  const transport = new LastBundle();
  cc.provideTransport(transport);
  return { cc, cred, transport };
}

/**
 * Key packages of distinct clients that fill the large groups with the creator and the member
 * who processes the commit (`BIG - 2` of them); both sides add the same ones.
 */
export async function fillers(): Promise<Keypackage[]> {
  const cc = await CoreCrypto.open(await Database.inMemory());
  return cc.transaction(async (tx) => {
    const out: Keypackage[] = [];
    for (let i = 0; i < BIG - 2; i++) {
      const ref = await tx.addCredential(Credential.basic(SUITE, wireId(1000 + i, i + 1)));
      out.push(await tx.generateKeypackage(ref));
    }
    return out;
  });
}

export async function oursBench(fill: Keypackage[]): Promise<Cases> {
  const a = await ourSession(1);
  const j = await ourSession(2);
  const b = await ourSession(3);
  const jKp = await j.cc.transaction((tx) => tx.generateKeypackage(j.cred));

  const createAdd2 = kase(
    async () => Array.from({ length: OPS }, freshId),
    async (ids) => {
      for (const id of ids) {
        await a.cc.transaction(async (tx) => {
          await tx.createConversation(id, a.cred);
          await tx.addClientsToConversation(id, [jKp]);
        });
      }
    },
  );

  // The large group: the creator, `b` (who processes the add), the fillers.
  const big = freshId();
  const bKp = await b.cc.transaction((tx) => tx.generateKeypackage(b.cred));
  await a.cc.transaction(async (tx) => {
    await tx.createConversation(big, a.cred);
    await tx.addClientsToConversation(big, [bKp, ...fill]);
  });
  const bigWelcome = a.transport.bundle?.welcome as Uint8Array;
  await b.cc.transaction((tx) => tx.processWelcomeMessage(bigWelcome));
  const add100 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        const tx = await a.cc.newTransaction();
        await tx.addClientsToConversation(big, [jKp]);
        await tx.abort();
      }
    },
  );

  const tx = await a.cc.newTransaction();
  await tx.addClientsToConversation(big, [jKp]);
  const bundle100 = a.transport.bundle as CommitBundle;
  await tx.abort();
  const commit100 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        const t = await b.cc.newTransaction();
        await t.decryptMessage(big, bundle100.commit);
        await t.abort();
      }
    },
  );
  const welcome100 = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        const t = await j.cc.newTransaction();
        await t.processWelcomeMessage(bundle100.welcome as Uint8Array);
        await t.abort();
      }
    },
  );

  const welcome2 = kase(
    async () => {
      const kps = await j.cc.transaction(async (t) => {
        const out: Keypackage[] = [];
        for (let i = 0; i < OPS; i++) out.push(await t.generateKeypackage(j.cred));
        return out;
      });
      const welcomes: Uint8Array[] = [];
      for (const kp of kps) {
        const id = freshId();
        await a.cc.transaction(async (t) => {
          await t.createConversation(id, a.cred);
          await t.addClientsToConversation(id, [kp]);
        });
        welcomes.push(a.transport.bundle?.welcome as Uint8Array);
      }
      return welcomes;
    },
    async (welcomes) => {
      for (const w of welcomes) await j.cc.transaction((t) => t.processWelcomeMessage(w));
    },
  );

  // A 2-member conversation for messages: `a` encrypts, `b` decrypts.
  const pair = freshId();
  const bKp2 = await b.cc.transaction((t) => t.generateKeypackage(b.cred));
  await a.cc.transaction(async (t) => {
    await t.createConversation(pair, a.cred);
    await t.addClientsToConversation(pair, [bKp2]);
  });
  const pairWelcome = a.transport.bundle?.welcome as Uint8Array;
  await b.cc.transaction((t) => t.processWelcomeMessage(pairWelcome));
  const message1k = kase(
    async () => undefined,
    async () => {
      for (let i = 0; i < OPS; i++) {
        const m = await a.cc.transaction((t) => t.encryptMessage(pair, MESSAGE));
        await b.cc.transaction((t) => t.decryptMessage(pair, m));
      }
    },
  );
  return { createAdd2, welcome2, add100, commit100, welcome100, message1k };
}
