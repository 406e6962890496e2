/** RFC 9420 §8.1 GroupContext and §8.4 PreSharedKeyID. */
import type { Extension } from "../keypackage/types.js";

/** §8.1 GroupContext. */
export interface GroupContext {
  readonly version: number;
  readonly ciphersuite: number;
  readonly groupId: Uint8Array;
  readonly epoch: bigint;
  readonly treeHash: Uint8Array;
  readonly confirmedTranscriptHash: Uint8Array;
  readonly extensions: readonly Extension[];
}

/** §8.4 PSKType and ResumptionPSKUsage. */
export const PskTypes = { external: 1, resumption: 2 } as const;
export const ResumptionPskUsages = { application: 1, reinit: 2, branch: 3 } as const;

/** §8.4 PreSharedKeyID. */
export type PreSharedKeyId =
  | { readonly pskType: 1; readonly pskId: Uint8Array; readonly pskNonce: Uint8Array }
  | {
      readonly pskType: 2;
      readonly usage: number;
      readonly pskGroupId: Uint8Array;
      readonly pskEpoch: bigint;
      readonly pskNonce: Uint8Array;
    };
