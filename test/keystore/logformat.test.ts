/**
 * The IndexedDB log payload encoding (src/keystore/logFormat.ts): keys that are lowercase hex are
 * stored as their bytes, anything else as a string; the bytes are fixed (databases written by
 * earlier versions must stay readable) and decode back to the same keys.
 */
import { describe, expect, test } from "vitest";
import { decodeEntries, encodeEntries, type Entry } from "../../src/keystore/logFormat.js";
import { bytesToHex } from "../../src/mls/crypto/bytes.js";

const KEYS = [
  "00ff",
  "abcdef0123456789",
  "ABCD", // uppercase: not our hex, kept as a string
  "abc", // odd length
  "",
  "zz",
  "ab\u00e9f", // non-ASCII
  "abcdeg", // non-hex at the end: rewound to a string
  "0123456789abcdef".repeat(4),
  "aa\u4e00\u4e01",
  "ffff".repeat(16) + "x",
];

describe("log payload encoding", () => {
  test("golden bytes: hex keys as bytes, other keys as strings, rows after them", () => {
    const entries: Entry[] = KEYS.map((key) => ({ table: "kv", key, row: undefined }));
    entries.push({ table: "kv", key: "k1", row: { key: "k1", value: Uint8Array.of(1, 2, 3) } });
    expect(bytesToHex(encodeEntries(entries))).toBe(
      "010000000c0500020000000200ff05000200000008abcdef012345678905000000000004414243440500000000000361626305000000000000050000000000027a7a050001000000056162c3a96605000000000006616263646567050002000000200123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef050001000000086161e4b880e4b881050000000000416666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666678050100000000026b3100000003010203",
    );
  });

  test("every key decodes back as written, whatever its characters", () => {
    const alphabet = "0123456789abcdefABCDxyz\u00e9\u4e00";
    const keys = [...KEYS];
    for (let i = 0; i < 500; i++) {
      let k = "";
      const len = Math.floor(Math.random() * 70);
      for (let j = 0; j < len; j++)
        k += alphabet[Math.floor(Math.random() * (Math.random() < 0.97 ? 16 : alphabet.length))];
      keys.push(k);
    }
    const entries: Entry[] = keys.map((key) => ({ table: "keypackages", key, row: undefined }));
    const back: string[] = [];
    decodeEntries(encodeEntries(entries, 16), (_t, key) => back.push(key));
    expect(back).toEqual(keys);
  });
});
