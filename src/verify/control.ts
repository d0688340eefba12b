/**
 * The control alignment: a sample of candidate pairs is aligned a second time with the downstream
 * image mirrored. A copy cannot align through a reflection (the coarse search has no mirror), so
 * a control pair passes only the way a look-alike does; mirroring keeps what makes look-alikes
 * align by chance (layout, sky on top, one object on a plain ground). The share of control pairs
 * that reach the threshold therefore estimates how often a pair that is not a copy passes, in the
 * run's own cosine and content distribution, with no labels (src/estimate/ turns it into the
 * run's estimated precision).
 */

/** Share of verified pairs that also get a control alignment (~+0.25 alignments per pair). */
export const CONTROL_RATE = 0.25;

/**
 * Whether the pair of images with these content hashes is in the control sample. Drawn from the
 * hashes, not at random nor from catalog ids, so a resumed, repeated or sharded run samples the
 * same pairs and never counts one twice.
 */
export function isControlSample(upstreamHash: string, downstreamHash: string, rate = CONTROL_RATE): boolean {
  if (rate <= 0) return false;
  const word = (hash: string) => Number.parseInt(hash.slice(0, 8), 16) || hashString(hash);
  let h = Math.imul(word(upstreamHash) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(word(downstreamHash) + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32 < rate;
}

/** FNV-1a, for keys that are not hex digests. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The mirrored counterparts of the views a pair is verified in (view k ^ 4 is view k with a
 * horizontal flip first: see embed/views.ts), minus any view verification itself tries: a pair
 * tried both as it is and mirrored has no control.
 */
export function controlViews(tried: readonly number[]): number[] {
  return tried.map((v) => v ^ 4).filter((v) => !tried.includes(v));
}
