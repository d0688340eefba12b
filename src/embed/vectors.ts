/**
 * Descriptors are stored stacked: an image's views one after another, each `q.length` floats, all
 * unit length, so an inner product is a cosine. Every stage that scores a query against an
 * image's views (retrieval, the inset frame, accepted reviews) goes through these two.
 */

/** The inner product of `q` with view `view` of the views stacked in `vectors`. */
export function viewDot(vectors: Float32Array, view: number, q: Float32Array): number {
  const d = q.length;
  const base = view * d;
  let dot = 0;
  for (let i = 0; i < d; i++) dot += vectors[base + i]! * q[i]!;
  return dot;
}

/** The view of `vectors` with the largest inner product with `q`, and that product (-Infinity for none). */
export function bestViewOf(vectors: Float32Array, q: Float32Array): { view: number; score: number } {
  let best = { view: 0, score: -Infinity };
  const views = Math.floor(vectors.length / q.length);
  for (let k = 0; k < views; k++) {
    const score = viewDot(vectors, k, q);
    if (score > best.score) best = { view: k, score };
  }
  return best;
}
