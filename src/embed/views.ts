import { createHash } from 'node:crypto';
import { findInsets, INSET, INSET_SEARCH } from './inset.js';

/**
 * The eight dihedral views of a square image: the four 90° rotations and their mirror images.
 * Downstream images are embedded in all eight so that a rotated or flipped upstream copy matches
 * at the cost of the small side only. View k is the downstream image transformed by VIEWS[k].
 */
export const VIEWS = Object.freeze(['identity', 'rot90', 'rot180', 'rot270', 'mirror', 'mirror+rot90', 'mirror+rot180', 'mirror+rot270'] as const);
export type ViewName = (typeof VIEWS)[number];

/**
 * Crops of the downstream image embedded besides its dihedral views, as [left, top, side] shares
 * of the (trimmed) model input: a 3×3 grid of half-side crops, the four 70% corners, the four
 * 80% corners and the 80% centre (the crop most tools make). A copy cropped to a quarter of the
 * area is a different picture to the embedding (52% of such copies were retrieved at 1,000 ×
 * 50,000); against the nearest of these crops it is a mild shift. The 80% corners serve the crop that comes with other edits (colour, JPEG, blur):
 * at 1,000 × 1,000 (seed 1) they raised combo's retrieval from 97.1% to 98.0% and combo2's from
 * 98.0% to 98.4%; the centre, combo's from 98.1% to 98.3% and combo2's from 98.4% to 98.6% (a
 * 3×3 grid of 80% crops did no better). The last, the 80% centre in grayscale, serves a crop
 * whose colours were shifted too: combo 98.3% → 98.6%, combo2 98.6% → 98.7% at 1,000 × 1,000.
 * Downstream only: the test set is the small side.
 */
export const CROPS: readonly Crop[] = Object.freeze([
  ...[0, 0.25, 0.5].flatMap((y) => [0, 0.25, 0.5].map((x) => Object.freeze([x, y, 0.5] as const))),
  ...[0, 0.3].flatMap((y) => [0, 0.3].map((x) => Object.freeze([x, y, 0.7] as const))),
  ...[0, 0.2].flatMap((y) => [0, 0.2].map((x) => Object.freeze([x, y, 0.8] as const))),
  Object.freeze([0.1, 0.1, 0.8] as const),
  Object.freeze([0.1, 0.1, 0.8, 'gray'] as const),
]);

/** A crop view: [left, top, side] as shares of the input, and 'gray' for one embedded in grayscale. */
export type Crop = readonly [left: number, top: number, side: number, colour?: 'gray'];

/**
 * A candidate retrieved through a crop view must clear the floor by this much: a crop is a
 * blurry, generic picture that many unrelated images resemble. At 200 originals × 10,000
 * distractors, crops brought 121 copies the whole image did not (110 verified) and 23,353
 * look-alike pairs to verify; at +0.05 they bring 111 (103 verified) and 9,234.
 */
export const CROP_MARGIN = 0.05;

/**
 * Rotations (degrees, clockwise) of the downstream image on an expanded canvas, black corners
 * kept and shrunk back to the input size: what `rotate(θ)` does by default in sharp, PIL
 * (`expand=True`) and most editors. Such a copy of a test image carries 25–40% new pixels in its
 * corners; against the nearest of these views it is a mild rotation.
 */
export const ROTATIONS: readonly number[] = Object.freeze([-20, -11, 11, 20]);

const FIRST_ROTATION = VIEWS.length + CROPS.length;

/**
 * The last view: the image in grayscale (Rec. 601 luma in all three channels). A grayscale copy
 * then meets its original in kind, and a hue-rotated one meets a version without the hue.
 */
export const GRAY_VIEW = FIRST_ROTATION + ROTATIONS.length;

/** Views embedded per downstream image: 8 dihedral, the crops, the rotations, then grayscale. */
export const DOWNSTREAM_VIEWS = GRAY_VIEW + 1;

/** The dihedral part of a view: crops and rotations are of the image as it is (the verifier finds them itself). */
export const dihedralOf = (view: number): number => (view < VIEWS.length ? view : 0);

/** Whether a view shows only part of the image, so that a hit through it must clear the floor by CROP_MARGIN. */
export const isCropView = (view: number): boolean => view >= VIEWS.length && view < FIRST_ROTATION;

