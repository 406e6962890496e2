/**
 * Get-or-compute for the caches of src/mls: encodings kept per immutable object (WeakMap) and
 * label encodings kept per string (Map). `compute` runs once per key.
 */
export function memo<K, V>(
  cache: { get(key: K): V | undefined; set(key: K, value: V): unknown },
  key: K,
  compute: (key: K) => V,
): V {
  let value = cache.get(key);
  if (value === undefined) {
    value = compute(key);
    cache.set(key, value);
  }
  return value;
}
