/**
 * Why an existing SQLCipher file did not open (Node.js): the key, or the file itself.
 *
 * SQLCipher answers "file is not a database" both for a wrong key and for a damaged file, and
 * an application trusting `WrongDatabaseKey` might wipe a database that only needed repair. The
 * SQLCipher 4 page format lets us tell most cases apart without decrypting anything: the file is
 * whole 4 096-byte pages; page 1 starts with the 16-byte salt; every page ends with a 16-byte IV
 * and a 64-byte HMAC-SHA512 over the page's ciphertext, IV and page number (little endian),
 * keyed by PBKDF2-HMAC-SHA512(key, salt XOR 0x3a, 2 iterations, 32 bytes).
 *
 * - A page whose HMAC verifies under the key proves the key right: the file is then damaged.
 * - A size that is not whole pages, a plain SQLite header, or bytes that cannot be ciphertext
 *   (far from uniform) mean the file is damaged or not a keystore, whatever the key.
 * - Otherwise (every HMAC fails on random-looking pages) the key is wrong, or every page checked
 *   is damaged, which cannot be told apart: `WrongDatabaseKey`.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { createHmac, pbkdf2Sync, timingSafeEqual } from "node:crypto";

const PAGE = 4096;
const SALT = 16;
const HMAC = 64;
/** Pages whose HMAC is tried after page 1 (bounded work on a big file). */
const PAGES_TRIED = 16;
const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");

export type SqliteFileDiagnosis =
  | { verdict: "wrong_key" }
  | {
      verdict: "corrupt";
      /**
       * `truncated` (not whole pages), `not_encrypted` (a plain SQLite database), `not_a_database`
       * (bytes that are not SQLCipher pages), `corrupt_pages` (the key verifies some pages but
       * SQLite cannot open the file).
       */
      reason: "truncated" | "not_encrypted" | "not_a_database" | "corrupt_pages";
      detail: string;
    };

/** Pearson's χ² of the byte histogram against uniform (255 degrees of freedom: mean 255, sd ≈ 22.6). */
function chiSquare(bytes: Uint8Array): number {
  const counts = new Uint32Array(256);
  for (const b of bytes) counts[b]!++;
  const expected = bytes.length / 256;
  let chi = 0;
  for (const c of counts) chi += (c - expected) ** 2 / expected;
  return chi;
}

/** Whether `page` (number `pgno`, 1-based) carries a valid SQLCipher 4 HMAC under `hmacKey`. */
function pageVerifies(page: Uint8Array, pgno: number, hmacKey: Uint8Array): boolean {
  const start = pgno === 1 ? SALT : 0;
  const n = Buffer.alloc(4);
  n.writeUInt32LE(pgno);
  const mac = createHmac("sha512", hmacKey)
    .update(page.subarray(start, PAGE - HMAC))
    .update(n)
    .digest();
  return timingSafeEqual(mac, page.subarray(PAGE - HMAC));
}

/**
 * Diagnose a file that SQLCipher refused with `rawKey` (32 bytes). Reads at most 17 pages;
 * writes nothing.
 */
export function diagnoseSqlcipherFile(path: string, rawKey: Uint8Array): SqliteFileDiagnosis {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const read = (pgno: number): Uint8Array => {
      const buf = Buffer.alloc(PAGE);
      readSync(fd, buf, 0, PAGE, (pgno - 1) * PAGE);
      return buf;
    };
    const head = Buffer.alloc(Math.min(size, PAGE));
    readSync(fd, head, 0, head.length, 0);
    if (head.length >= SQLITE_HEADER.length && head.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER)) {
      return { verdict: "corrupt", reason: "not_encrypted", detail: "a plain (unencrypted) SQLite database" };
    }
    if (size < PAGE || size % PAGE !== 0) {
      return {
        verdict: "corrupt",
        reason: "truncated",
        detail: `${size} bytes is not a whole number of ${PAGE}-byte pages`,
      };
    }
    const salt = Uint8Array.from(head.subarray(0, SALT), (b) => b ^ 0x3a);
    const hmacKey = pbkdf2Sync(rawKey, salt, 2, 32, "sha512");
    const pages = size / PAGE;
    try {
      if (pageVerifies(head, 1, hmacKey)) {
        return { verdict: "corrupt", reason: "corrupt_pages", detail: "page 1 verifies under the key" };
      }
      for (let pgno = 2; pgno <= Math.min(pages, 1 + PAGES_TRIED); pgno++) {
        if (pageVerifies(read(pgno), pgno, hmacKey)) {
          return {
            verdict: "corrupt",
            reason: "corrupt_pages",
            detail: `page 1 is damaged: page ${pgno} verifies under the key`,
          };
        }
      }
    } finally {
      hmacKey.fill(0);
    }
    // Ciphertext is uniform: χ² over 4 096 bytes stays far below 600 (mean 255, sd 22.6).
    if (chiSquare(head) > 600) {
      return { verdict: "corrupt", reason: "not_a_database", detail: "page 1 is not SQLCipher ciphertext" };
    }
    return { verdict: "wrong_key" };
  } finally {
    closeSync(fd);
  }
}
