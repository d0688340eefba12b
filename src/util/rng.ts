/**
 * mulberry32: a tiny, fast 32-bit seeded PRNG. Used wherever neardup needs randomness that must
 * replay exactly (fixture generation, transform suites, evaluation splits); Math.random cannot.
 *
 * @param seed - any number; it is truncated to an unsigned 32-bit integer.
 * @returns a function yielding floats in [0, 1), the same sequence for the same seed.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A float uniformly drawn from [lo, hi). */
export function uniform(rng: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** An integer uniformly drawn from lo..hi, both ends included. */
export function randomInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** One element of a non-empty list, drawn uniformly. */
export function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

/** A shuffled copy (Fisher–Yates), so the caller's list is left as it was. */
export function shuffled<T>(rng: () => number, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
