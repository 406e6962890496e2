import { ErrorCode, MlsKeypackagesError } from "../errors.js";

/** Default key package lifetime: 12 weeks (84 days), in milliseconds, as in CoreCrypto. */
export const KEYPACKAGE_DEFAULT_LIFETIME = 60 * 60 * 24 * 28 * 3 * 1000;

/** Clock-skew margin: `not_before` is set this far in the past (as OpenMLS and CoreCrypto do). */
export const KEYPACKAGE_NOT_BEFORE_MARGIN = 60 * 60 * 1000;

/** The longest span `not_after − not_before` a valid key package may have. */
export const KEYPACKAGE_MAX_SPAN = KEYPACKAGE_DEFAULT_LIFETIME + KEYPACKAGE_NOT_BEFORE_MARGIN;

/** A key package's validity window. */
export interface Lifetime {
  notBefore: Date;
  notAfter: Date;
}

/** Validate a requested lifetime (ms): finite, > 0, ≤ the default. */
export function checkLifetime(lifetime: number): number {
  if (typeof lifetime !== "number" || !Number.isFinite(lifetime) || lifetime <= 0) {
    throw new MlsKeypackagesError(
      ErrorCode.InvalidLifetime,
      `lifetime must be a positive number of milliseconds, got ${String(lifetime)}`,
      {
        lifetime,
      },
    );
  }
  if (lifetime > KEYPACKAGE_DEFAULT_LIFETIME) {
    throw new MlsKeypackagesError(
      ErrorCode.InvalidLifetime,
      `lifetime ${lifetime} ms exceeds the maximum of ${KEYPACKAGE_DEFAULT_LIFETIME} ms (84 days)`,
      { lifetime, max: KEYPACKAGE_DEFAULT_LIFETIME },
    );
  }
  return lifetime;
}

/** The lifetime extension values (seconds) for a package made at `now`. */
export function lifetimeSeconds(now: Date, lifetime: number): { notBefore: number; notAfter: number } {
  const ms = now.getTime();
  return {
    notBefore: Math.floor((ms - KEYPACKAGE_NOT_BEFORE_MARGIN) / 1000),
    notAfter: Math.floor((ms + lifetime) / 1000),
  };
}

/** `notBefore ≤ now < notAfter` and a span within the maximum. Seconds in, milliseconds for `now`. */
export function isLifetimeValid(notBefore: number, notAfter: number, now: Date): boolean {
  const t = now.getTime();
  return notBefore * 1000 <= t && t < notAfter * 1000 && (notAfter - notBefore) * 1000 <= KEYPACKAGE_MAX_SPAN;
}
