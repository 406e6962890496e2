/**
 * Bad-input corpus: hundreds of malformed requests (schema, encodings, bit flips of real
 * packages, oversized, wrong owner), each answered 4xx with exactly our `{ error, message }`
 * body (plus `rejected` on 422), and nothing stored. The count is printed.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { sha256 } from "../../src/ds/validation.js";
import { Keypackage } from "../../src/index.js";
import { Device, SECRET, SUITE1, b64, randomUserId, startServer } from "./helpers.js";

interface BadRequest {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent as is (a string or bytes); JSON bodies are stringified by the case. */
  body?: string | Uint8Array;
  /** Raw bytes on the socket instead of fetch. */
  raw?: string;
  /** Client ids that must not be registered afterwards. */
  notRegistered?: string[];
}

const json = { "content-type": "application/json" };

async function send(url: string, r: BadRequest): Promise<{ status: number; text: string }> {
  if (r.raw !== undefined) {
    const { port } = new URL(url);
    const out = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(port), "127.0.0.1", () => s.write(r.raw as string));
      let o = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => (o += d));
      s.on("error", reject);
      s.on("close", () => resolve(o));
    });
    return {
      status: Number(/^HTTP\/1\.1 (\d+)/.exec(out)?.[1]),
      text: out.slice(out.indexOf("\r\n\r\n") + 4),
    };
  }
  const res = await fetch(url + r.path, {
    method: r.method,
    headers: r.headers ?? {},
    ...(r.body !== undefined ? { body: r.body as BodyInit } : {}),
  });
  return { status: res.status, text: await res.text() };
}

