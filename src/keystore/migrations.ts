/**
 * SQLite schema migrations, forward only. `SQLITE_MIGRATIONS[i]` takes a database from
 * version `i` to `i + 1` (`PRAGMA user_version`); a new database runs all of them.
 * Never edit a shipped step: append a new one and bump `SCHEMA_VERSION` in contract.ts.
 */

/**
 * v0 → v1: the first released schema. The private key tables are rowid tables on purpose:
 * rows sit in insertion order, so removing the packages of one generation batch frees
 * neighbouring pages instead of touching every page of a random-keyed B-tree.
 */
const V1 = `
CREATE TABLE credentials (
  id TEXT PRIMARY KEY NOT NULL,
  client_id BLOB NOT NULL,
  ciphersuite INTEGER NOT NULL,
  credential_type INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  credential BLOB NOT NULL,
  signature_private_key BLOB NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE keypackages (
  ref TEXT PRIMARY KEY NOT NULL,
  credential_id TEXT NOT NULL,
  ciphersuite INTEGER NOT NULL,
  credential_type INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  init_key TEXT NOT NULL,
  encryption_key TEXT NOT NULL,
  keypackage BLOB NOT NULL
);
CREATE INDEX keypackages_credential_id ON keypackages (credential_id);
CREATE TABLE hpke_private_keys (
  public_key BLOB PRIMARY KEY NOT NULL,
  private_key BLOB NOT NULL
);
CREATE TABLE encryption_keypairs (
  public_key BLOB PRIMARY KEY NOT NULL,
  private_key BLOB NOT NULL
);
CREATE TABLE conversations (
  id BLOB PRIMARY KEY NOT NULL,
  credential_id TEXT NOT NULL,
  state BLOB NOT NULL
);
CREATE TABLE kv (
  key TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL
) WITHOUT ROWID;
`;

/**
 * v1 → v2: key packages get `last_resort` (table rebuilt so the package bytes stay the
 * last column); the credential index becomes a covering index of every metadata column,
 * so listing metadata reads the index only, never a package; conversations get an index
 * on `credential_id`.
 */
const V2 = `
CREATE TABLE keypackages_v2 (
  ref TEXT PRIMARY KEY NOT NULL,
  credential_id TEXT NOT NULL,
  ciphersuite INTEGER NOT NULL,
  credential_type INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  last_resort INTEGER NOT NULL DEFAULT 0,
  init_key TEXT NOT NULL,
  encryption_key TEXT NOT NULL,
  keypackage BLOB NOT NULL
);
INSERT INTO keypackages_v2 (ref, credential_id, ciphersuite, credential_type, not_before, not_after,
                            last_resort, init_key, encryption_key, keypackage)
  SELECT ref, credential_id, ciphersuite, credential_type, not_before, not_after,
         0, init_key, encryption_key, keypackage FROM keypackages;
DROP TABLE keypackages;
ALTER TABLE keypackages_v2 RENAME TO keypackages;
CREATE INDEX keypackages_credential_id ON keypackages
  (credential_id, ref, ciphersuite, credential_type, not_before, not_after, last_resort);
CREATE INDEX conversations_credential_id ON conversations (credential_id);
`;

export const SQLITE_MIGRATIONS: readonly string[] = [V1, V2];
