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
 * Whether pair (upstream, downstream) is in the control sample. A hash of the ids, not a random
 * draw, so a resumed or repeated run samples the same pairs and never counts one twice.
 */
export function isControlSample(upstreamId: number, downstreamId: number, rate = CONTROL_RATE): boolean {
  if (rate <= 0) return false;
  let h = Math.imul(upstreamId ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(downstreamId + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32 < rate;
}

/**
 * The mirrored counterparts of the views a pair is verified in (view k ^ 4 is view k with a
 * horizontal flip first: see embed/views.ts), minus any view verification itself tries: a pair
 * tried both as it is and mirrored has no control.
 */
export function controlViews(tried: readonly number[]): number[] {
  return tried.map((v) => v ^ 4).filter((v) => !tried.includes(v));
}
