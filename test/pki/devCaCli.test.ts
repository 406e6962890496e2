import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { afterAll, describe, expect, it } from "vitest";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.js";
import { parseWireClientIdUri } from "../../src/pki/wireUri.js";
import { ROOT } from "../ds/helpers.js";

const CLIENT = "0d8d0b6c-3a2b-4c1d-9e8f-7a6b5c4d3e2f:9ff0457928ebe5f4@wire.example";
const dirs: string[] = [];

function mlskp(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(ROOT, "bin/mlskp.js"), ...args], {
    env: { ...process.env, MLSKP_USE_SOURCE: "1" },
    encoding: "utf8",
    timeout: 60_000,
  });
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "mlskp-devca-"));
  dirs.push(d);
  return d;
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("mlskp pki dev-ca", () => {
  it("writes a development PKI with device and test-case certificates, loudly not for production", async () => {
    const out = tempDir();
    const r = mlskp([
      "pki",
      "dev-ca",
      "--out",
      out,
      "--client-id",
      CLIENT,
      "--handle",
      "alice",
      "--display-name",
      "Alice Smith",
      "--suite",
      "7",
      "--test-cases",
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/NOT FOR PRODUCTION/);
    expect(readFileSync(join(out, "README.txt"), "utf8")).toMatch(/NOT FOR PRODUCTION/);
    const read = (name: string): string => readFileSync(join(out, name), "utf8");
    const root = new x509.X509Certificate(read("root-ca.pem"));
    const inter = new x509.X509Certificate(read("intermediate-ca.pem"));
    const device = new x509.X509Certificate(read("device.pem"));
    expect(await device.verify({ publicKey: inter, signatureOnly: true })).toBe(true);
    expect(await inter.verify({ publicKey: root, signatureOnly: true })).toBe(true);
    expect(device.subject).toBe("O=wire.example, CN=Alice Smith");
    expect((device.publicKey.algorithm as EcKeyAlgorithm).namedCurve).toBe("P-384");
    const uris = device.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => n.value);
    expect(uris).toContain("wireapp://%40alice@wire.example");
    expect(uris.map((u) => parseWireClientIdUri(u)).find((p) => p !== undefined)).toEqual({
      userId: "0d8d0b6c-3a2b-4c1d-9e8f-7a6b5c4d3e2f",
      deviceId: "9ff0457928ebe5f4",
      domain: "wire.example",
    });
    // The chain file is leaf first, then the intermediate; the key file holds the leaf's private key.
    const chain = x509.PemConverter.decode(read("device.chain.pem"));
    expect(chain).toHaveLength(2);
    expect(new Uint8Array(chain[0]!)).toEqual(new Uint8Array(device.rawData));
    expect(statSync(join(out, "device.key.pem")).mode & 0o077).toBe(0);
    expect(statSync(join(out, "root-ca.key.pem")).mode & 0o077).toBe(0);
    const key = await crypto.subtle.importKey(
      "pkcs8",
      x509.PemConverter.decodeFirst(read("device.key.pem")),
      { name: "ECDSA", namedCurve: "P-384" },
      false,
      ["sign"],
    );
    const data = new TextEncoder().encode("proof");
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-384" }, key, data);
    expect(
      await crypto.subtle.verify(
        { name: "ECDSA", hash: "SHA-384" },
        await device.publicKey.export(),
        sig,
        data,
      ),
    ).toBe(true);
    // Test cases: expired, not yet valid, revoked in the CRL, wrong key usage, unknown root.
    const now = Date.now();
    expect(new x509.X509Certificate(read("expired.pem")).notAfter.getTime()).toBeLessThan(now);
    expect(new x509.X509Certificate(read("not-yet-valid.pem")).notBefore.getTime()).toBeGreaterThan(now);
    const crl = new x509.X509Crl(read("intermediate-ca.crl.pem"));
    expect(read("intermediate-ca.crl.pem")).toMatch(/^-----BEGIN X509 CRL-----/);
    expect(await crl.verify({ publicKey: inter })).toBe(true);
    expect(crl.findRevoked(new x509.X509Certificate(read("revoked.pem")))).not.toBeNull();
    expect(crl.findRevoked(device)).toBeNull();
    const wrong = new x509.X509Certificate(read("wrong-key-usage.pem"));
    expect(wrong.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.digitalSignature).toBe(0);
    const unknown = new x509.X509Certificate(read("unknown-root.pem"));
    expect(await unknown.verify({ publicKey: inter, signatureOnly: true })).toBe(false);
    expect(
      await unknown.verify({
        publicKey: new x509.X509Certificate(read("unknown-root-ca.pem")),
        signatureOnly: true,
      }),
    ).toBe(false);
    const unknownChain = x509.PemConverter.decode(read("unknown-root.chain.pem"));
    expect(
      await unknown.verify({ publicKey: new x509.X509Certificate(unknownChain[1]!), signatureOnly: true }),
    ).toBe(true);
  }, 90_000);

  it("refuses to overwrite, and rejects bad arguments", async () => {
    // In process (the spawn above covers the binary): the same program, errors captured.
    const run = async (args: string[]): Promise<string> => {
      const program = buildProgram();
      let err = "";
      const quiet = (c: Command): void => {
        c.exitOverride().configureOutput({ writeErr: (t) => (err += t), writeOut: () => undefined });
        c.commands.forEach(quiet);
      };
      quiet(program);
      try {
        await program.parseAsync(["node", "mlskp", ...args]);
        return "";
      } catch (e) {
        return `${err}${(e as Error).message}`;
      }
    };
    const out = tempDir();
    expect(await run(["pki", "dev-ca", "--out", out])).toBe("");
    expect(await run(["pki", "dev-ca", "--out", out])).toMatch(
      /refusing to overwrite .*root-ca\.pem.*--force/,
    );
    expect(await run(["pki", "dev-ca", "--out", out, "--force"])).toBe("");
    expect(
      await run(["pki", "dev-ca", "--out", out, "--client-id", CLIENT, "--handle", "a", "--suite", "4"]),
    ).toMatch(/cipher suite/);
    expect(await run(["pki", "dev-ca", "--out", out, "--client-id", "alice", "--handle", "a"])).toMatch(
      /not a Wire client id/,
    );
    expect(await run(["pki", "dev-ca", "--out", out, "--client-id", CLIENT])).toMatch(
      /--client-id and --handle go together/,
    );
    expect(await run(["pki", "dev-ca", "--out", out, "--test-cases"])).toMatch(
      /--test-cases needs --client-id/,
    );
    expect(await run(["pki", "dev-ca"])).toMatch(/--out/);
  }, 120_000);
});
