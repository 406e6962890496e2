/** RFC 9420 §12.4.3 GroupInfo, GroupSecrets, Welcome, and the §6 MLSMessage envelope. */
import type { Extension, KeyPackage } from "../keypackage/types.js";
import type { GroupContext, PreSharedKeyId } from "../keyschedule/types.js";
import type { PrivateMessage, PublicMessage } from "../framing/types.js";
import type { HpkeCiphertext } from "../treekem/types.js";

/** §12.4.3 GroupInfo. */
export interface GroupInfo {
  readonly groupContext: GroupContext;
  readonly extensions: readonly Extension[];
  readonly confirmationTag: Uint8Array;
  readonly signer: number;
  readonly signature: Uint8Array;
}

/** §12.4.3.1 GroupSecrets. */
export interface GroupSecrets {
  readonly joinerSecret: Uint8Array;
  readonly pathSecret: Uint8Array | undefined;
  readonly psks: readonly PreSharedKeyId[];
}

/** §12.4.3.1 EncryptedGroupSecrets. `newMember` is a §5.2 KeyPackageRef. */
export interface EncryptedGroupSecrets {
  readonly newMember: Uint8Array;
  readonly encryptedGroupSecrets: HpkeCiphertext;
}

/** §12.4.3.1 Welcome. */
export interface Welcome {
  readonly ciphersuite: number;
  readonly secrets: readonly EncryptedGroupSecrets[];
  readonly encryptedGroupInfo: Uint8Array;
}

/** §6 MLSMessage (version mls10). */
export type MlsMessage =
  | { readonly wireFormat: 1; readonly publicMessage: PublicMessage }
  | { readonly wireFormat: 2; readonly privateMessage: PrivateMessage }
  | { readonly wireFormat: 3; readonly welcome: Welcome }
  | { readonly wireFormat: 4; readonly groupInfo: GroupInfo }
  | { readonly wireFormat: 5; readonly keyPackage: KeyPackage };
