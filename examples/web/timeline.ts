/**
 * The key package timeline: one row per package, a bar from `not_before` to `not_after`
 * (RFC 9420 §7.2 lifetime) on an axis centred on "now". The axis is a signed square-root scale
 * (a day back, 90 days ahead) so that packages of 20 seconds and of 84 days are both visible.
 * Plain DOM: bars are positioned in percent; the state is written out, not only coloured.
 */
import { DAY_MS, type KeypackageView } from "./device.js";

const PAST_MS = DAY_MS;
const FUTURE_MS = 90 * DAY_MS;
/** Where "now" sits on the track, percent. */
const NOW_AT = 20;

/** Position of `t` on the track, percent (clamped to the axis). */
export function positionOf(t: number, now: number): number {
  const dt = t - now;
  if (dt >= 0) return NOW_AT + (100 - NOW_AT) * Math.sqrt(Math.min(dt, FUTURE_MS) / FUTURE_MS);
  return NOW_AT - NOW_AT * Math.sqrt(Math.min(-dt, PAST_MS) / PAST_MS);
}

const TICKS: ReadonlyArray<readonly [string, number]> = [
  ["−1 d", -PAST_MS],
  ["now", 0],
  ["7 d", 7 * DAY_MS],
  ["28 d", 28 * DAY_MS],
  ["84 d", 84 * DAY_MS],
];

/** "3 d", "5 h", "12 min", "40 s". */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s >= 2 * 86_400) return `${Math.floor(s / 86_400)} d`;
  if (s >= 2 * 3_600) return `${Math.floor(s / 3_600)} h`;
  if (s >= 120) return `${Math.floor(s / 60)} min`;
  return `${s} s`;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function renderAxis(axis: HTMLElement, now: number): void {
  axis.replaceChildren(
    ...TICKS.map(([label, dt]) => {
      const tick = el("span", dt === 0 ? "tick tick-now" : "tick", label);
      tick.style.left = `${positionOf(now + dt, now).toFixed(2)}%`;
      return tick;
    }),
  );
}

function describe(kp: KeypackageView, now: number): string {
  if (kp.state === "expired") return `expired ${formatSpan(now - kp.notAfter)} ago`;
  return `${kp.state} · ${formatSpan(kp.notAfter - now)} left`;
}

export function renderTimeline(
  list: HTMLOListElement,
  packages: readonly KeypackageView[],
  now: number,
): void {
  list.replaceChildren(
    ...packages.map((kp) => {
      const li = el("li", `kp kp-${kp.state}`);
      li.dataset.ref = kp.ref;
      li.dataset.state = kp.state;
      const ref = el("code", "kp-ref", `${kp.ref.slice(0, 8)}…`);
      ref.title = kp.ref;
      const track = el("div", "kp-track");
      track.setAttribute("aria-hidden", "true");
      const from = positionOf(kp.notBefore, now);
      const to = positionOf(kp.notAfter, now);
      const bar = el("span", "kp-bar");
      bar.style.left = `${from.toFixed(2)}%`;
      bar.style.width = `max(3px, ${(to - from).toFixed(2)}%)`;
      const nowLine = el("span", "kp-now");
      nowLine.style.left = `${NOW_AT}%`;
      track.append(bar, nowLine);
      const status = el("span", "kp-status", describe(kp, now));
      const info = el("span", "kp-info");
      info.append(status);
      if (kp.lastResort) info.append(el("span", "kp-tag", "last resort"));
      if (kp.previousCredential) {
        const tag = el("span", "kp-tag kp-tag-old", "old key");
        tag.title = "generated under the previous credential; kept locally for Welcomes still on their way";
        info.append(tag);
      }
      li.append(ref, track, info);
      li.title = `${kp.ref}\nvalid from ${new Date(kp.notBefore).toLocaleString()} to ${new Date(kp.notAfter).toLocaleString()}`;
      return li;
    }),
  );
}
