/**
 * The eight dihedral views of a square image: the four 90° rotations and their mirror images.
 * Downstream images are embedded in all eight so that a rotated or flipped upstream copy matches
 * at the cost of the small side only. View k is the downstream image transformed by VIEWS[k].
 */
export const VIEWS = Object.freeze(['identity', 'rot90', 'rot180', 'rot270', 'mirror', 'mirror+rot90', 'mirror+rot180', 'mirror+rot270'] as const);
export type ViewName = (typeof VIEWS)[number];

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

/** One model batch: every image in `views` views (image-major, view-minor), normalised. */
export function viewBatch(rgbs: readonly Uint8Array[], views: number, input: { size: number; mean: readonly number[]; std: readonly number[] }): Float32Array {
  const { size, mean, std } = input;
  const pixels = new Float32Array(rgbs.length * views * 3 * size * size);
  let slot = 0;
  for (const rgb of rgbs) {
    for (let v = 0; v < views; v++) writeNormalised(applyView(rgb, size, v), size, mean, std, pixels, slot++);
  }
  return pixels;
}
