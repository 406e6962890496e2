/**
 * `mlskp pki dev-ca`: write a development PKI (root, intermediate, device certificates with Wire's
 * SAN URIs, optional test cases and a CRL) as PEM files. NOT FOR PRODUCTION: the CA keys are
 * written unencrypted to disk and nothing protects or audits their use.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { ClientId } from "../credential/clientId.js";
import { SUPPORTED_CIPHERSUITES, type Ciphersuite } from "../mls/ciphersuite.js";
import { createDevCa, devKeyAlgorithmFor, type DevCertificate, type DevKeyAlgorithm } from "../pki/devCa.js";

export const DEV_CA_WARNING =
  "WARNING: development PKI only, NOT FOR PRODUCTION. The CA private keys are written unencrypted; " +
  "anyone who reads them can issue identities your clients will trust.";

const DAY = 86_400_000;

interface DevCaCliOptions {
  out: string;
  clientId?: string;
  handle?: string;
  displayName?: string;
  suite: Ciphersuite;
  caKey: DevKeyAlgorithm;
  validityDays: number;
  testCases?: boolean;
  force?: boolean;
}

function suiteArg(value: string): Ciphersuite {
  const s = Number(value);
  let ok = SUPPORTED_CIPHERSUITES.includes(s as Ciphersuite);
  if (ok) {
    try {
      devKeyAlgorithmFor(s as Ciphersuite);
    } catch {
      ok = false;
    }
  }
  if (!ok)
    throw new InvalidArgumentError("expected a cipher suite with an Ed25519 or ECDSA key: 1, 2, 3, 5 or 7");
  return s as Ciphersuite;
}

function clientIdArg(value: string): string {
  try {
    return ClientId.parse(value).toString();
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

async function devCa(o: DevCaCliOptions): Promise<void> {
  if ((o.clientId === undefined) !== (o.handle === undefined)) {
    throw new Error("--client-id and --handle go together");
  }
  if (o.testCases === true && o.clientId === undefined) {
    throw new Error("--test-cases needs --client-id and --handle");
  }
  process.stderr.write(`${DEV_CA_WARNING}\n`);
  mkdirSync(o.out, { recursive: true });
  const files: [string, string, boolean][] = [];
  const cert = (name: string, c: DevCertificate): void => {
    files.push([`${name}.pem`, c.pem, false]);
    if (c.privateKeyPem !== undefined) files.push([`${name}.key.pem`, c.privateKeyPem, true]);
  };
  const now = Date.now();
  const ca = await createDevCa({ now, algorithm: o.caKey });
  cert("root-ca", ca.root);
  cert("intermediate-ca", ca.intermediate);
  if (o.clientId !== undefined && o.handle !== undefined) {
    const algorithm = devKeyAlgorithmFor(o.suite);
    const base = {
      clientId: o.clientId,
      handle: o.handle,
      algorithm,
      ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
    };
    const device = await ca.issueDevice({ ...base, notAfter: new Date(now + o.validityDays * DAY) });
    cert("device", device);
    files.push(["device.chain.pem", device.chainPem, false]);
    if (o.testCases === true) {
      const expired = await ca.issueDevice({
        ...base,
        notBefore: new Date(now - 30 * DAY),
        notAfter: new Date(now - DAY),
      });
      cert("expired", expired);
      files.push(["expired.chain.pem", expired.chainPem, false]);
      const notYet = await ca.issueDevice({
        ...base,
        notBefore: new Date(now + 30 * DAY),
        notAfter: new Date(now + 60 * DAY),
      });
      cert("not-yet-valid", notYet);
      files.push(["not-yet-valid.chain.pem", notYet.chainPem, false]);
      const revoked = await ca.issueDevice(base);
      ca.revoke(revoked);
      cert("revoked", revoked);
      files.push(["revoked.chain.pem", revoked.chainPem, false]);
      const wrongUsage = await ca.issueDevice({ ...base, keyUsage: ["keyEncipherment"] });
      cert("wrong-key-usage", wrongUsage);
      files.push(["wrong-key-usage.chain.pem", wrongUsage.chainPem, false]);
      const other = await createDevCa({ now, algorithm: o.caKey, organization: "mlskp unknown" });
      const unknown = await other.issueDevice(base);
      cert("unknown-root", unknown);
      files.push(["unknown-root.chain.pem", unknown.chainPem, false]);
      files.push(["unknown-root-ca.pem", other.root.pem, false]);
    }
  }
  files.push(["intermediate-ca.crl.pem", (await ca.crl()).pem, false]);
  files.push([
    "README.txt",
    `${DEV_CA_WARNING}\n\nCreated by \`mlskp pki dev-ca\` on ${new Date(now).toISOString()}.\n` +
      "Trust anchor: root-ca.pem (e.g. `mlskp serve --trust-anchor root-ca.pem`).\n" +
      "Device chains (*.chain.pem) list the leaf, then the intermediate. Keys are PKCS#8 PEM.\n" +
      "intermediate-ca.crl.pem is signed by the intermediate and lists revoked.pem (with --test-cases).\n",
    false,
  ]);
  if (o.force !== true) {
    const existing = files.map(([name]) => name).filter((name) => existsSync(join(o.out, name)));
    if (existing.length > 0) {
      throw new Error(`refusing to overwrite ${existing.join(", ")} in ${o.out} (use --force)`);
    }
  }
  for (const [name, text, secret] of files) {
    writeFileSync(join(o.out, name), text.endsWith("\n") ? text : `${text}\n`, {
      mode: secret ? 0o600 : 0o644,
    });
  }
  process.stdout.write(`wrote ${files.length} files to ${o.out}: ${files.map(([n]) => n).join(" ")}\n`);
}

/** `mlskp pki …` commands. */
export function pkiCommand(): Command {
  const pki = new Command("pki").description("X.509 tooling for Wire end-to-end identity");
  pki
    .command("dev-ca")
    .description(
      "write a DEVELOPMENT PKI (root, intermediate, device certificates with Wire SAN URIs) as PEM files — NOT FOR PRODUCTION",
    )
    .requiredOption("--out <dir>", "directory to write the PEM files to")
    .addOption(
      new Option(
        "--client-id <id>",
        "Wire client id <user-uuid>:<device-hex>@<domain> of a device certificate",
      ).argParser(clientIdArg),
    )
    .option("--handle <handle>", "Wire handle (without @) of the device certificate")
    .option("--display-name <name>", "display name (subject CN); default the handle")
    .addOption(
      new Option(
        "--suite <n>",
        "cipher suite of the device key (1, 3: Ed25519; 2: P-256; 7: P-384; 5: P-521)",
      )
        .argParser(suiteArg)
        .default(1),
    )
    .addOption(
      new Option("--ca-key <algorithm>", "key algorithm of the CAs")
        .choices(["Ed25519", "P-256", "P-384", "P-521"])
        .default("P-256"),
    )
    .addOption(
      new Option("--validity-days <n>", "validity of the device certificate in days")
        .argParser(positiveInt)
        .default(90),
    )
    .option(
      "--test-cases",
      "also write expired, not-yet-valid, revoked (listed in the CRL), wrong-key-usage and unknown-root certificates",
    )
    .option("--force", "overwrite existing files")
    .action(async (options: DevCaCliOptions) => {
      await devCa(options);
    });
  return pki;
}
