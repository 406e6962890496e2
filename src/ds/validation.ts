/**
 * Upload validation (Node.js): the Delivery Service policy (accepted suites, lifetime,
 * uploader identity, registered signature key, init key replay) plus RFC 9420 §10.1 through
 * `Keypackage.verify()`. Work is bounded: the cheap checks and the de-duplication (within the
 * request and against the replay table) run first, in slices that yield to the event loop, and
 * only the packages that pass them reach signature verification, which runs on a
 * `PackageVerifier` (worker threads by default, see verifyPool.ts).
 */
import * as nodeCrypto from "node:crypto";
import { InvalidKeypackageError, MlsKeypackagesError } from "../errors.js";
import { CredentialType } from "../credential/credentialType.js";
import { Keypackage } from "../keypackage/keypackage.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import type { DsClient, NewDsKeypackage } from "./store.js";
import { ruleMessage } from "./verifyOne.js";
import { InProcessVerifier, VerifierUnavailableError, type PackageVerifier } from "./verifyPool.js";
import type { DsRejection, DsRule } from "./wire.js";
import type { X509UploadPolicy, X509Verdict } from "./x509.js";

export interface ValidationPolicy {
  now: Date;
  /** Longest accepted `not_after − not_before`, ms. */
  maxLifetimeMs: number;
  /** Cipher suites this server accepts. */
  ciphersuites: readonly number[];
  /** Largest accepted encoded package, bytes. */
  maxKeypackageBytes: number;
}

export interface ValidationOptions {
  /** Which of these init key hashes the store has seen before (checked before any signature). */
  seenInitKeys?: (hashes: Uint8Array[]) => Promise<Uint8Array[]>;
  /** Where signatures are verified (default: this thread, yielding between packages). */
  verifier?: PackageVerifier;
  /** Accept X509 credentials checked by this policy (x509.ts); without it only Basic is accepted. */
  x509?: X509UploadPolicy;
}

export type ValidationResult =
  { ok: true; packages: NewDsKeypackage[] } | { ok: false; rejected: DsRejection[] };

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (padding required); undefined when malformed. */
export function decodeBase64(text: unknown): Uint8Array | undefined {
  if (typeof text !== "string" || !BASE64_RE.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** One-shot `crypto.hash` (Node ≥ 20.12) when there, else `createHash`. */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: "buffer") => Buffer }).hash;