/** A view's name in outputs: "rot90", "crop 0.5 at (0.25, 0)", "rotate 11°". */
export function viewName(view: number): string {
  const crop = CROPS[view - VIEWS.length];
  const rotation = ROTATIONS[view - FIRST_ROTATION];
  if (VIEWS[view] !== undefined) return VIEWS[view]!;
  if (crop && view < FIRST_ROTATION) return `${crop[3] === 'gray' ? 'gray ' : ''}crop ${crop[2]} at (${crop[0]}, ${crop[1]})`;
  if (view === GRAY_VIEW) return 'grayscale';
  return rotation !== undefined ? `rotate ${rotation}°` : String(view);
}

const VIEW_BY_NAME = new Map(Array.from({ length: DOWNSTREAM_VIEWS }, (_, k) => [viewName(k), k]));

/** The view a name in the outputs stands for ({@link viewName}'s inverse); -1 for none. */
export const viewIndex = (name: string): number => VIEW_BY_NAME.get(name) ?? -1;

/**
 * Uniform borders: rows and columns at an edge where ≥ 97% of pixels lie within this of the
 * edge's median colour (max over channels) are trimmed, and what remains is resized back. Added
 * frames, padding, the fill of a shifted copy and the canvas of a pasted-smaller copy all go, so
 * such a copy embeds as its content (retrieval of bordered copies 60% → 99% at 200 originals).
 * Tight enough that 10% of natural photos lose anything (a flat sky, a studio backdrop), and
 * those lose it on both sides alike.
 */
export const TRIM = Object.freeze({ tolerance: 12, share: 0.97, minSide: 0.25 });

/** The side a detail decode ({@link Detail}) is made at: twice the model input's, enough for a collage's half-side tiles. */
export const DETAIL_SCALE = 2;

/** The parameters of the model input beyond the card: part of a model id, so cached embeddings never mix. */
export const INPUT_ID = `in-${createHash('sha1').update(JSON.stringify({ TRIM, CROPS, ROTATIONS, gray: GRAY_VIEW, INSET, insetSearch: INSET_SEARCH, detail: DETAIL_SCALE })).digest('hex').slice(0, 8)}`;

/** Source pixel (x, y) for output pixel (i, j) of an n×n image under view k (rotations clockwise). */
function sourceOf(k: number, n: number, i: number, j: number): [number, number] {
  // Output column i, row j. Mirror first (horizontal flip), then rotate clockwise.
  let x: number, y: number;
  switch (k % 4) {
    case 0: x = i; y = j; break;
    case 1: x = j; y = n - 1 - i; break;
    case 2: x = n - 1 - i; y = n - 1 - j; break;
    default: x = n - 1 - j; y = i; break;
  }
  if (k >= 4) x = n - 1 - x;
  return [x, y];
}

/** Apply view k to an n×n image of interleaved `channels` (3: RGB for the model, 1: luma or a filtered plane for the verify stage). */
export function applyView<T extends Uint8Array | Float32Array>(pixels: T, n: number, k: number, channels = 3): T {
  if (k === 0) return pixels;
  const out = (pixels instanceof Float32Array ? new Float32Array(pixels.length) : new Uint8Array(pixels.length)) as T;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const [x, y] = sourceOf(k, n, i, j);
      const s = (y * n + x) * channels;
      const d = (j * n + i) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = pixels[s + c]!;
    }
  }
  return out;
}

/** The model input of view k: a dihedral view, a crop resized to n×n, or a rotation on an expanded canvas. */
export function modelView(rgb: Uint8Array, n: number, k: number): Uint8Array {
  if (k < VIEWS.length) return applyView(rgb, n, k);
  if (k === GRAY_VIEW) return grayscale(rgb);
  if (k >= FIRST_ROTATION) return rotateExpanded(rgb, n, ROTATIONS[k - FIRST_ROTATION]!);
  const crop = resizeBox(rgb, n, cropBox(k, n));
  return CROPS[k - VIEWS.length]![3] === 'gray' ? grayscale(crop) : crop;
}

/** Where crop view k lies in an n×n input. */
export function cropBox(k: number, n: number): Box {
  const [x, y, side] = CROPS[k - VIEWS.length]!;
  return { left: x * n, top: y * n, width: side * n, height: side * n };
}

/** RGB with each pixel's Rec. 601 luma in all three channels. */
export function grayscale(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let p = 0; p < rgb.length; p += 3) out.fill(Math.round(0.299 * rgb[p]! + 0.587 * rgb[p + 1]! + 0.114 * rgb[p + 2]!), p, p + 3);
  return out;
}

