/**
 * The example page (`npm run web`): two devices side by side, each with its own keystore and
 * Delivery Service registration. This module wires the DOM to `Device` (device.ts); it renders
 * what `Device.view()` returns after every action and every two seconds.
 */
import { Device, stateOf, type DeviceView } from "./device.js";
import { Mailbox } from "./mailbox.js";
import { formatSpan, renderAxis, renderTimeline } from "./timeline.js";

interface Slot {
  readonly slot: string;
  readonly label: string;
  readonly person: string;
}

const SLOTS: readonly Slot[] = [
  { slot: "alice", label: "Alice’s laptop", person: "Alice" },
  { slot: "bob", label: "Bob’s phone", person: "Bob" },
];

interface Panel {
  readonly slot: Slot;
  readonly root: HTMLElement;
  device: Device;
  view: DeviceView | undefined;
  busy: boolean;
}

const $ = <T extends Element = HTMLElement>(root: ParentNode, selector: string): T => {
  const e = root.querySelector<T>(selector);
  if (e === null) throw new Error(`missing element ${selector}`);
  return e;
};

async function dsUrl(): Promise<string> {
  const fromQuery = new URLSearchParams(location.search).get("ds");
  if (fromQuery !== null) return fromQuery;
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`GET /config.json: ${res.status}`);
  return ((await res.json()) as { dsUrl: string }).dsUrl;
}

const mailbox = new Mailbox();
const panels: Panel[] = [];
const pageStatus = $<HTMLParagraphElement>(document, "#page-status");

function peerOf(panel: Panel): Panel {
  return panels.find((p) => p !== panel)!;
}

/** The device label for a client id of this page, else a shortened id. */
function nameOf(clientId: string, self: Panel): string {
  if (clientId === self.device.clientId) return "you";
  const p = panels.find((x) => x.device.clientId === clientId);
  return p?.slot.person ?? `${clientId.slice(0, 8)}…`;
}

function createPanel(slot: Slot, device: Device): Panel {
  const template = $<HTMLTemplateElement>(document, "#device-template");
  const root = (template.content.firstElementChild as HTMLElement).cloneNode(true) as HTMLElement;
  const titleId = `${slot.slot}-title`;
  root.id = slot.slot;
  root.setAttribute("aria-labelledby", titleId);
  const title = $(root, ".device-name");
  title.id = titleId;
  title.textContent = slot.label;
  return { slot, root, device, view: undefined, busy: false };
}