export function sha256(data: Uint8Array): Uint8Array {
  const d =
    oneShot !== undefined
      ? oneShot("sha256", data, "buffer")
      : nodeCrypto.createHash("sha256").update(data).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
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

const encoder = new TextEncoder();
const NO_REF = new Uint8Array(0);

/** The X509 credential of a prechecked package, checked after the cheap checks (x509.ts). */
interface X509Material {
  certificates: Uint8Array[];
  signatureKey: Uint8Array;
}

/**
 * The cheap checks of one package (no signature); the package to store when they pass, its
 * `ref` still empty (the verifier computes it, off the event loop).
 */
function precheck(
  text: unknown,
  client: DsClient,
  policy: ValidationPolicy,
  x509: X509UploadPolicy | undefined,
  chains: (X509Material | undefined)[],
  index: number,
): NewDsKeypackage {
  const raw = decodeBase64(text);
  if (raw === undefined) return reject("base64", "not standard padded base64");
  if (raw.length > policy.maxKeypackageBytes) {
    reject("too_large", `${raw.length} bytes exceeds the limit of ${policy.maxKeypackageBytes}`);
  }
  let kp: Keypackage;
  try {
    kp = Keypackage.deserialize(raw);
  } catch (err) {
    if (err instanceof InvalidKeypackageError) return reject(err.rule, ruleMessage(err));
    throw err;
  }
  const suite = kp.ciphersuite();
  if (!policy.ciphersuites.includes(suite))
    reject("ciphersuite", `cipher suite ${suite} is not accepted by this server`);
  let cred: ReturnType<Keypackage["credential"]>;
  try {
    cred = kp.credential();
  } catch (err) {
    if (err instanceof InvalidKeypackageError) return reject(err.rule, ruleMessage(err));
    // e.g. an empty Basic identity: no client id at all
    if (err instanceof MlsKeypackagesError) return reject("credential_rejected", err.message);
    throw err;
  }
  if (cred.type === CredentialType.X509) {
    if (x509 === undefined) return reject("credential_type", "only Basic credentials are accepted");
    chains[index] = { certificates: cred.certificates, signatureKey: kp.signatureKey() };
  } else {
    if (x509?.requireX509 === true)
      return reject("x509_required", "this server accepts X509 credentials only");
    if (!bytesEqual(cred.identity, encoder.encode(client.clientId))) {
      reject("client_id_mismatch", "the credential identity is not the uploading client");
    }
  }
  const registered = client.signatureKeys.get(suite);
  if (registered === undefined)
    reject("signature_key_not_registered", `no signature key registered for cipher suite ${suite}`);
  if (!bytesEqual(kp.signatureKey(), registered as Uint8Array)) {
    reject("signature_key_mismatch", `the signature key is not the one registered for cipher suite ${suite}`);
  }
  const lt = kp.lifetime();
  const nb = lt.notBefore.getTime();
  const na = lt.notAfter.getTime();
  if (na - nb > policy.maxLifetimeMs)
    reject("lifetime_too_long", `lifetime span ${na - nb} ms exceeds ${policy.maxLifetimeMs} ms`);
  const now = policy.now.getTime();
  if (now < nb) reject("lifetime_not_yet_valid", `not valid before ${lt.notBefore.toISOString()}`);
  if (now >= na) reject("lifetime_expired", `expired at ${lt.notAfter.toISOString()}`);
  return {
    ref: NO_REF,
    ciphersuite: suite,
    lastResort: kp.isLastResort(),
    notBefore: Math.floor(nb / 1000),
    notAfter: Math.floor(na / 1000),
    initKeyHash: sha256(kp.initKey()),
    keyPackage: raw,
  };
}

/** Packages prechecked between two turns of the event loop. */
const SLICE = 32;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Validate every package of an upload (every package is checked, so the answer lists each
 * failure; the first rule each package breaks). Order: the cheap policy checks, repeated init
 * keys and several last-resort packages of one suite within the request, init keys the store
 * has seen (`seenInitKeys`), then RFC 9420 §10.1 with the signatures on `verifier`, only for
 * the packages that passed everything else. Any unexpected failure on a package is the rule
 * `validation_error`, never an exception.
 */
export async function validateUpload(
  texts: readonly unknown[],
  client: DsClient,
  policy: ValidationPolicy,
  options: ValidationOptions = {},
): Promise<ValidationResult> {
  const rejected: DsRejection[] = [];
  const results: (NewDsKeypackage | undefined)[] = new Array(texts.length);
  const chains: (X509Material | undefined)[] = new Array(texts.length);
  for (let i = 0; i < texts.length; i++) {
    if (i > 0 && i % SLICE === 0) await yieldToLoop();
    try {
      results[i] = precheck(texts[i], client, policy, options.x509, chains, i);
    } catch (err) {
      if (err instanceof Reject) rejected.push({ index: i, rule: err.rule, message: err.message });
      else {
        const text = err instanceof Error ? err.message : String(err);
        rejected.push({
          index: i,
          rule: "validation_error",
          message: `the package could not be validated: ${text.slice(0, 200)}`,
        });
      }
    }
  }
  // De-duplication within the request.
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
      results[index] = undefined;
    } else if (p.lastResort && lastResortSuites.has(p.ciphersuite)) {
      rejected.push({
        index,
        rule: "multiple_last_resort",
        message: "at most one last-resort package per cipher suite",
      });
      results[index] = undefined;
    }
    initKeys.add(k);
    if (p.lastResort) lastResortSuites.add(p.ciphersuite);
  });
  // Replays against the store.
  if (options.seenInitKeys !== undefined) {
    const live = results.filter((p): p is NewDsKeypackage => p !== undefined);
    const seen = live.length > 0 ? await options.seenInitKeys(live.map((p) => p.initKeyHash)) : [];
    if (seen.length > 0) {
      const want = new Set(seen.map((h) => Buffer.from(h).toString("hex")));
      results.forEach((p, index) => {
        if (p === undefined || !want.has(Buffer.from(p.initKeyHash).toString("hex"))) return;
        rejected.push({
          index,
          rule: "init_key_reused",
          message: "this init key was seen before by this server",
        });
        results[index] = undefined;
      });
    }
  }
  // X.509 credentials: chain, validity, revocation, SAN client id, leaf key (x509.ts; cached per chain).
  if (options.x509 !== undefined) {
    for (let index = 0; index < results.length; index++) {
      const m = chains[index];
      if (results[index] === undefined || m === undefined) continue;
      if (index > 0 && index % SLICE === 0) await yieldToLoop();
      let v: X509Verdict;
      try {
        v = await options.x509.check(
          m.certificates,
          m.signatureKey,
          client.clientId,
          policy.now,
          options.verifier,
        );
      } catch (err) {
        if (err instanceof VerifierUnavailableError) throw err;
        const text = err instanceof Error ? err.message : String(err);
        v = {
          ok: false,
          rule: "validation_error",
          message: `the certificate chain could not be validated: ${text.slice(0, 200)}`,
        };
      }
      if (v.ok) continue;
      rejected.push({ index, rule: v.rule, message: v.message });
      results[index] = undefined;
    }
  }
  // Signatures and the rest of RFC 9420 §10.1, only for what passed everything else.
  const toVerify: number[] = [];
  results.forEach((p, index) => {
    if (p !== undefined) toVerify.push(index);
  });
  if (toVerify.length > 0) {
    const verifier = options.verifier ?? new InProcessVerifier();
    const verdicts = await verifier.verify(
      toVerify.map((i) => (results[i] as NewDsKeypackage).keyPackage),
      policy.now.getTime(),
    );
    verdicts.forEach((v, k) => {
      const index = toVerify[k] as number;
      if (v.ok) {
        (results[index] as NewDsKeypackage).ref = v.ref;
        return;
      }
      rejected.push({ index, rule: v.rule as DsRule, message: v.message });
      results[index] = undefined;
    });
  }
  if (rejected.length > 0) return { ok: false, rejected: rejected.sort((a, b) => a.index - b.index) };
  return { ok: true, packages: results as NewDsKeypackage[] };
}
