/**
 * One error hierarchy for the whole library. Every error carries a stable `code`
 * that callers can switch on; messages are for humans and may change.
 * No error message ever contains private key material.
 */
export const ErrorCode = {
  TransactionFinished: "TransactionFinished",
  CredentialNotFound: "CredentialNotFound",
  CredentialStillInUse: "CredentialStillInUse",
  InvalidLifetime: "InvalidLifetime",
  InvalidKeypackage: "InvalidKeypackage",
  InvalidClientId: "InvalidClientId",
  InvalidArgument: "InvalidArgument",
  InvalidCredentialRef: "InvalidCredentialRef",
  UnsupportedCiphersuite: "UnsupportedCiphersuite",
  AlreadyExists: "AlreadyExists",
  KeystoreClosed: "KeystoreClosed",
  KeystoreError: "KeystoreError",
  InvalidDatabaseKey: "InvalidDatabaseKey",
  WrongDatabaseKey: "WrongDatabaseKey",
  /**
   * The database file is damaged or not a keystore at all (truncated, corrupt pages, a plain
   * SQLite or other file): the key may well be right. Repair or restore it; do not wipe it.
   */
  CorruptDatabase: "CorruptDatabase",
  SchemaTooNew: "SchemaTooNew",
  ConversationNotFound: "ConversationNotFound",
  ConversationAlreadyExists: "ConversationAlreadyExists",
  OrphanWelcome: "OrphanWelcome",
  InvalidWelcome: "InvalidWelcome",
  InvalidMessage: "InvalidMessage",
  MessageRejected: "MessageRejected",
  TransportRetry: "TransportRetry",
  TransportMissing: "TransportMissing",
  ClientNotFound: "ClientNotFound",
  UnsupportedConversationState: "UnsupportedConversationState",
  DeliveryServiceError: "DeliveryServiceError",
  CannotRemoveSelf: "CannotRemoveSelf",
  /** Bytes that break the TLS presentation language of RFC 9420 §2.1 (truncated, trailing, non-minimal…). */
  MalformedEncoding: "MalformedEncoding",
  /** A commit or proposal that breaks a rule of RFC 9420 §12 (validation, tree, transcript, signature). */
  InvalidCommit: "InvalidCommit",
  /** An external commit cannot be made or was refused (RFC 9420 §12.4.3.2). */
  InvalidGroupInfo: "InvalidGroupInfo",
  /** The authentication service (RFC 9420 §5.3.1) refused a member's credential. */
  CredentialRejected: "CredentialRejected",
  /**
   * An X.509 certificate chain given to us is unusable (RFC 5280; `details.rule`): empty, out of
   * order, undecodable, no Wire client id in the SAN, not yet valid or expired at the session clock.
   */
  InvalidCertificate: "InvalidCertificate",
  /** The private key does not match the leaf certificate's key, or the key is not of the suite's signature scheme. */
  CertificateKeyMismatch: "CertificateKeyMismatch",
  /** An X.509 feature was used but `mls-keypackages/x509` was not imported (it registers itself). */
  X509SupportNotLoaded: "X509SupportNotLoaded",
  /** Internal invariant of the MLS engine broken: a bug, never caused by input. */
  InternalError: "InternalError",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error this library throws on purpose. */
export class MlsKeypackagesError extends Error {
  readonly code: ErrorCode;
  /** Structured, non-secret details (e.g. the failed rule of a key package check). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "MlsKeypackagesError";
    this.code = code;
    this.details = details;
  }

  /** True when `err` is one of ours with the given code. */
  static is(err: unknown, code?: ErrorCode): err is MlsKeypackagesError {
    return err instanceof MlsKeypackagesError && (code === undefined || err.code === code);
  }
}

/**
 * An error caused by a rule that was broken: `rule` names it (an RFC 9420 section and the
 * check, e.g. "§12.4.3.1 path_secret", or a policy name). Stable for callers to switch on.
 */
export class MlsRuleError extends MlsKeypackagesError {
  readonly rule: string;
  constructor(
    code: ErrorCode,
    rule: string,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(code, `${message} (${rule})`, { ...details, rule }, options);
    this.name = "MlsRuleError";
    this.rule = rule;
  }
}

/** Rules of RFC 9420 §10.1 (and our lifetime policy) that a key package can break. */
export type KeypackageRule =
  | "decode"
  | "trailing_bytes"
  | "version"
  | "ciphersuite"
  | "leaf_node_source"
  | "leaf_signature"
  | "keypackage_signature"
  | "init_key_equals_encryption_key"
  | "extensions_not_in_capabilities"
  | "credential_not_in_capabilities"
  | "ciphersuite_not_in_capabilities"
  | "version_not_in_capabilities"
  | "lifetime_not_yet_valid"
  | "lifetime_expired"
  | "lifetime_too_long"
  /** §2.1.2: a variable-length integer not in its shortest form (the DS and the owner must agree on the ref). */
  | "non_minimal_encoding"
  /** §5.3.1: the authentication service refused the leaf's credential (e.g. an empty Basic identity). */
  | "credential_rejected";

export class InvalidKeypackageError extends MlsKeypackagesError {
  readonly rule: KeypackageRule;
  constructor(rule: KeypackageRule, message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidKeypackage, `invalid key package (${rule}): ${message}`, { rule }, options);
    this.name = "InvalidKeypackageError";
    this.rule = rule;
  }
}

/**
 * A cryptographic primitive refused its input: bad key encoding or length, a failed AEAD tag, a
 * DH result of zero, an unsupported algorithm. Raised by the crypto providers (src/mls/crypto);
 * the engine rewraps it as the error of the object it was processing (InvalidWelcome,
 * InvalidMessage, …), so it never reaches the API itself. Never carries key material.
 */
export class CryptoError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CryptoError";
  }
}

export class MessageRejectedError extends MlsKeypackagesError {
  readonly reason: string;
  constructor(reason: string) {
    super(ErrorCode.MessageRejected, `the delivery service rejected the commit: ${reason}`, { reason });
    this.name = "MessageRejectedError";
    this.reason = reason;
  }
}
