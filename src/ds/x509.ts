/**
 * X.509 credentials on upload (Node.js, Delivery Service): the checks a client does before it
 * accepts a member (docs/x509.md), with `validateCertificateChain` (RFC 5280 §6 path validation):
 * the chain builds to one of the server's trust anchors, it is valid at the DS clock and not
 * revoked by a configured CRL, the SAN client id (Wire's `wireapp://` URI) is the uploading
 * client, and the leaf certificate's key is the leaf node's signature key (which the cheap checks
 * already compared with the key registered for the suite).
 *
 * Chain validation (~10 ms of CPU, mostly ASN.1 parsing) runs on the verification workers
 * (verifyPool.ts: scheduled in turn with the other uploads' packages and counted in their queue
 * bound), or on the event loop with `verifyWorkers: 0`. A cache bounds it: one validation per
 * distinct chain (per server, whose anchors, intermediates and CRLs are fixed), shared by the
 * packages of an upload and by concurrent uploads; a valid result is reused while the DS clock is
 * inside the leaf's validity and for at most `ttlMs`, a failure only within the same second.
 */
import { parseWireClientId } from "../credential/clientId.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import "../pki/index.js"; // the DS registers X.509 support for its own credential checks
import { derObjects, parseCertificate, parseCrl, type PemOrDer } from "../pki/certificate.js";
import type { X509TrustStore, X509ValidationResult } from "../pki/validate.js";
import { sha256 } from "./validation.js";
import { validateChain } from "./verifyOne.js";
import type { PackageVerifier } from "./verifyPool.js";
import type { DsRule } from "./wire.js";

export interface X509UploadPolicyOptions {
  /** Trust anchors (root certificates), PEM or DER; at least one. */
  trustAnchors: readonly PemOrDer[];
  /** Intermediate certificates the chains may omit. */
  intermediates?: readonly PemOrDer[];
  /** CRLs (RFC 5280 §5) checked for every certificate of a chain. */
  crls?: readonly PemOrDer[];
  /** Refuse key packages with a Basic credential. */
  requireX509?: boolean;
  /** Most distinct chains cached (default 4096). */
  cacheSize?: number;
  /** Longest reuse of a valid result, ms of the DS clock (default 10 min). */
  ttlMs?: number;
}

export type X509Verdict = { ok: true } | { ok: false; rule: DsRule; message: string };

interface CacheEntry {
  result: Promise<X509ValidationResult>;
  /** DS clock (ms) at which it was computed. */
  at: number;
}

/** Rule of a chain that did not validate (the `rule` of `X509ValidationResult`). */
function failureRule(r: X509ValidationResult): DsRule {
  switch (r.status) {
    case "expired":
      return "x509_expired";
    case "not_yet_valid":
      return "x509_not_yet_valid";
    case "revoked":
      return "x509_revoked";
    default:
      break;
  }
  switch (r.rule) {
    case "parse":
      return "x509_malformed";
    case "key_usage":
      return "x509_key_usage";
    case "basic_constraints":
      return "x509_basic_constraints";
    case "san_client_id":
      return "x509_no_client_id";
    case "signature_scheme":
      return "x509_key_mismatch";
    case "validity":
      return "x509_expired";
    default:
      return "x509_untrusted";
  }
}

/** Two Wire client ids name the same device (uuid and device id compared as numbers, domain case-insensitively). */
function sameWireClient(a: string, b: string): boolean {
  try {
    const x = parseWireClientId(a.toLowerCase());
    const y = parseWireClientId(b.toLowerCase());
    return (
      x.userId === y.userId &&
      BigInt(`0x${x.deviceId}`) === BigInt(`0x${y.deviceId}`) &&
      x.domain === y.domain
    );
  } catch {
    return false;
  }
}

/** The X.509 policy of one Delivery Service. */
export class X509UploadPolicy {
  readonly requireX509: boolean;
  readonly #trust: X509TrustStore;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #cacheSize: number;
  readonly #ttlMs: number;
  /** Validations run (not answered from the cache), for tests and metrics. */
  validations = 0;

