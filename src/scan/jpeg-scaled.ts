import { isJpeg, plainJpegSize, reduceWith, SMALL_MAX_PIXELS, type FixedTaps, type SmallImage } from './small.js';
import { releaseIfLarge, wasmInstance } from './wasm-module.js';

export { moduleMemoryBytes } from './wasm-module.js';

/**
 * JPEG decoding with libjpeg's DCT-domain scaling (1/2, 1/4, 1/8), as libvips' shrink-on-load
 * does, in a WebAssembly build of libjpeg-turbo's C decoder (native/jpeg-wasm, built by its
 * build.sh and committed). Decoding a 500×375 photo at 1/4 skips most of the IDCT and colour
 * work of a full decode, and running on the calling thread skips libvips' per-image pipeline
 * set-up: 1.1–1.6 ms of CPU to the 64×64 model input against 2.6–4.5 ms through sharp (measured
 * on a busy 2-core box; the module is built with WebAssembly SIMD, which Node 20 has).
 *
 * The module refuses what libvips might decode differently (see jpeg-scaled.c); small.ts's header
 * check keeps out the rest (ICC profile, Adobe marker, EXIF rotation). With libvips' crop and
 * integer resampling reproduced, the model input is libvips' own (bit-identical on the photos
 * measured; rare ±1 where libvips restarts a sum at a tile boundary).
 */

export interface ScaledJpeg { rgb: Uint8Array; width: number; height: number }

/** Decompression bombs and huge scans go to libvips, which has its own pixel limit. */
export const SCALED_MAX_PIXELS = 24_000_000;

/**
 * Decode at 1/denom scale to interleaved RGB (grey becomes three equal channels) as libvips'
 * jpegload with shrink=denom gives it: libjpeg's scaled output cropped to floor(width / denom) ×
 * floor(height / denom) (libvips drops the partial last column and row). Undefined when libjpeg
 * fails, warns (corrupt data it decodes through) or the module refuses the file.
 */
export function decodeJpegScaled(bytes: Buffer, denom: 1 | 2 | 4 | 8): ScaledJpeg | undefined {
  try {
    const size = decodeInModule(bytes, denom);
    if (!size) return undefined;
    const jpeg = wasmInstance();
    // A copy: the next decode reuses this memory.
    return { rgb: new Uint8Array(jpeg.memory.buffer, jpeg.jw_output(), size.width * size.height * 3).slice(), ...size };
  } catch {
    // libjpeg's errors, and traps: the module stays usable (the next input resets its arena).
    return undefined;
  } finally {
    releaseIfLarge();
  }
}

/** The decode, its pixels left in the module's memory. */
function decodeInModule(bytes: Buffer, denom: number): { width: number; height: number } | undefined {
  const jpeg = wasmInstance();
  const at = jpeg.jw_input(bytes.length);
  if (at === 0) return undefined;
  new Uint8Array(jpeg.memory.buffer, at, bytes.length).set(bytes);
  if (jpeg.jw_decode(denom, SCALED_MAX_PIXELS) !== 0 || jpeg.jw_warnings() > 0) return undefined;
  return { width: jpeg.jw_width(), height: jpeg.jw_height() };
}

/**
 * A plain JPEG too large for small.ts, to size×size as decode.ts asks libvips for it: the
 * shrink-on-load sharp picks, the scaled decode, then libvips' reduce (small.ts's filters, run in
 * the module). Undefined to use libvips: not plain, too many pixels, an axis that would be
 * enlarged, or any failure.
 */
export function decodeJpegShrunk(bytes: Buffer, size: number): SmallImage | undefined {
  if (!isJpeg(bytes)) return undefined;
  const frame = plainJpegSize(bytes);
  if (!frame) return undefined;
  const { width, height } = frame;
  if (width * height <= SMALL_MAX_PIXELS || width * height > SCALED_MAX_PIXELS) return undefined;
  try {
    const scaled = decodeInModule(bytes, jpegShrinkOnLoad(width, height, size));
    if (!scaled || scaled.width < size || scaled.height < size) return undefined;
    const jpeg = wasmInstance();
    const pixels = reduceWith(jpeg.jw_output(), scaled.width, scaled.height, size, reduceInModule);
    return { rgb: new Uint8Array(jpeg.memory.buffer, pixels, size * size * 3).slice(), width, height };
  } catch {
    return undefined;
  } finally {
    releaseIfLarge();
  }
}

function reduceInModule(pixels: number, width: number, height: number, f: FixedTaps, horizontal: boolean): number {
  const jpeg = wasmInstance();
  const start = jpeg.jw_alloc(f.start.byteLength);
  const weights = jpeg.jw_alloc(f.weights.byteLength);
  if (!start || !weights) throw new Error('out of WebAssembly memory');
  // Views made after the allocations: growing the memory replaces its buffer.
  new Int32Array(jpeg.memory.buffer, start, f.start.length).set(f.start);
  new Int32Array(jpeg.memory.buffer, weights, f.weights.length).set(f.weights);
  const out = jpeg.jw_pass(pixels, width, height, horizontal ? 1 : 0, f.start.length, f.taps, start, weights, f.bias, f.scale, f.shift);
  if (!out) throw new Error('out of WebAssembly memory');
  return out;
}

/**
 * sharp 0.34's choice for a resize to size×size with fit 'fill' (pipeline.cc): the largest of 8, 4
 * and 2 within the smaller axis's shrink, halved when the shrink's whole part equals it ("known
 * libjpeg rounding errors"), so that libvips' reduce always has some of the shrink left to do.
 */
export function jpegShrinkOnLoad(width: number, height: number, size: number): 1 | 2 | 4 | 8 {
  const shrink = Math.min(width / size, height / size);
  const factor = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (factor > 1 && Math.trunc(shrink) === factor) return (factor / 2) as 1 | 2 | 4;
  return factor;
}
