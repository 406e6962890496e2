/**
 * mls-keypackages — the MLS (RFC 9420) key package lifecycle, CoreCrypto-compatible.
 * Browser-safe entry: Node-only parts live behind their own subpath exports.
 */
export {
  ErrorCode,
  MlsKeypackagesError,
  MlsRuleError,
  InvalidKeypackageError,
  MessageRejectedError,
} from "./errors.js";
export type { KeypackageRule } from "./errors.js";
export {
  Ciphersuite,
  SignatureScheme,
  signatureSchemeOf,
  SUPPORTED_CIPHERSUITES,
  CORECRYPTO_CIPHERSUITES,
} from "./mls/ciphersuite.js";
export { CredentialType } from "./credential/credentialType.js";
export { ClientId, parseWireClientId } from "./credential/clientId.js";
export type { WireClientIdParts } from "./credential/clientId.js";
export { Credential } from "./credential/credential.js";
export type { X509CredentialInput, X509CredentialRule } from "./credential/credential.js";
export { DeviceStatus, E2eiConversationState, jwkThumbprint } from "./pki/status.js";
export type { CertificateIdentity } from "./pki/identity.js";
export type { WireIdentity, X509Identity } from "./pki/status.js";
// X.509 certificate handling (pkijs, @peculiar/x509) is the `mls-keypackages/x509` subpath (src/pki/index.ts).
export type { X509Rule, X509Status, X509TrustStore, X509ValidationResult } from "./pki/validate.js";
export type { PemOrDer } from "./pki/certificate.js";
export type { PkiEntry, PkiEntryKind } from "./pki/environment.js";
export type { X509AuthenticationInput, X509Policy } from "./pki/authentication.js";
export { SessionPki } from "./pki/sessionPki.js";
export type { MemberIdentity } from "./conversation/identities.js";
export { wireClientIdUri, wireHandleUri, parseWireClientIdUri, parseWireHandleUri } from "./pki/wireUri.js";
export { CredentialRef } from "./credential/credentialRef.js";
export { Keypackage } from "./keypackage/keypackage.js";
export type { KeypackageCredential } from "./keypackage/keypackage.js";
export { KeypackageRef } from "./keypackage/keypackageRef.js";
export {
  KEYPACKAGE_DEFAULT_LIFETIME,
  KEYPACKAGE_NOT_BEFORE_MARGIN,
  KEYPACKAGE_MAX_SPAN,
} from "./keypackage/lifetime.js";
export type { Lifetime } from "./keypackage/lifetime.js";
export { LAST_RESORT_EXTENSION_TYPE } from "./mls/keypackage/build.js";
export { Database, registerPersistentKeystore } from "./keystore/database.js";
export type { KeystoreOpener, RekeyableKeystore } from "./keystore/database.js";
export { DatabaseKey } from "./keystore/databaseKey.js";
export {
  deleteWrappedDatabaseKey,
  loadOrCreateWrappedDatabaseKey,
  loadWrappedDatabaseKey,
  storeWrappedDatabaseKey,
  type WrappedKeyOptions,
} from "./keystore/wrappedKey.js";
export { MemoryKeystore } from "./keystore/memory.js";
export type * from "./keystore/contract.js";
export { TransactionContext } from "./transaction/context.js";
export type { CredentialFilters, GenerateKeypackageOptions } from "./transaction/context.js";
export { CoreCrypto } from "./session.js";
export type { CoreCryptoOptions } from "./session.js";
export type { KeypackageConsumedEvent } from "./transaction/context.js";
export { KeypackagePool, POOL_DEFAULTS } from "./pool/pool.js";
export type {
  KeypackagePoolOptions,
  PoolDeliveryService,
  PoolRunOptions,
  PoolStatus,
  PoolSyncReport,
} from "./pool/pool.js";
export { defaultAuthenticationService } from "./mls/credential/authentication.js";
export type {
  AuthenticationContext,
  AuthenticationInput,
  AuthenticationResult,
  AuthenticationService,
} from "./mls/credential/authentication.js";
export type { Credential as MlsCredential } from "./mls/credential/types.js";
export { useCryptoProvider } from "./mls/suite.js";
export { getCryptoProvider, webCryptoProvider, createWebCryptoProvider } from "./mls/crypto/index.js";
export type { WebCryptoProviderOptions } from "./mls/crypto/index.js";
export type { CryptoProvider } from "./mls/crypto/types.js";
export type { CommitBundle, MlsTransport, MlsTransportResponse } from "./conversation/transport.js";
export type {
  ConversationId,
  DecryptedMessage,
  ExternalCommitJoin,
  GroupKeypackageRule,
} from "./conversation/conversation.js";
export { CONVERSATION_STATE_FORMAT } from "./conversation/stateFormat.js";
export {
  DeliveryServiceClient,
  DeliveryServiceError,
  ROTATION_PROOF_LABEL,
  rotationProofContent,
} from "./ds/client.js";
export type {
  ClaimedKeypackage,
  ClaimResult,
  CountOptions,
  DeliveryServiceClientOptions,
  DsClaimedEvent,
  DsLastResortClaimedEvent,
  DsLowWaterEvent,
  DsPoolEvent,
  DsPoolEventType,
  DsRotatedEvent,
  DsStoredKeypackage,
  EventsOptions,
  ListKeypackagesOptions,
  ListKeypackagesResult,
  RotateSignatureKeyOptions,
  RotateSignatureKeyResult,
  DsRejection,
  DsRule,
  KeypackageInput,
  RefInput,
  RegisterOptions,
  UploadResult,
} from "./ds/client.js";
