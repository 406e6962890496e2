/**
 * Synthetic fill of a DS PostgreSQL schema (bench/ds-scale.ts and test/ds/scale.postgres.test.ts):
 * rows written by SQL into the store's own tables, through their constraints and count triggers.
 * Users with 1–10 clients (5.5 on average), 100 regular + 1 last-resort package per client, each
 * a copy of `kp`, one seen init key per package, expiries spread over 60 days from `tmin`.
 */
import type pg from "pg";

const SUITE = 1;
export const DAY = 86_400;
export const SPREAD_DAYS = 60;
/** Regular packages per client (plus one last-resort). */
export const PER_CLIENT = 100;

/** Synthetic user `u` (SQL): a uuid that sorts like `u`. */
const UID_SQL = (u: string): string =>
  `(SELECT substr(h,1,8)||'-'||substr(h,9,4)||'-4'||substr(h,14,3)||'-8'||substr(h,18,3)||'-'||substr(h,21,12)
    FROM (SELECT lpad(to_hex(${u}), 32, '0') AS h) x)`;
export const uidOf = (u: number): string => {
  const h = u.toString(16).padStart(32, "0");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

export interface FillState {
  users: number;
  /** Expiries of new rows start here (days before it were purged). */
  tmin: number;
}

/** Fill users (from, to] (SQL, in the store's schema, through its constraints and triggers). */
export async function fillUsers(
  db: pg.Client,
  from: number,
  to: number,
  st: FillState,
  kp: Buffer,
): Promise<void> {
  const nowS = Math.floor(Date.now() / 1000);
  const gen = `FROM (SELECT u, ${UID_SQL("u")} AS uid FROM generate_series($1::int + 1, $2::int) u) us
    CROSS JOIN LATERAL generate_series(1, 1 + (u * 7) % 10) d`;
  await db.query("BEGIN");
  await db.query(
    `INSERT INTO ds_clients (client_id, user_id, token_hash, signature_keys, created_at)
     SELECT uid || ':' || to_hex(d) || '@scale.example', uid,
            sha256(convert_to('tok:' || uid || ':' || d, 'UTF8')), $3, $4
     ${gen} ORDER BY 1`,
    [from, to, JSON.stringify({ [SUITE]: Buffer.alloc(32, 7).toString("base64") }), nowS],
  );
  const pk = `FROM (SELECT uid || ':' || to_hex(d) || '@scale.example' AS cid, uid ${gen}) c
    CROSS JOIN generate_series(0, ${PER_CLIENT}) j`;
  const exp = `$3::bigint + abs(hashtext(c.cid || '/' || j)) % ${SPREAD_DAYS * DAY}`;
  await db.query(
    `INSERT INTO ds_keypackages (user_id, client_id, ref, ciphersuite, last_resort, not_before, not_after, key_package)
     SELECT c.uid, c.cid, sha256(convert_to(c.cid || '/' || j, 'UTF8')), ${SUITE}, j = 0, $4, ${exp}, $5
     ${pk} ORDER BY c.uid, c.cid, j`,
    [from, to, st.tmin, nowS - DAY, kp],
  );
  await db.query(
    `INSERT INTO ds_seen_init_keys (hash, not_after)
     SELECT sha256(convert_to('ik:' || c.cid || '/' || j, 'UTF8')), ${exp}
     ${pk} ORDER BY 1`,
    [from, to, st.tmin],
  );
  await db.query("COMMIT");
}