/** n×n RGB rotated clockwise by `degrees` on the canvas that holds all of it, black outside, resampled (bilinear) to n×n. */
export function rotateExpanded(rgb: Uint8Array, n: number, degrees: number): Uint8Array {
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a), sin = Math.sin(a);
  const grow = Math.abs(cos) + Math.abs(sin);
  const centre = n / 2;
  const out = new Uint8Array(n * n * 3);
  const at = (x: number, y: number, c: number): number => (x < 0 || y < 0 || x >= n || y >= n ? 0 : rgb[(y * n + x) * 3 + c]!);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const u = (i + 0.5 - centre) * grow, v = (j + 0.5 - centre) * grow;
      // Inverse of a clockwise rotation (y down): the source of output (u, v).
      const x = cos * u + sin * v + centre - 0.5, y = -sin * u + cos * v + centre - 0.5;
      const xi = Math.floor(x), yi = Math.floor(y);
      const fx = x - xi, fy = y - yi;
      for (let c = 0; c < 3; c++) {
        const top = at(xi, yi, c) * (1 - fx) + at(xi + 1, yi, c) * fx;
        const bottom = at(xi, yi + 1, c) * (1 - fx) + at(xi + 1, yi + 1, c) * fx;
        out[(j * n + i) * 3 + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}

/** The image with its uniform borders trimmed ({@link TRIM}), resized back to n×n; the same array when there are none. */
export function trimUniformBorder(rgb: Uint8Array, n: number): Uint8Array {
  return trimmed(rgb, n).canonical;
}

/** The trimmed image ({@link trimUniformBorder}) and the box it was cut from (undefined: no borders, the same array). */
function trimmed(rgb: Uint8Array, n: number): { canonical: Uint8Array; box: Box | undefined } {
  const box = uniformBorderBox(rgb, n);
  return { canonical: box === undefined ? rgb : resizeBox(rgb, n, box), box };
}

export interface Box { left: number; top: number; width: number; height: number }

/** What remains of an n×n image of interleaved `channels` inside its uniform borders; undefined when it has none. */
export function uniformBorderBox(pixels: Uint8Array, n: number, channels = 3): Box | undefined {
  const minSide = Math.ceil(TRIM.minSide * n);
  const rows = (y: number) => Array.from({ length: n }, (_, x) => (y * n + x) * channels);
  const cols = (x: number) => Array.from({ length: n }, (_, y) => (y * n + x) * channels);
  const uniform = (offsets: number[], ref: number[]) => isUniform(pixels, offsets, ref, channels);
  let top = 0, bottom = n - 1, left = 0, right = n - 1;
  const refTop = medianColour(pixels, rows(0), channels), refBottom = medianColour(pixels, rows(n - 1), channels);
  const refLeft = medianColour(pixels, cols(0), channels), refRight = medianColour(pixels, cols(n - 1), channels);
  while (bottom - top + 1 > minSide && uniform(rows(top), refTop)) top++;
  while (bottom - top + 1 > minSide && uniform(rows(bottom), refBottom)) bottom--;
  while (right - left + 1 > minSide && uniform(cols(left), refLeft)) left++;
  while (right - left + 1 > minSide && uniform(cols(right), refRight)) right--;
  if (top === 0 && left === 0 && bottom === n - 1 && right === n - 1) return undefined;
  return { left, top, width: right - left + 1, height: bottom - top + 1 };
}

function medianColour(pixels: Uint8Array, offsets: number[], channels: number): number[] {
  const channel = (c: number) => offsets.map((o) => pixels[o + c]!).sort((a, b) => a - b)[offsets.length >> 1]!;
  return Array.from({ length: channels }, (_, c) => channel(c));
}

function isUniform(pixels: Uint8Array, offsets: number[], ref: readonly number[], channels: number): boolean {
  let near = 0;
  for (const o of offsets) {
    let d = 0;
    for (let c = 0; c < channels; c++) d = Math.max(d, Math.abs(pixels[o + c]! - ref[c]!));
    if (d <= TRIM.tolerance) near++;
  }
  return near >= TRIM.share * offsets.length;
}

/** A box of an n×n image of interleaved `channels` resampled bilinearly (pixel centres) to n×n. */
export function resizeBox(pixels: Uint8Array, n: number, box: Box, channels = 3): Uint8Array {
  const { left: x0, top: y0, width: w, height: h } = box;
  const out = new Uint8Array(n * n * channels);
  for (let j = 0; j < n; j++) {
    const y = Math.min(n - 1, Math.max(0, y0 + ((j + 0.5) * h) / n - 0.5));
    const yi = Math.min(n - 2, Math.floor(y));
    const fy = y - yi;
    for (let i = 0; i < n; i++) {
      const x = Math.min(n - 1, Math.max(0, x0 + ((i + 0.5) * w) / n - 0.5));
      const xi = Math.min(n - 2, Math.floor(x));
      const fx = x - xi;
      const a = (yi * n + xi) * channels, b = a + channels, c = a + n * channels, d = c + channels;
      for (let ch = 0; ch < channels; ch++) {
        const top = pixels[a + ch]! * (1 - fx) + pixels[b + ch]! * fx;
        const bottom = pixels[c + ch]! * (1 - fx) + pixels[d + ch]! * fx;
        out[(j * n + i) * channels + ch] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}

/**
 * Write n×n interleaved RGB into `dst` at image slot `slot` as normalised float32 NCHW,
 * the layout every runtime takes.
 */
export function writeNormalised(rgb: Uint8Array, n: number, mean: readonly number[], std: readonly number[], dst: Float32Array, slot: number): void {
  const plane = n * n;
  const base = slot * 3 * plane;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]!);
    const shift = mean[c]! / std[c]!;
    const off = base + c * plane;
    for (let p = 0; p < plane; p++) dst[off + p] = rgb[p * 3 + c]! * scale - shift;
  }
}

/** One model batch: the images' views, then the insets of each image that has some. */
export interface ModelBatch {
  /** Normalised float32 NCHW, `count` inputs. */
  pixels: Float32Array;
  count: number;
  /**
   * Per image, where its insets are in its full (untrimmed) n×n frame: the inputs after the
   * images' views are these insets, in image order. All empty unless asked for.
   */
  insets: Box[][];
}

/**
 * The same image decoded larger than the model input (side×side, squeezed like it), for its
 * insets: a tile of a 2×2 collage is a quarter of the n×n decode, and resampled from there it
 * reaches the model at half its resolution.
 */
export interface Detail { rgb: Uint8Array; side: number }

/** What the inset search knows of an image beyond its n×n decode. */
export interface InsetSource {
  /** Width over height of the image as stored: the n×n decode squeezes it square. */
  aspect: number;
  /** Its detail decode, made only when an inset is found; undefined when the source is no larger than the model input. */
  detail: () => Promise<Detail | undefined>;
}

type Input = { size: number; mean: readonly number[]; std: readonly number[] };

/**
 * One model batch: every image in `views` views (image-major, view-minor), normalised. Each image
 * is first trimmed of uniform borders ({@link trimUniformBorder}), on both sides alike. With
 * `insets` (the upstream side), each trimmed image is also searched for pictures pasted into it
 * or tiled with it (inset.ts), and each such rectangle, resampled from the image as decoded, is
 * one more input; the pipeline's upstream side uses {@link insetModelBatch}, which also knows
 * each source's shape and detail decode (here every source is taken for square).
 */
export function modelBatch(rgbs: readonly Uint8Array[], views: number, input: Input, insets = false): ModelBatch {
  return batchPixels(searchBatch(rgbs, input.size, insets ? rgbs.map(() => 1) : undefined), views, input, []);
}

/**
 * {@link modelBatch} with insets, searched knowing each image's shape and resampled from its
 * detail decode where the source has one: only images with insets are decoded again.
 */
export async function insetModelBatch(rgbs: readonly Uint8Array[], views: number, input: Input, sources: readonly InsetSource[]): Promise<ModelBatch> {
  const searched = searchBatch(rgbs, input.size, sources.map((s) => s.aspect));
  const details = await Promise.all(searched.insets.map((boxes, i) => (boxes.length > 0 ? sources[i]!.detail() : undefined)));
  return batchPixels(searched, views, input, details);
}

interface SearchedBatch { rgbs: readonly Uint8Array[]; canonicals: Uint8Array[]; insets: Box[][] }

/** Each image trimmed, and searched for insets when its shape is given (the upstream side). */
function searchBatch(rgbs: readonly Uint8Array[], size: number, aspects: readonly number[] | undefined): SearchedBatch {
  const found: Box[][] = [];
  const canonicals = rgbs.map((rgb, i) => {
    const { canonical, box: trim } = trimmed(rgb, size);
    const aspect = aspects?.[i];
    const boxes = aspect === undefined ? [] : findInsets(canonical, size, INSET, trim ? (aspect * trim.width) / trim.height : aspect);
    found.push(trim === undefined ? boxes : boxes.map((box) => withinBox(box, trim, size)));
    return canonical;
  });
  return { rgbs, canonicals, insets: found };
}

function batchPixels({ rgbs, canonicals, insets }: SearchedBatch, views: number, input: Input, details: readonly (Detail | undefined)[]): ModelBatch {
  const { size, mean, std } = input;
  const count = rgbs.length * views + insets.reduce((sum, boxes) => sum + boxes.length, 0);
  const pixels = new Float32Array(count * 3 * size * size);
  let slot = 0;
  for (const canonical of canonicals) {
    for (let v = 0; v < views; v++) writeNormalised(modelView(canonical, size, v), size, mean, std, pixels, slot++);
  }
  rgbs.forEach((rgb, i) => {
    const detail = details[i];
    for (const box of insets[i]!) {
      const inset = detail ? resampleBox(detail.rgb, detail.side, scaleBox(box, detail.side / size), size) : resizeBox(rgb, size, box);
      writeNormalised(inset, size, mean, std, pixels, slot++);
    }
  });
  return { pixels, count, insets };
}

const scaleBox = (b: Box, s: number): Box => ({ left: b.left * s, top: b.top * s, width: b.width * s, height: b.height * s });

/**
 * A box of a side×side RGB image resampled to n×n with a triangle filter as wide as the scale
 * (bilinear when enlarging, antialiased when shrinking: a large inset of a detail decode is
 * shrunk by up to 2).
 */
export function resampleBox(rgb: Uint8Array, side: number, box: Box, n: number): Uint8Array {
  const xs = filterTaps(box.left, box.width, side, n);
  const ys = filterTaps(box.top, box.height, side, n);
  const out = new Uint8Array(n * n * 3);
  for (let j = 0; j < n; j++) {
    const ty = ys[j]!;
    for (let i = 0; i < n; i++) {
      const tx = xs[i]!;
      let r = 0, g = 0, b = 0;
      for (let a = 0; a < ty.index.length; a++) {
        const row = ty.index[a]! * side;
        for (let c = 0; c < tx.index.length; c++) {
          const w = ty.weight[a]! * tx.weight[c]!;
          const p = (row + tx.index[c]!) * 3;
          r += rgb[p]! * w; g += rgb[p + 1]! * w; b += rgb[p + 2]! * w;
        }
      }
      const d = (j * n + i) * 3;
      out[d] = Math.round(r); out[d + 1] = Math.round(g); out[d + 2] = Math.round(b);
    }
  }
  return out;
}

/** Per output pixel along one axis, the source pixels and normalised weights of the triangle filter. */
function filterTaps(start: number, length: number, side: number, n: number): { index: number[]; weight: number[] }[] {
  const scale = length / n;
  const support = Math.max(1, scale);
  return Array.from({ length: n }, (_, i) => {
    const centre = start + (i + 0.5) * scale - 0.5;
    const index: number[] = [];
    const weight: number[] = [];
    for (let x = Math.ceil(centre - support); x <= Math.floor(centre + support); x++) {
      const w = 1 - Math.abs(x - centre) / support;
      if (w <= 0) continue;
      index.push(Math.min(side - 1, Math.max(0, x)));
      weight.push(w);
    }
    const total = weight.reduce((sum, w) => sum + w, 0);
    return { index, weight: weight.map((w) => w / total) };
  });
}

/** A box found in the n×n resampling of `outer`, restated in the frame `outer` was cut from. */
function withinBox(box: Box, outer: Box, n: number): Box {
  const sx = outer.width / n, sy = outer.height / n;
  return { left: outer.left + box.left * sx, top: outer.top + box.top * sy, width: box.width * sx, height: box.height * sy };
}

/** One model batch of views only ({@link modelBatch} without insets). */
export function viewBatch(rgbs: readonly Uint8Array[], views: number, input: { size: number; mean: readonly number[]; std: readonly number[] }): Float32Array {
  return modelBatch(rgbs, views, input).pixels;
}
