/**
 * The group settings CoreCrypto uses, which our groups share so that both interoperate.
 *
 * RFC 9420 §11.1 required_capabilities as CoreCrypto puts it in every GroupContext:
 *
 *   struct { ExtensionType extension_types<V>; ProposalType proposal_types<V>;
 *            CredentialType credential_types<V>; } RequiredCapabilities;
 *
 * with no extension, no proposal type, and credential types basic (1) and x509 (2).
 */
import { Writer } from "../codec/index.js";
import { ExtensionTypes, type Extension } from "../keypackage/types.js";

function requiredCapabilities(
  extensionTypes: readonly number[],
  proposalTypes: readonly number[],
  credentialTypes: readonly number[],
): Extension {
  const w = new Writer(16);
  const u16 = (w2: Writer, v: number): void => {
    w2.u16(v);
  };
  w.vecOf(extensionTypes, u16).vecOf(proposalTypes, u16).vecOf(credentialTypes, u16);
  return { extensionType: ExtensionTypes.required_capabilities, extensionData: w.finish() };
}

/** §11.1 CoreCrypto's required_capabilities: credential types basic and x509. */
export const REQUIRED_CAPABILITIES_CORECRYPTO: Extension = Object.freeze(
  requiredCapabilities([], [], [1, 2]),
);
