/**
 * The report's third picture of a verified pair: the downstream image warped onto the upstream
 * one by the alignment the verify stage found, so a reviewer can see why it is a copy.
 *
 * What it shows (a false-colour registration overlay, as MATLAB's imshowpair and microscopy
 * tools draw one): inside the region the aligned downstream image covers, the upstream luma goes
 * to the red and blue channels (magenta) and the warped downstream luma, matched to the upstream
 * one in mean and contrast over that region, to green. Where the two agree the sum is neutral
 * grey, so a true copy reads as a plain grey picture of the photo; every edge that does not line
 * up grows a magenta fringe on one side and a green one on the other, and an unrelated photo is
 * a blotchy magenta-and-green mix everywhere. Outside that region the upstream image is shown in
 * grey dimmed to 35%, so the overlap's outline is obvious.
 *
 * Why not the other usual pictures: a 50/50 blend of an aligned copy and of a misaligned one both
 * look like "a photo" (ghosting at 96 px is easy to miss, and two unrelated photos blend into a
 * plausible texture); a checkerboard of tiles asks the eye to follow edges across tile seams and
 * shows seams even for a perfect alignment whenever the copy's brightness, contrast or colours
 * were changed (the verifier ignores those: it compares band-passed, normalised luma). Here the
 * mean/contrast match removes exactly the differences the verifier ignores, and what is left,
 * structure that disagrees, is the one thing that is coloured. Magenta/green rather than red/cyan
 * keeps the two sides apart for red-green colour-blind readers.
 *
 * Geometry (the verify stage's, see verify/geometry.ts): on a square side S with pixel centres at
 * integers and c = (S − 1)/2, upstream pixel u and downstream pixel d (in view `view`) are related
 * by u = zoom·R(angle)·(d − c) + c + S·(shiftX, shiftY), angle in degrees (y down: clockwise on
 * screen). Each upstream pixel is mapped back to its downstream source and sampled bilinearly.
 *
 * Images are read the way thumbnailDataUri (scan/decode.ts) reads them: plain files by path only
 * (an archive member's path gives no overlay, as it gives no thumbnail); nothing here throws.
 */
import sharp from 'sharp';
import { imageInput, MAX_INPUT_PIXELS, type PreviewInput } from '../scan/decode.js';
import { applyView } from '../embed/views.js';
import { lumaOfRgb } from '../verify/luma.js';

/** The alignment an overlay draws (the CSV transform columns, overlap not needed). */
export interface OverlayTransform { zoom: number; angle: number; shiftX: number; shiftY: number }

/** Brightness of the upstream image outside the aligned region. */
export const OUTSIDE_DIM = 0.35;
/** Default side of the overlay (as the thumbnails). */
export const OVERLAY_SIDE = 96;

/** An overlay's pixels: interleaved RGB, and per pixel whether its source lies inside the downstream image. */
export interface OverlayPixels { rgb: Uint8Array; inside: Uint8Array; overlap: number }

/**
 * One image as side×side RGB, fill-resized (aspect squeezed to the square, as the verifier sees
 * it), EXIF orientation applied, alpha flattened on white (as the decode stage does). Undefined
 * when the file cannot be read or decoded.
 */
