/**
 * Upload validation (Node.js): RFC 9420 §10.1 through `Keypackage.verify()`, plus the
 * Delivery Service policy (accepted suites, lifetime span, uploader identity, registered
 * signature key, init key replay). Cheap checks run before signature verification.
 */
import { createHash } from "node:crypto";
import { InvalidKeypackageError } from "../errors.js";
import { CredentialType } from "../credential/credentialType.js";
import { Keypackage } from "../keypackage/keypackage.js";
import { bytesEqual } from "../mls/tls.js";
import type { DsClient, NewDsKeypackage } from "./store.js";
import type { DsRejection, DsRule } from "./wire.js";

export interface ValidationPolicy {
  now: Date;
  /** Longest accepted `not_after − not_before`, ms. */
  maxLifetimeMs: number;
  /** Cipher suites this server accepts. */
  ciphersuites: readonly number[];
  /** Largest accepted encoded package, bytes. */
  maxKeypackageBytes: number;
}

export type ValidationResult =
  { ok: true; packages: NewDsKeypackage[] } | { ok: false; rejected: DsRejection[] };

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (padding required); undefined when malformed. */
export function decodeBase64(text: unknown): Uint8Array | undefined {
  if (typeof text !== "string" || !BASE64_RE.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

class Reject extends Error {
  constructor(
    readonly rule: DsRule,
    message: string,
  ) {
    super(message);
  }
}

const reject = (rule: DsRule, message: string): never => {
  throw new Reject(rule, message);
};

async function validateOne(
  text: unknown,
  client: DsClient,
  policy: ValidationPolicy,
): Promise<NewDsKeypackage> {
  const raw = decodeBase64(text);
  if (raw === undefined) return reject("base64", "not standard padded base64");
  if (raw.length > policy.maxKeypackageBytes) {
    reject("too_large", `${raw.length} bytes exceeds the limit of ${policy.maxKeypackageBytes}`);
  }
  let kp: Keypackage;
  try {
    kp = Keypackage.deserialize(raw);
  } catch (err) {
    if (err instanceof InvalidKeypackageError) return reject(err.rule, err.message);
    throw err;
  }
  const suite = kp.ciphersuite();
  if (!policy.ciphersuites.includes(suite))
    reject("ciphersuite", `cipher suite ${suite} is not accepted by this server`);
  const cred = kp.credential();
  if (cred.type !== CredentialType.Basic)
    return reject("credential_type", "only Basic credentials are accepted");
  if (!bytesEqual(cred.identity, new TextEncoder().encode(client.clientId))) {
    reject("client_id_mismatch", "the credential identity is not the uploading client");
  }
  const registered = client.signatureKeys.get(suite);
  if (registered === undefined)
    reject("signature_key_not_registered", `no signature key registered for cipher suite ${suite}`);
  if (!bytesEqual(kp.signatureKey(), registered as Uint8Array)) {
    reject("signature_key_mismatch", `the signature key is not the one registered for cipher suite ${suite}`);
  }
  const lt = kp.lifetime();
  const span = lt.notAfter.getTime() - lt.notBefore.getTime();
  if (span > policy.maxLifetimeMs)
    reject("lifetime_too_long", `lifetime span ${span} ms exceeds ${policy.maxLifetimeMs} ms`);
  try {
    await kp.verify({ now: policy.now });
  } catch (err) {
    if (err instanceof InvalidKeypackageError) return reject(err.rule, err.message);
    throw err;
  }
  return {
    ref: kp.ref().hashRef(),
    ciphersuite: suite,
    lastResort: kp.isLastResort(),
    notBefore: Math.floor(lt.notBefore.getTime() / 1000),
    notAfter: Math.floor(lt.notAfter.getTime() / 1000),
    initKeyHash: sha256(kp.initKey()),
    keyPackage: raw,
  };
}

/** Run `fn` over `items` with at most `width` in flight. */
async function mapPool<T, R>(
  items: readonly T[],
  width: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

/**
 * Validate every package of an upload (all are checked, so the answer lists each
 * failure). Also rejects repeated init keys and several last-resort packages of one
 * suite within the request. Replay against the store is checked by the caller.
 */
export async function validateUpload(
  texts: readonly unknown[],
  client: DsClient,
  policy: ValidationPolicy,
): Promise<ValidationResult> {
  const rejected: DsRejection[] = [];
  const results = await mapPool(texts, 16, async (text, index) => {
    try {
      return await validateOne(text, client, policy);
    } catch (err) {
      if (!(err instanceof Reject)) throw err;
      rejected.push({ index, rule: err.rule, message: err.message });
      return undefined;
    }
  });
  const initKeys = new Set<string>();
  const lastResortSuites = new Set<number>();
  results.forEach((p, index) => {
    if (p === undefined) return;
    const k = Buffer.from(p.initKeyHash).toString("hex");
    if (initKeys.has(k)) {
      rejected.push({
        index,
        rule: "init_key_reused",
        message: "the init key appears twice in this request",
      });
    } else if (p.lastResort && lastResortSuites.has(p.ciphersuite)) {
      rejected.push({
        index,
        rule: "multiple_last_resort",
        message: "at most one last-resort package per cipher suite",
      });
    }
    initKeys.add(k);
    if (p.lastResort) lastResortSuites.add(p.ciphersuite);
  });
  if (rejected.length > 0) return { ok: false, rejected: rejected.sort((a, b) => a.index - b.index) };
  return { ok: true, packages: results as NewDsKeypackage[] };
}