  constructor(options: X509UploadPolicyOptions) {
    const anchors = derObjects([...options.trustAnchors]);
    if (anchors.length === 0) throw new TypeError("an X.509 policy needs at least one trust anchor");
    const intermediates = derObjects([...(options.intermediates ?? [])]);
    const crls = derObjects([...(options.crls ?? [])]);
    // Fail at start, not on every upload, when a configured object does not decode.
    const decodes = (what: string, list: Uint8Array[], parse: (der: Uint8Array) => unknown): void =>
      list.forEach((der, i) => {
        try {
          parse(der);
        } catch {
          throw new TypeError(`${what} ${i + 1} does not decode (expected PEM or DER)`);
        }
      });
    decodes("trust anchor", anchors, parseCertificate);
    decodes("intermediate certificate", intermediates, parseCertificate);
    decodes("CRL", crls, parseCrl);
    this.#trust = { anchors, intermediates, crls };
    this.requireX509 = options.requireX509 === true;
    this.#cacheSize = options.cacheSize ?? 4096;
    this.#ttlMs = options.ttlMs ?? 600_000;
  }

  /** The validation of `chain` at `nowMs`, from the cache when still applicable. */
  #validate(
    chain: readonly Uint8Array[],
    nowMs: number,
    verifier: PackageVerifier | undefined,
  ): Promise<X509ValidationResult> {
    const parts: Uint8Array[] = [];
    for (const c of chain) parts.push(sha256(c));
    const key = Buffer.from(sha256(Buffer.concat(parts))).toString("hex");
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      const fresh = nowMs >= hit.at && nowMs - hit.at < this.#ttlMs;
      if (fresh) {
        // Valid: while the leaf is; a failure: within the same second only.
        const reuse = hit.result.then((r) =>
          (
            r.status === "valid"
              ? nowMs >= r.notBefore.getTime() && nowMs < r.notAfter.getTime()
              : Math.floor(nowMs / 1000) === Math.floor(hit.at / 1000)
          )
            ? r
            : undefined,
        );
        return reuse.then((r) => r ?? this.#run(key, chain, nowMs, verifier));
      }
    }
    return this.#run(key, chain, nowMs, verifier);
  }

  #run(
    key: string,
    chain: readonly Uint8Array[],
    nowMs: number,
    verifier: PackageVerifier | undefined,
  ): Promise<X509ValidationResult> {
    this.validations++;
    const result =
      verifier?.validateChains !== undefined
        ? verifier.validateChains([chain], this.#trust, nowMs).then((r) => r[0] as X509ValidationResult)
        : validateChain(chain, this.#trust, nowMs);
    this.#cache.delete(key);
    this.#cache.set(key, { result, at: nowMs });
    // A rejected promise is never cached (it is not a verdict).
    result.catch(() => {
      if (this.#cache.get(key)?.result === result) this.#cache.delete(key);
    });
    while (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
    return result;
  }

  /**
   * Check an X509 credential of a package uploaded by `clientId` whose leaf node carries
   * `signatureKey`, at `now` (the DS clock), validating the chain on `verifier`'s workers when it
   * has them. Never throws for a bad certificate (`VerifierUnavailableError` when the pool is gone).
   */
  async check(
    certificates: readonly Uint8Array[],
    signatureKey: Uint8Array,
    clientId: string,
    now: Date,
    verifier?: PackageVerifier,
  ): Promise<X509Verdict> {
    if (certificates.length === 0)
      return { ok: false, rule: "x509_malformed", message: "empty certificate chain" };
    const r = await this.#validate(certificates, now.getTime(), verifier);
    if (r.status !== "valid") {
      return { ok: false, rule: failureRule(r), message: r.reason ?? `certificate chain ${r.status}` };
    }
    const id = r.identity?.clientId;
    if (id === undefined) {
      return {
        ok: false,
        rule: "x509_no_client_id",
        message: "the certificate names no wireapp:// client id",
      };
    }
    if (!sameWireClient(id, clientId)) {
      return {
        ok: false,
        rule: "x509_client_id_mismatch",
        message: `the certificate's client id ${id} is not the uploading client`,
      };
    }
    // RFC 9420 §5.3.1: the credential must hold the leaf's signature key.
    if (!bytesEqual(r.leafPublicKey, signatureKey)) {
      return {
        ok: false,
        rule: "x509_key_mismatch",
        message: "the certificate's public key is not the leaf node's signature key",
      };
    }
    return { ok: true };
  }
}