describe("bad-input corpus", () => {
  let store: SqliteDsStore;
  let url: string;
  let close: () => Promise<void>;
  let owner: Device;
  let ownerToken: string;
  let other: Device;
  let otherToken: string;
  let pristine: Uint8Array;

  beforeAll(async () => {
    store = new SqliteDsStore(":memory:");
    await store.init();
    ({ url, close } = await startServer(store, {
      ciphersuites: [SUITE1],
      limits: {
        authFailuresPerWindow: 1_000_000,
        uploadsPerWindow: 1_000_000,
        uploadPackagesPerWindow: 1_000_000,
        uploadBytesPerWindow: 1_000_000_000,
        readsPerWindow: 1_000_000,
        claimsPerWindow: 1_000_000,
        registrationsPerWindow: 1_000_000,
      },
    }));
    owner = await Device.create();
    ownerToken = (await owner.register(url)).token as string;
    other = await Device.create();
    otherToken = (await other.register(url)).token as string;
    pristine = (await owner.generate(1))[0]!.serialize();
  });
  afterAll(async () => {
    await close();
  });

  async function corpus(): Promise<BadRequest[]> {
    const out: BadRequest[] = [];
    const auth = (t: string) => ({ ...json, authorization: `Bearer ${t}` });
    const kpPath = `/v1/clients/${encodeURIComponent(owner.id)}/key-packages`;
    const upload = (
      name: string,
      body: unknown,
      headers: Record<string, string> = auth(ownerToken),
      path = kpPath,
      method = "POST",
    ) =>
      out.push({ name, method, path, headers, body: typeof body === "string" ? body : JSON.stringify(body) });
    const okKey = b64(owner.keys.get(SUITE1)!);

    // ── registration: schema ──
    const u = randomUserId();
    const goodId = `${u}:1@example.com`;
    const reg = (name: string, body: unknown, extra: Record<string, string> = {}) =>
      out.push({
        name: `register: ${name}`,
        method: "POST",
        path: "/v1/clients",
        headers: { ...json, "x-enrollment-secret": SECRET, ...extra },
        body: typeof body === "string" ? body : JSON.stringify(body),
        notRegistered: [goodId],
      });
    const base = { userId: u, clientId: goodId, signatureKeys: { "1": okKey } };
    reg("extra property", { ...base, role: "admin" });
    reg("no userId", { clientId: goodId, signatureKeys: base.signatureKeys });
    reg("no clientId", { userId: u, signatureKeys: base.signatureKeys });
    reg("no signatureKeys", { userId: u, clientId: goodId });
    reg("empty signatureKeys", { ...base, signatureKeys: {} });
    reg("signatureKeys array", { ...base, signatureKeys: [okKey] });
    reg("signature key not a string", { ...base, signatureKeys: { "1": 5 } });
    reg("signature key too long", { ...base, signatureKeys: { "1": "A".repeat(400) } });
    reg("suite 0", { ...base, signatureKeys: { "0": okKey } });
    reg("suite -1", { ...base, signatureKeys: { "-1": okKey } });
    reg("suite 1.0", { ...base, signatureKeys: { "1.0": okKey } });
    reg("suite unsupported", { ...base, signatureKeys: { "3": okKey } });
    reg("suite huge", { ...base, signatureKeys: { "123456": okKey } });
    reg("too many suites", {
      ...base,
      signatureKeys: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [String(i + 1), okKey])),
    });
    reg("key wrong length", { ...base, signatureKeys: { "1": b64(new Uint8Array(31)) } });
    reg("key url-safe base64", {
      ...base,
      signatureKeys: { "1": okKey.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "") + "-_" },
    });
    reg("key unpadded base64", { ...base, signatureKeys: { "1": okKey.replace(/=+$/, "") } });
    reg("userId uppercase", { ...base, userId: u.toUpperCase() });
    reg("userId not a uuid", { ...base, userId: "bob" });
    reg("userId number", { ...base, userId: 42 });
    reg("userId with NUL", { ...base, userId: `${u}\u0000` });
    reg("user/client mismatch", { ...base, userId: randomUserId() });
    for (const [name, id] of [
      ["NUL in domain", `${u}:1@exa\u0000mple.com`],
      ["DEL in domain", `${u}:1@exa\u007fmple.com`],
      ["tab in domain", `${u}:1@exa\tmple.com`],
      ["CR LF in domain", `${u}:1@example.com\r\nx`],
      ["space", `${u}:1@ example.com`],
      ["uppercase domain", `${u}:1@EXAMPLE.com`],
      ["unicode domain", `${u}:1@exämple.com`],
      ["emoji", `${u}:1@😀.com`],
      ["slash", `${u}:1@example.com/x`],
      ["second @", `${u}:1@a@example.com`],
      ["colon in domain", `${u}:1@example.com:443`],
      ["leading dot", `${u}:1@.example.com`],
      ["trailing dot", `${u}:1@example.com.`],
      ["hyphen label start", `${u}:1@-x.com`],
      ["label of 64", `${u}:1@${"a".repeat(64)}.com`],
      [
        "domain of 254",
        `${u}:1@${["a".repeat(63), "a".repeat(63), "a".repeat(63), "a".repeat(62)].join(".")}`,
      ],
      ["device of 17", `${u}:${"1".repeat(17)}@example.com`],
      ["device uppercase", `${u}:AB@example.com`],
      ["device not hex", `${u}:xyz@example.com`],
      ["no device", `${u}:@example.com`],
      ["no domain", `${u}:1@`],
      ["no @", `${u}:1example.com`],
      ["no colon", `${u}1@example.com`],
      ["empty", ""],
      ["512 characters", `${u}:1@${"a".repeat(470)}`],
      ["1 MB-ish", `${u}:1@${"a.".repeat(50_000)}com`],
      ["number", 7],
      ["null", null],
      ["array", [goodId]],
    ] as const) {
      reg(`clientId ${name}`, { ...base, clientId: id });
    }
    reg("not JSON", "{userId:");
    reg("JSON array", [base]);
    reg("JSON string", '"x"');
    reg("JSON null", "null");
    reg(
      "proto poisoning",
      `{"__proto__":{"admin":true},"userId":"${u}","clientId":"${goodId}","signatureKeys":{"1":"${okKey}"}}`,
    );
    reg(
      "constructor poisoning",
      `{"constructor":{"prototype":{"x":1}},"userId":"${u}","clientId":"${goodId}","signatureKeys":{"1":"${okKey}"}}`,
    );
    reg("wrong secret", base, { "x-enrollment-secret": "not-the-secret-at-all" });
    reg("empty secret", base, { "x-enrollment-secret": "" });
    out.push({
      name: "register: no secret",
      method: "POST",
      path: "/v1/clients",
      headers: json,
      body: JSON.stringify(base),
      notRegistered: [goodId],
    });
    out.push({
      name: "register: text/plain",
      method: "POST",
      path: "/v1/clients",
      headers: { "content-type": "text/plain", "x-enrollment-secret": SECRET },
      body: JSON.stringify(base),
      notRegistered: [goodId],
    });

    // ── upload: schema and encodings ──
    const good = b64(pristine);
    upload("extra property", { keyPackages: [good], force: true });
    upload("no keyPackages", {});
    upload("keyPackages string", { keyPackages: good });
    upload("keyPackages empty", { keyPackages: [] });
    upload("keyPackages of numbers", { keyPackages: [1, 2] });
    upload("keyPackages of objects", { keyPackages: [{ data: good }] });
    upload("keyPackages null item", { keyPackages: [null] });
    upload("keyPackages nested", { keyPackages: [[good]] });
    upload("1001 packages", { keyPackages: Array(1001).fill(good) });
    upload("not JSON", "{keyPackages:[");
    upload("truncated JSON", JSON.stringify({ keyPackages: [good] }).slice(0, -3));
    upload("JSON top-level array", [good]);
    upload("empty body", "");
    upload("trailing garbage after the JSON", `${JSON.stringify({ keyPackages: [good] })}x`);
    upload("deep nesting", `{"keyPackages":${"[".repeat(5000)}${"]".repeat(5000)}}`);
    upload("base64 url-safe", { keyPackages: [good.replace(/\+/g, "-").replace(/\//g, "_")] });
    upload("base64 no padding", { keyPackages: [good.replace(/=+$/, "") + (good.endsWith("=") ? "" : "A")] });
    upload("base64 with newline", { keyPackages: [`${good.slice(0, 40)}\n${good.slice(40)}`] });
    upload("base64 with spaces", { keyPackages: [` ${good} `] });
    upload("base64 with NUL", { keyPackages: [`${good}\u0000`] });
    upload("base64 of nothing", { keyPackages: [""] });
    upload("hex instead of base64", { keyPackages: [Buffer.from(pristine).toString("hex")] });
    upload("package over 16 KiB", { keyPackages: [b64(new Uint8Array(17 * 1024))] });
    upload("package of zeros", { keyPackages: [b64(new Uint8Array(200))] });
    upload("package of one byte", { keyPackages: [b64(new Uint8Array([1]))] });
    upload("package truncated by half", { keyPackages: [b64(pristine.subarray(0, pristine.length >> 1))] });
    upload("package minus last byte", { keyPackages: [b64(pristine.subarray(0, pristine.length - 1))] });
    upload("package plus a byte", { keyPackages: [b64(Uint8Array.from([...pristine, 0]))] });
    upload("package twice", { keyPackages: [good, good] });
    upload("two packages concatenated", { keyPackages: [b64(Uint8Array.from([...pristine, ...pristine]))] });
    const wrongType = (type: string) =>
      out.push({
        name: `upload as ${type}`,
        method: "POST",
        path: kpPath,
        headers: { authorization: `Bearer ${ownerToken}`, "content-type": type },
        body: JSON.stringify({ keyPackages: [good] }),
      });
    for (const t of [
      "text/plain",
      "application/xml",
      "application/octet-stream",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/jsonx",
    ])
      wrongType(t);
    out.push({
      name: "upload with no content type",
      method: "POST",
      path: kpPath,
      headers: { authorization: `Bearer ${ownerToken}` },
      body: JSON.stringify({ keyPackages: [good] }),
    });
    out.push({
      name: "upload over the body limit",
      method: "POST",
      path: kpPath,
      headers: auth(ownerToken),
      body: JSON.stringify({ keyPackages: ["A".repeat(4 * 1024 * 1024 + 10)] }),
    });
    out.push({
      name: "upload invalid UTF-8",
      method: "POST",
      path: kpPath,
      headers: auth(ownerToken),
      body: Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    });

    // ── upload: bit flips of a real package (one bit in every other byte) ──
    for (let i = 0; i < pristine.length; i += 2) {
      const flipped = Uint8Array.from(pristine);
      flipped[i] = (flipped[i] as number) ^ (1 << (i % 8));
      upload(`bit flip at byte ${i}`, { keyPackages: [b64(flipped)] });
    }
    // ── base64 text flips ──
    for (let i = 0; i < good.length; i += 23) {
      const c = good[i] === "A" ? "B" : "A";
      upload(`base64 character ${i} changed`, { keyPackages: [good.slice(0, i) + c + good.slice(i + 1)] });
    }

    // ── wrong owner and authentication ──
    upload("another client's token", { keyPackages: [good] }, auth(otherToken));
    upload(
      "another client's path",
      { keyPackages: [good] },
      auth(ownerToken),
      `/v1/clients/${encodeURIComponent(other.id)}/key-packages`,
    );
    upload("replace with another client's token", { keyPackages: [good] }, auth(otherToken), kpPath, "PUT");
    upload("delete with another client's token", { refs: [] }, auth(otherToken), kpPath, "DELETE");
    upload("no token", { keyPackages: [good] }, json);
    upload("basic auth", { keyPackages: [good] }, { ...json, authorization: "Basic dXNlcjpwYXNz" });
    upload("token of wrong shape", { keyPackages: [good] }, auth("mlskp_short"));
    upload("unknown token", { keyPackages: [good] }, auth(`mlskp_${"A".repeat(43)}`));
    upload(
      "token with NUL",
      { keyPackages: [good] },
      { ...json, authorization: `Bearer mlskp_${"A".repeat(42)}%00` },
    );
    upload(
      "the owner's package in another's name",
      { keyPackages: [good] },
      auth(otherToken),
      `/v1/clients/${encodeURIComponent(other.id)}/key-packages`,
    );
    upload(
      "an unregistered client's path",
      { keyPackages: [good] },
      auth(ownerToken),
      `/v1/clients/${encodeURIComponent(`${randomUserId()}:1@example.com`)}/key-packages`,
    );

    // ── delete, count, claim ──
    for (const [name, refs] of [
      ["odd hex", ["abc"]],
      ["uppercase hex", ["AB".repeat(32)]],
      ["63 characters", ["a".repeat(63)]],
      ["62 characters", ["ab".repeat(31)]],
      ["96 characters (SHA-384, not accepted)", ["ab".repeat(48)]],
      ["non-hex", ["zz".repeat(32)]],
      ["number", [5]],
      ["1001 refs", Array(1001).fill("ab".repeat(32))],
      ["refs string", "ab".repeat(32)],
    ] as const) {
      upload(`delete: ${name}`, { refs }, auth(ownerToken), kpPath, "DELETE");
    }
    upload("delete: extra property", { refs: [], everything: true }, auth(ownerToken), kpPath, "DELETE");
    const get = (name: string, path: string, t = ownerToken, method = "GET") =>
      out.push({ name, method, path, headers: { authorization: `Bearer ${t}` } });
    for (const q of [
      "",
      "?ciphersuite=",
      "?ciphersuite=0",
      "?ciphersuite=01",
      "?ciphersuite=-1",
      "?ciphersuite=1.0",
      "?ciphersuite=abc",
      "?ciphersuite=3",
      "?ciphersuite=1&ciphersuite=2",
      "?ciphersuite=1&x=1",
      "?ciphersuite=999999",
      "?ciphersuite=%00",
    ])
      get(`count${q || " without a suite"}`, `${kpPath}/count${q}`);
    get("count: another client's token", `${kpPath}/count?ciphersuite=1`, otherToken);
    const claimPath = (user: string, q = "?ciphersuite=1") => `/v1/users/${user}/key-packages/claim${q}`;
    for (const [name, user] of [
      ["not a uuid", "bob"],
      ["uppercase uuid", owner.userId.toUpperCase()],
      ["uuid with NUL", `${owner.userId}%00`],
      ["client id instead", encodeURIComponent(owner.id)],
      ["400 characters", "a".repeat(400)],
      ["bad percent-encoding", "%E0%A4%A"],
    ] as const) {
      get(`claim: ${name}`, claimPath(user), otherToken, "POST");
    }
    get("claim: unknown user", claimPath(randomUserId()), otherToken, "POST");
    get("claim: unsupported suite", claimPath(owner.userId, "?ciphersuite=2"), otherToken, "POST");
    get("claim: extra query", claimPath(owner.userId, "?ciphersuite=1&all=1"), otherToken, "POST");
    get("claim: GET", claimPath(owner.userId), otherToken, "GET");
    out.push({
      name: "claim: with a body",
      method: "POST",
      path: claimPath(owner.userId),
      headers: auth(otherToken),
      body: "{}",
    });
    out.push({ name: "claim: no token", method: "POST", path: claimPath(owner.userId) });

    // ── routes, methods, URLs, HTTP ──
    for (const [m, p] of [
      ["GET", "/"],
      ["GET", "/v1"],
      ["GET", "/v1/clients"],
      ["PATCH", kpPath],
      ["GET", `${kpPath}?limit=0`],
      ["POST", "/v1/clients/x/key-packages/count"],
      ["GET", "/../etc/passwd"],
      ["GET", "/healthz?verbose=1"],
      ["GET", "/metrics?x=1"],
      ["OPTIONS", "/v1/clients"],
      ["GET", `/v1/clients/${"a".repeat(400)}/key-packages/count?ciphersuite=1`],
      ["GET", "/v1/clients/%ZZ/key-packages/count?ciphersuite=1"],
    ] as const) {
      out.push({
        name: `${m} ${p.slice(0, 60)}`,
        method: m,
        path: p,
        headers: { authorization: `Bearer ${ownerToken}` },
      });
    }
    // ── issue #13 routes: list, count at a time, events, key rotation ──
    const getReq = (name: string, p: string, headers: Record<string, string> = auth(ownerToken)) =>
      out.push({ name, method: "GET", path: p, headers });
    for (const q of [
      "limit=0",
      "limit=1001",
      "limit=01",
      "limit=x",
      "limit=1&limit=2",
      "cursor=zz",
      `cursor=${"A".repeat(64)}`,
      `cursor=${"a".repeat(65)}`,
      "ciphersuite=3",
      "ciphersuite=-1",
      "page=2",
    ])
      getReq(`list: ${q}`, `${kpPath}?${q}`);
    getReq("list: foreign token", kpPath, auth(otherToken));
    getReq("list: no token", kpPath, {});
    for (const q of [
      "validAt=-1",
      "validAt=1.5",
      "validAt=x",
      "validAt=1e9",
      "validAt=",
      "validAt=9999999999999999",
    ])
      getReq(`count: ${q}`, `${kpPath}/count?ciphersuite=1&${q}`);
    const evPath = `/v1/clients/${encodeURIComponent(owner.id)}/events`;
    for (const q of [
      "lowWater=-1",
      "lowWater=x",
      "lowWater=123456",
      "ciphersuite=0",
      "ciphersuite=3",
      "since=1",
    ])
      getReq(`events: ${q}`, `${evPath}?${q}`);
    getReq("events: foreign token", evPath, auth(otherToken));
    getReq("events: no token", evPath, {});
    const rotPath = `/v1/clients/${encodeURIComponent(owner.id)}/signature-keys/rotate`;
    const rot = {
      ciphersuite: 1,
      signatureKey: b64(new Uint8Array(32).fill(7)),
      proof: b64(new Uint8Array(64)),
      keyPackages: [] as unknown[],
    };
    const rotate = (name: string, body: unknown, headers: Record<string, string> = auth(ownerToken)) =>
      upload(`rotate: ${name}`, body, headers, rotPath, "POST");
    rotate("extra property", { ...rot, force: true });
    rotate("no proof", { ...rot, proof: undefined });
    rotate("no signatureKey", { ...rot, signatureKey: undefined });
    rotate("no keyPackages", { ...rot, keyPackages: undefined });
    rotate("suite as string", { ...rot, ciphersuite: "1" });
    rotate("suite 0", { ...rot, ciphersuite: 0 });
    rotate("suite 1.5", { ...rot, ciphersuite: 1.5 });
    rotate("suite unsupported", { ...rot, ciphersuite: 3 });
    rotate("suite huge", { ...rot, ciphersuite: 65_536 });
    rotate("key wrong length", { ...rot, signatureKey: b64(new Uint8Array(31)) });
    rotate("key not base64", { ...rot, signatureKey: "*".repeat(44) });
    rotate("key unpadded", { ...rot, signatureKey: rot.signatureKey.replace(/=+$/, "") });
    rotate("key too long", { ...rot, signatureKey: "A".repeat(400) });
    rotate("key number", { ...rot, signatureKey: 7 });
    rotate("proof not base64", { ...rot, proof: "%%%%" });
    rotate("proof empty", { ...rot, proof: "" });
    rotate("proof too long", { ...rot, proof: "A".repeat(600) });
    rotate("old key not registered", { ...rot, oldSignatureKey: b64(new Uint8Array(32)) });
    rotate("old key not base64", { ...rot, oldSignatureKey: "-_-_" });
    rotate("packages not an array", { ...rot, keyPackages: "AAAA" });
    rotate("packages not strings", { ...rot, keyPackages: [1, 2] });
    rotate("1001 packages", { ...rot, keyPackages: Array(1001).fill("AAAA") });
    rotate("same key", { ...rot, signatureKey: okKey });
    rotate("not JSON", "{");
    rotate("array body", [rot]);
    rotate("foreign token", rot, auth(otherToken));
    rotate("no token", rot, json);
    rotate("text/plain", JSON.stringify(rot), {
      "content-type": "text/plain",
      authorization: `Bearer ${ownerToken}`,
    });

    out.push({ name: "raw: not HTTP", method: "", path: "", raw: "HELLO\r\n\r\n" });
    out.push({
      name: "raw: huge header",
      method: "",
      path: "",
      raw: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ${"a".repeat(20_000)}\r\n\r\n`,
    });
    out.push({
      name: "raw: bad content-length",
      method: "",
      path: "",
      raw: `POST ${kpPath} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`,
    });
    out.push({
      name: "raw: NUL in the request line",
      method: "",
      path: "",
      raw: "GET /health\u0000z HTTP/1.1\r\nHost: x\r\n\r\n",
    });
    return out;
  }

  it("answers every malformed request 4xx with our error body, and stores nothing", async () => {
    const requests = await corpus();
    expect(requests.length).toBeGreaterThanOrEqual(300);
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    for (const r of requests) {
      const { status, text } = await send(url, r);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      let body: Record<string, unknown> | undefined;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = undefined;
      }
      const keys = body === undefined ? [] : Object.keys(body).sort();
      const ok =
        status >= 400 &&
        status < 500 &&
        body !== undefined &&
        typeof body.error === "string" &&
        typeof body.message === "string" &&
        JSON.stringify(keys) ===
          JSON.stringify(status === 422 ? ["error", "message", "rejected"] : ["error", "message"]);
      if (!ok) failures.push(`${r.name}: ${status} ${text.slice(0, 200)}`);
      for (const id of r.notRegistered ?? [])
        if ((await store.getClient(id)) !== undefined) failures.push(`${r.name}: registered ${id}`);
    }
    expect(failures).toEqual([]);
    // Nothing stored: no package, no init key recorded, no client beyond the two of the setup.
    expect(await store.poolSizes(0)).toEqual([]);
    expect(await store.seenInitKeys([sha256(Keypackage.deserialize(pristine).initKey())])).toEqual([]);
    // The server still serves, and the pristine package still uploads.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const up = await fetch(`${url}/v1/clients/${encodeURIComponent(owner.id)}/key-packages`, {
      method: "POST",
      headers: { ...json, authorization: `Bearer ${ownerToken}` },
      body: JSON.stringify({ keyPackages: [b64(pristine)] }),
    });
    expect(up.status).toBe(201);
    const summary = [...statuses.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s}×${n}`)
      .join(" ");
    console.log(
      `bad-input corpus: ${requests.length} malformed requests, all 4xx with { error, message }, nothing stored (${summary})`,
    );
  });
});