function render(panel: Panel): void {
  const { root, view } = panel;
  if (view === undefined) return;
  const now = Date.now();
  const peer = peerOf(panel);
  $(root, ".client-id").textContent = view.clientId;
  $(root, ".credential-id").textContent = `${view.credentialId.slice(0, 16)}…`;

  // Key packages: states recomputed against the wall clock at every render.
  const kps = view.keypackages.map((k) => ({ ...k, state: stateOf(k.notAfter, now) }));
  const count = (s: string) => kps.filter((k) => k.state === s).length;
  $(root, '[data-stat="local"]').textContent = String(kps.length);
  $(root, '[data-stat="valid"]').textContent = String(count("valid"));
  $(root, '[data-stat="expiring"]').textContent = String(count("expiring"));
  $(root, '[data-stat="expired"]').textContent = String(count("expired"));
  const ds = $(root, '[data-stat="ds"]');
  if ("error" in view.ds) {
    ds.textContent = "unreachable";
    ds.title = view.ds.error;
  } else {
    ds.textContent =
      view.ds.lastResort > 0 ? `${view.ds.count} + ${view.ds.lastResort} LR` : String(view.ds.count);
    ds.title = `${view.ds.count} valid key package(s) and ${view.ds.lastResort} last-resort one(s) on the DS`;
  }
  renderAxis($(root, ".axis"), now);
  renderTimeline($<HTMLOListElement>(root, ".kp-list"), kps, now);
  $(root, ".timeline").classList.toggle("is-empty", kps.length === 0);

  // Conversation.
  const conv = view.conversation;
  $(root, ".conversation-state").textContent =
    conv === undefined
      ? "Not in a conversation yet."
      : `Epoch ${conv.epoch} · ${conv.members.length} member${conv.members.length === 1 ? "" : "s"}`;
  $(root, ".members").replaceChildren(
    ...(conv?.members ?? []).map((m) => {
      const li = document.createElement("li");
      const who = nameOf(m, panel);
      li.textContent = who === "you" ? `${panel.slot.person} (this device)` : who;
      li.title = m;
      return li;
    }),
  );
  const pending = view.inbox.welcomes + view.inbox.messages;
  const parts = [
    view.inbox.welcomes > 0 ? `${view.inbox.welcomes} Welcome` : "",
    view.inbox.messages > 0 ? `${view.inbox.messages} message${view.inbox.messages === 1 ? "" : "s"}` : "",
  ].filter((p) => p.length > 0);
  $(root, ".inbox-count").textContent = pending === 0 ? "Inbox empty" : `Inbox: ${parts.join(", ")}`;
  const claim = $<HTMLButtonElement>(root, '[data-action="claim"]');
  claim.textContent = `Claim and add ${peer.slot.person}`;
  const peerIsMember = conv?.members.includes(peer.device.clientId) ?? false;
  const disabled = (selector: string, value: boolean) => {
    $<HTMLButtonElement>(root, selector).disabled = panel.busy || value;
  };
  disabled('[data-action="claim"]', peerIsMember || view.inbox.welcomes > 0);
  disabled('[data-action="inbox"]', pending === 0);
  disabled('[data-action="prune"]', count("expired") === 0);
  disabled('[data-form="send"] button', conv === undefined);
  disabled('[data-form="generate"] button[type="submit"]', false);
  disabled('[data-action="rotate"]', false);
  $<HTMLInputElement>(root, '[data-form="send"] input').disabled = panel.busy || conv === undefined;

  const messages = $(root, ".messages");
  const seen = messages.childElementCount;
  messages.replaceChildren(
    ...view.messages.map((m) => {
      const li = document.createElement("li");
      const who = nameOf(m.from, panel);
      li.className = who === "you" ? "message message-out" : "message message-in";
      const from = document.createElement("span");
      from.className = "message-from";
      from.textContent = who === "you" ? "You" : who;
      const text = document.createElement("span");
      text.className = "message-text";
      text.textContent = m.text;
      const at = document.createElement("time");
      at.dateTime = new Date(m.at).toISOString();
      at.textContent = new Date(m.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      li.append(from, text, at);
      return li;
    }),
  );
  // Keep the newest message in view when one arrives.
  if (messages.childElementCount !== seen) messages.scrollTop = messages.scrollHeight;

  $(root, ".credential-note").textContent =
    `Basic credential, Ed25519 signature key ${view.credentialId.slice(0, 8)}… ` +
    `(${view.credentials.length} credential${view.credentials.length === 1 ? "" : "s"} in the keystore).`;
  root.setAttribute("aria-busy", String(panel.busy));
}

async function refresh(panel: Panel): Promise<void> {
  panel.view = await panel.device.view();
  render(panel);
}

async function refreshAll(): Promise<void> {
  await Promise.all(panels.map((p) => refresh(p)));
}

function setStatus(panel: Panel, text: string, error = false): void {
  const status = $(panel.root, ".device-status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

/** Run an action of a device: its controls are disabled meanwhile; both devices re-render after. */
async function act(panel: Panel, label: string, action: () => Promise<string>): Promise<void> {
  if (panel.busy) return;
  panel.busy = true;
  render(panel);
  setStatus(panel, `${label}…`);
  try {
    setStatus(panel, `${label}: ${await action()}.`);
  } catch (e) {
    setStatus(panel, `${label} failed: ${e instanceof Error ? e.message : String(e)}`, true);
  } finally {
    panel.busy = false;
    await refreshAll().catch(() => undefined);
  }
}

function wire(panel: Panel): void {
  const { root } = panel;
  const generate = $<HTMLFormElement>(root, '[data-form="generate"]');
  generate.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(generate);
    const count = Number(data.get("count"));
    const lifetime = Number(data.get("lifetime"));
    void act(panel, `Generate ${count} (${formatSpan(lifetime)})`, () =>
      panel.device.generateAndUpload(count, lifetime),
    );
  });
  $(root, '[data-action="prune"]').addEventListener("click", () => {
    void act(panel, "Prune", () => panel.device.prune());
  });
  $(root, '[data-action="claim"]').addEventListener("click", () => {
    const peer = peerOf(panel);
    void act(panel, `Claim and add ${peer.slot.person}`, () => panel.device.claimAndAdd(peer.device.userId));
  });
  $(root, '[data-action="inbox"]').addEventListener("click", () => {
    void act(panel, "Inbox", () => panel.device.processInbox());
  });
  const send = $<HTMLFormElement>(root, '[data-form="send"]');
  send.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>(send, "input");
    const text = input.value.trim();
    if (text.length === 0) return;
    void act(panel, "Send", async () => {
      const r = await panel.device.send(text);
      input.value = "";
      return r;
    });
  });
  $(root, '[data-action="rotate"]').addEventListener("click", () => {
    void act(panel, "Rotate", () => panel.device.rotateCredential());
  });
}

async function reset(): Promise<void> {
  pageStatus.textContent = "Deleting both keystores…";
  for (const p of panels) await p.device.close().catch(() => undefined);
  for (const s of SLOTS) await Device.destroy(s.slot);
  mailbox.clear();
  location.reload();
}

async function main(): Promise<void> {
  const url = await dsUrl();
  $(document, "#ds-url").textContent = url;
  const container = $(document, "#devices");
  for (const slot of SLOTS) {
    const device = await Device.open(slot.slot, url, mailbox);
    const panel = createPanel(slot, device);
    panels.push(panel);
    container.append(panel.root);
    wire(panel);
  }
  await refreshAll();
  container.setAttribute("aria-busy", "false");
  $(document, "#reset").addEventListener("click", () => void reset());
  mailbox.onPost(() => void refreshAll().catch(() => undefined));
  // Lifetimes run out and the other device claims: re-read both every two seconds.
  setInterval(() => {
    for (const p of panels) if (!p.busy) void refresh(p).catch(() => undefined);
  }, 2000);
  pageStatus.textContent = "Ready.";
  document.body.dataset.ready = "true";
}

/** For the browser tests and the console: the two devices. */
(globalThis as { demo?: unknown }).demo = {
  devices: () => Object.fromEntries(panels.map((p) => [p.slot.slot, p.device])),
};

main().catch((e: unknown) => {
  pageStatus.textContent = `Could not start: ${e instanceof Error ? e.message : String(e)}`;
  pageStatus.classList.add("error");
  document.body.dataset.ready = "error";
});