export async function decodeSquare(path: string | PreviewInput, side: number): Promise<Uint8Array | undefined> {
  try {
    const { data, info } = await sharpOf(path)
      .rotate()
      .flatten({ background: '#ffffff' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(side, side, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== side || info.height !== side) return undefined;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch {
    return undefined;
  }
}

/** sharp over a file path or over bytes read by the scan (archive members, CIFAR records). */
export function sharpOf(source: string | PreviewInput): sharp.Sharp {
  // BMP/ICO/TGA, which libvips cannot open, come through the decode module's own readers.
  if (typeof source === 'string') return imageInput(source) ?? sharp(source, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 });
  return sharp(source.input, source.raw ? { raw: source.raw } : { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 });
}

const validTransform = (t: OverlayTransform | null | undefined): t is OverlayTransform =>
  !!t && [t.zoom, t.angle, t.shiftX, t.shiftY].every(Number.isFinite) && t.zoom > 0;

/**
 * The downstream luma (in view `view`) warped into the upstream frame: for every upstream pixel,
 * the bilinear sample at its source and whether that source lies inside the downstream image
 * (within half a pixel of its outermost pixel centres).
 */
export function warpLuma(downLuma: Uint8Array, side: number, view: number, t: OverlayTransform): { luma: Float32Array; inside: Uint8Array } {
  const d = applyView(downLuma, side, view, 1);
  const c = (side - 1) / 2;
  const theta = (t.angle * Math.PI) / 180;
  // d = R(−angle)(u − c − S·shift)/zoom + c.
  const cs = Math.cos(theta) / t.zoom;
  const sn = Math.sin(theta) / t.zoom;
  const ox = c + side * t.shiftX;
  const oy = c + side * t.shiftY;
  const luma = new Float32Array(side * side);
  const inside = new Uint8Array(side * side);
  const last = side - 1;
  const at = (x: number, y: number) => d[Math.min(Math.max(y, 0), last) * side + Math.min(Math.max(x, 0), last)]!;
  for (let uy = 0; uy < side; uy++) {
    for (let ux = 0; ux < side; ux++) {
      const px = ux - ox;
      const py = uy - oy;
      const sx = cs * px + sn * py + c;
      const sy = -sn * px + cs * py + c;
      if (!(sx >= -0.5 && sx <= last + 0.5 && sy >= -0.5 && sy <= last + 0.5)) continue;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
      const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
      const p = uy * side + ux;
      luma[p] = top * (1 - fy) + bottom * fy;
      inside[p] = 1;
    }
  }
  return { luma, inside };
}

const clampByte = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * The overlay's pixels from both images as side×side RGB (see the module comment): inside the
 * aligned region R = B = upstream luma, G = warped downstream luma matched to it in mean and
 * standard deviation; outside, the upstream luma at OUTSIDE_DIM in grey.
 */
export function composeOverlay(up: Uint8Array, down: Uint8Array, side: number, view: number, t: OverlayTransform): OverlayPixels {
  const n = side * side;
  const lu = lumaOfRgb(up, n);
  const { luma: ld, inside } = warpLuma(lumaOfRgb(down, n), side, view, t);
  let count = 0, su = 0, sd = 0, suu = 0, sdd = 0;
  for (let p = 0; p < n; p++) {
    if (!inside[p]) continue;
    count++;
    su += lu[p]!; sd += ld[p]!; suu += lu[p]! * lu[p]!; sdd += ld[p]! * ld[p]!;
  }
  const mu = count ? su / count : 0;
  const md = count ? sd / count : 0;
  const vu = count ? Math.max(0, suu / count - mu * mu) : 0;
  const vd = count ? Math.max(0, sdd / count - md * md) : 0;
  // A flat downstream region has no contrast to match: shift its mean only; never amplify beyond 4×.
  const gain = vd > 1 ? Math.min(4, Math.max(0.25, Math.sqrt(vu / vd))) : 1;
  const rgb = new Uint8Array(n * 3);
  for (let p = 0, o = 0; p < n; p++, o += 3) {
    if (inside[p]) {
      const u = lu[p]!;
      rgb[o] = u;
      rgb[o + 1] = clampByte(mu + (ld[p]! - md) * gain);
      rgb[o + 2] = u;
    } else {
      const g = Math.round(lu[p]! * OUTSIDE_DIM);
      rgb[o] = g; rgb[o + 1] = g; rgb[o + 2] = g;
    }
  }
  return { rgb, inside, overlap: count / n };
}

/**
 * WebP (lossy, quality 90, sharp-YUV chroma so the one-pixel magenta/green fringes survive) or
 * PNG, whichever is smaller: the WebP is, at ~3.5 KB against ~14 KB for PNG and ~10.5 KB for
 * lossless WebP (96 px; a thumbnail is ~1.3 KB), which keeps a 500-pair page a few MB lighter.
 */
async function encodeDataUri(rgb: Uint8Array, side: number): Promise<string> {
  const raw = { raw: { width: side, height: side, channels: 3 as const } };
  const [png, webp] = await Promise.all([
    sharp(rgb, raw).png({ compressionLevel: 9, adaptiveFiltering: true }).toBuffer(),
    sharp(rgb, raw).webp({ quality: 90, smartSubsample: true, effort: 6 }).toBuffer(),
  ]);
  return webp.length < png.length ? `data:image/webp;base64,${webp.toString('base64')}` : `data:image/png;base64,${png.toString('base64')}`;
}

/**
 * The overlay of a verified pair as a data: URI (WebP or PNG). Undefined, never a throw,
 * when either file cannot be read or decoded or the transform is not a usable one.
 */
export async function overlayDataUri(
  upstreamPath: string, downstreamPath: string, view: number, transform: OverlayTransform, side = OVERLAY_SIDE,
): Promise<string | undefined> {
  try {
    if (!validTransform(transform) || !Number.isInteger(view) || view < 0 || view > 7 || !Number.isInteger(side) || side < 2) return undefined;
    const [up, down] = await Promise.all([decodeSquare(upstreamPath, side), decodeSquare(downstreamPath, side)]);
    if (!up || !down) return undefined;
    return await encodeDataUri(composeOverlay(up, down, side, view, transform).rgb, side);
  } catch {
    return undefined;
  }
}

/**
 * The overlay of two images already decoded as side×side RGB squares (decodeSquare), as a WebP
 * file's bytes (the review view's overlays are files: see review.ts); undefined when the
 * transform is not a usable one. Effort 4 rather than the data URI's 6: thousands are written.
 */
export async function overlayWebp(up: Uint8Array, down: Uint8Array, side: number, view: number, transform: OverlayTransform): Promise<Buffer | undefined> {
  if (!validTransform(transform) || !Number.isInteger(view) || view < 0 || view > 7) return undefined;
  const rgb = composeOverlay(up, down, side, view, transform).rgb;
  return sharp(rgb, { raw: { width: side, height: side, channels: 3 } }).webp({ quality: 90, smartSubsample: true, effort: 4 }).toBuffer();
}
