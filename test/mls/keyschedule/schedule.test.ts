/** Our §8 key schedule beyond key-schedule.json: the joiner's variant, welcome key/nonce, external init, PSKs. */
import { describe, expect, test } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { expandWithLabel } from "../../../src/mls/crypto/labels.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { webCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";
import { pskSecret } from "../../../src/mls/keyschedule/psk.js";
import {
  epochSecretsFromJoiner,
  externalInitExport,
  externalInitImport,
  externalKeyPair,
  nextEpochSecrets,
  welcomeKeyNonce,
  welcomeSecret,
  zeroSecret,
} from "../../../src/mls/keyschedule/schedule.js";
import { PskTypes, type GroupContext } from "../../../src/mls/keyschedule/types.js";
import { bytesToHex, impl } from "../../vectors/helpers.js";

const providers = [
  ["node", nodeCryptoProvider],
  ["webcrypto", webCryptoProvider],
] as const;

function context(suite: number): GroupContext {
  return {
    version: 1,
    ciphersuite: suite,
    groupId: new TextEncoder().encode("group"),
    epoch: 3n,
    treeHash: new Uint8Array(32).fill(1),
    confirmedTranscriptHash: new Uint8Array(32).fill(2),
    extensions: [],
  };
}

describe.each(providers)("key schedule (%s)", (_name, provider) => {
  test.each([1, 2, 5, 7])("a joiner derives the members' epoch secrets (suite %i)", async (suite) => {
    const cs = await impl(provider, suite);
    const gc = context(suite);
    const psk = await pskSecret(cs, [
      {
        id: {
          pskType: PskTypes.external,
          pskId: new Uint8Array([1]),
          pskNonce: cs.rng.randomBytes(cs.kdf.size),
        },
        psk: new Uint8Array([9]),
      },
    ]);
    const member = await nextEpochSecrets(cs, {
      initSecret: cs.rng.randomBytes(cs.kdf.size),
      commitSecret: cs.rng.randomBytes(cs.kdf.size),
      pskSecret: psk,
      groupContext: gc,
    });
    const joiner = await epochSecretsFromJoiner(cs, member.joinerSecret, psk, gc);
    expect(Object.fromEntries(Object.entries(joiner).map(([k, v]) => [k, bytesToHex(v)]))).toEqual(
      Object.fromEntries(Object.entries(member.secrets).map(([k, v]) => [k, bytesToHex(v)])),
    );
    // A different GroupContext gives different secrets.
    const other = await epochSecretsFromJoiner(cs, member.joinerSecret, psk, { ...gc, epoch: 4n });
    expect(bytesToHex(other.epochAuthenticator)).not.toBe(bytesToHex(joiner.epochAuthenticator));
  });

  test("welcome key and nonce (§12.4.3.1)", async () => {
    const cs = await impl(provider, 1);
    const ws = await welcomeSecret(cs, cs.rng.randomBytes(32), zeroSecret(cs));
    const { key, nonce } = await welcomeKeyNonce(cs, ws);
    expect(key.length).toBe(cs.hpke.keyLength);
    expect(nonce.length).toBe(cs.hpke.nonceLength);
    expect(bytesToHex(key)).toBe(bytesToHex(await expandWithLabel(ws, "key", new Uint8Array(), 16, cs.kdf)));
    expect(bytesToHex(nonce)).toBe(
      bytesToHex(await expandWithLabel(ws, "nonce", new Uint8Array(), 12, cs.kdf)),
    );
  });

  test.each([1, 2, 7])("external init: both sides get the same init_secret (suite %i)", async (suite) => {
    const cs = await impl(provider, suite);
    const kp = await externalKeyPair(cs, cs.rng.randomBytes(cs.kdf.size));
    const joiner = await externalInitExport(cs, kp.publicKey);
    expect(joiner.initSecret.length).toBe(cs.kdf.size);
    const member = await externalInitImport(cs, kp.privateKey, joiner.kemOutput);
    expect(bytesToHex(member)).toBe(bytesToHex(joiner.initSecret));
    // Another key pair's member derives something else.
    const other = await externalKeyPair(cs, cs.rng.randomBytes(cs.kdf.size));
    expect(bytesToHex(await externalInitImport(cs, other.privateKey, joiner.kemOutput))).not.toBe(
      bytesToHex(joiner.initSecret),
    );
  });

  test("a malformed kem_output is an InvalidCommit", async () => {
    const cs = await impl(provider, 2);
    const kp = await externalKeyPair(cs, cs.rng.randomBytes(cs.kdf.size));
    await expect(externalInitImport(cs, kp.privateKey, new Uint8Array(65).fill(0xff))).rejects.toMatchObject({
      code: ErrorCode.InvalidCommit,
      rule: "§8.3 kem_output",
    });
  });

  test("no PSK: psk_secret is zero", async () => {
    const cs = await impl(provider, 1);
    expect(bytesToHex(await pskSecret(cs, []))).toBe("00".repeat(32));
  });
});
