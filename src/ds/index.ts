/**
 * `mls-keypackages/ds` (Node.js): the key package Delivery Service, its stores and its client.
 * The client alone (browser-safe) is also exported from the package root.
 */
export { createDeliveryService, DEFAULT_LIMITS, HttpError } from "./server.js";
export type { DeliveryServiceLimits, DeliveryServiceOptions } from "./server.js";
export { openStore, isPostgresUrl } from "./open.js";
export {
  InProcessVerifier,
  VerifierUnavailableError,
  WorkerVerifier,
  defaultVerifyWorkers,
} from "./verifyPool.js";
export type { PackageVerifier, VerifyFailure, VerifyResult, VerifySuccess } from "./verifyPool.js";
export { X509UploadPolicy } from "./x509.js";
export type { X509UploadPolicyOptions, X509Verdict } from "./x509.js";
export { parseCorsOrigins } from "./cors.js";
export { CLIENT_ID_PATTERN, MAX_CLIENT_ID_LENGTH } from "./schemas.js";
export type { OpenStoreOptions } from "./open.js";
export { SqliteDsStore } from "./sqliteStore.js";
export type { SqliteDsStoreOptions } from "./sqliteStore.js";
export { PostgresDsStore } from "./postgresStore.js";
export type { PostgresDsStoreOptions } from "./postgresStore.js";
export type {
  AddKeypackagesOptions,
  AddKeypackagesResult,
  ClaimedDsKeypackage,
  DeliveryServiceStore,
  DsClaimOptions,
  DsClaimResult,
  DsClientKey,
  DsPurgeOptions,
  DsPurgeResult,
  DsClient,
  DsEventBus,
  DsListOptions,
  DsPoolSize,
  DsStoreEvent,
  DsStoredKeypackageRow,
  NewDsClient,
  NewDsKeypackage,
  RotateSignatureKeyStoreOptions,
  RotateSignatureKeyStoreResult,
} from "./store.js";
export { LocalEventBus } from "./store.js";
export { DEFAULT_EVENT_LIMITS, EventHub } from "./events.js";
export type { EventHubLimits, SubscriptionFilter } from "./events.js";
export { DeliveryServiceClient, DeliveryServiceError } from "./client.js";
export type {
  ClaimedKeypackage,
  ClaimOptions,
  ClaimResult,
  DeliveryServiceClientOptions,
  KeypackageInput,
  RefInput,
  RegisterOptions,
  UploadResult,
  CountOptions,
  EventsOptions,
  ListKeypackagesOptions,
  ListKeypackagesResult,
  RotateSignatureKeyOptions,
  RotateSignatureKeyResult,
} from "./client.js";
export {
  ENROLLMENT_SECRET_HEADER,
  MAX_KEYPACKAGES_PER_UPLOAD,
  ROTATION_PROOF_LABEL,
  rotationProofContent,
} from "./wire.js";
export type {
  ClaimResponse,
  ClaimedKeyPackageJson,
  CountResponse,
  DeleteRequest,
  DeleteResponse,
  DsErrorBody,
  DsRejection,
  DsRule,
  RegisterClientRequest,
  RegisterClientResponse,
  UploadRequest,
  UploadResponse,
  DsPoolEvent,
  DsPoolEventType,
  DsStoredKeypackage,
  ListKeypackagesResponse,
  RotateSignatureKeyRequest,
  RotateSignatureKeyResponse,
} from "./wire.js";
