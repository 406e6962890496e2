/** The `Keystore` contract as a vitest suite (cases in contract-cases.ts). */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defineKeystoreContract, type ContractApi, type KeystoreUnderTest } from "./contract-cases.js";

export type { KeystoreUnderTest } from "./contract-cases.js";

const api: ContractApi = {
  describe,
  it,
  beforeEach,
  afterEach,
  expect: (actual, message) => expect(actual, message),
};

/** Register the contract suite for one backend; `factory` returns a fresh, empty keystore. */
export function runKeystoreContract(name: string, factory: () => Promise<KeystoreUnderTest>): void {
  defineKeystoreContract(api, name, factory);
}
