/**
 * The verifier's fixed parameters and the shapes its implementations share (the TypeScript
 * reference and the compiled kernel). Changing any of them changes every stored score, so they
 * are part of the verifier's id (VERIFIER_ID), which the catalog keeps beside each score.
 */
import { createHash } from 'node:crypto';

const ZOOMS = [0.42, 0.5, 0.6, 0.72, 0.86, 1.0, 1.19, 1.41, 1.68, 2.0];
const ANGLES_DEG = [-20, -10, 0, 10, 20];

export const GEOMETRY = Object.freeze({
  /** Side of the planes compared (the model's input size). */
  size: 64,
  /** Side of the coarse search (2×2 means of the fine plane). */
  coarse: 32,
  /** Band-pass: fine blur minus the local mean; divided by local RMS (+eps, in luma units). */
  fineSigma: 1,
  localSigma: 4,
  eps: 0.5,
  /** Coarse hypotheses (zoom of D inside U, rotation in radians): zoom below 1 covers borders, zoom-outs and expanded rotations. */
  hypotheses: Object.freeze(ZOOMS.flatMap((z) => ANGLES_DEG.map((a) => Object.freeze([z, (a * Math.PI) / 180] as const)))),
  /** Coarse hypotheses carried to the fine stage, best phase-correlation peaks first. */
  keep: 2,
  /**
   * The identity view is tried besides the embedding's best view only when its cosine is within
   * this of the best one (when known). At scale, 1,233 of 16,529 verified copies aligned in the
   * identity view while the embedding preferred another; 42 of them had a larger gap, while 69%
   * of non-copies' identity alignments are saved (scripts in the closing note of issue 13).
   */
  identityGate: 0.15,
  /** Gauss–Newton iterations of the affine refinement. */
  iterations: 4,
  /** The cascade: an alignment scoring below this before refinement is not refined. */
  refineFrom: 0.2,
  /**
   * The overlap, as a share of the upstream image or of the downstream image (whichever is
   * larger: a zoomed-out copy shows all of the test image in a small part of itself), below
   * which the score is scaled down in proportion.
   */
  minOverlap: 0.35,
  /**
   * The upstream image is aligned in its full frame and, when it has uniform borders, inside them;
   * when the embed stage found pictures pasted into it or tiled with it (embed/inset.ts), inside
   * the one whose descriptor scores the candidate highest, when that is at least as high as the
   * whole image's (run.ts insetFrameOf). The downstream image is aligned whole and, when it is the upstream
   * image's top candidate and the embedding retrieved it through one of its crop views
   * (embed/views.ts CROPS), as that crop enlarged: a copy cropped to a quarter sits off-centre
   * at zoom ~2, where the coarse search is weakest.
   */
  frames: 'full+inside-borders+best-inset-where-it-scores/whole+top-candidate-crop',
  /** Zooms outside this range are not copies this verifier can vouch for. */
  minZoom: 0.38,
  maxZoom: 2.6,
});

export const VERIFIER_ID = `align-v1@${createHash('sha1').update(JSON.stringify(GEOMETRY)).digest('hex').slice(0, 12)}`;

/**
 * Upstream pixel (x, y) → downstream pixel (a·x + b·y + c, d·x + e·y + f), both on the 64-grid
 * with pixel centres at integers: [a, b, c, d, e, f].
 */
export type Affine = [number, number, number, number, number, number];

/** One image's planes: the band-passed, locally normalised luma at 64×64 and 32×32. */
export interface PreparedPlane { fine: Float32Array; coarse: Float32Array }

/** The best alignment of a pair and what it scored. */
export interface Alignment {
  /** The decision score: `ncc`, scaled down for small overlap, 0 for an implausible zoom. */
  score: number;
  ncc: number;
  /** Share of the upstream image whose source lies inside the downstream image. */
  overlap: number;
  affine: Affine;
  /** Best coarse phase-correlation peak. */
  peak: number;
  refined: boolean;
}

const SIDE = GEOMETRY.size;
const CENTRE = (SIDE - 1) / 2;

/** Zoom and rotation of the copy (D as it appears in U), from the upstream→downstream map. */
export function describeAffine(m: Affine): { zoom: number; angle: number; shiftX: number; shiftY: number } {
  const det = m[0] * m[4] - m[1] * m[3];
  const zoom = 1 / Math.sqrt(Math.abs(det));
  // The map's linear part is R(−angle)/zoom (plus shear): angle from its rotational component.
  const angle = (Math.atan2(m[1] - m[3], m[0] + m[4]) * 180) / Math.PI;
  // Where D's centre lands in U, relative to U's centre, as a share of the side.
  const ia = m[4] / det;
  const ib = -m[1] / det;
  const ic = -m[3] / det;
  const id = m[0] / det;
  const cx = CENTRE - m[2];
  const cy = CENTRE - m[5];
  const ux = ia * cx + ib * cy;
  const uy = ic * cx + id * cy;
  return { zoom, angle, shiftX: (ux - CENTRE) / SIDE, shiftY: (uy - CENTRE) / SIDE };
}

/**
 * The score a candidate gets from one alignment: NCC, scaled down when the overlap is small in
 * both images, 0 when the zoom is absurd. `overlap` is the share of the upstream image covered;
 * the share of the downstream image seen is that times the map's area ratio (|det|).
 */
export function scoreOf(ncc: number, overlap: number, m: Affine): number {
  const { zoom } = describeAffine(m);
  if (!(zoom >= GEOMETRY.minZoom && zoom <= GEOMETRY.maxZoom)) return 0;
  const shared = Math.max(overlap, Math.min(1, overlap * Math.abs(m[0] * m[4] - m[1] * m[3])));
  return shared >= GEOMETRY.minOverlap ? ncc : (ncc * shared) / GEOMETRY.minOverlap;
}

