import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import { PNG } from 'pngjs';
import { releaseIfLarge, wasmInstance, type WasmExports } from './wasm-module.js';

/**
 * Small images decoded on the calling thread. libvips spends ~1.3 ms of CPU per image on pipeline
 * set-up (threads, objects) whatever its size; a 64×64 JPEG decodes in ~0.19 ms in mozjpeg built
 * to WebAssembly (@jsquash/jpeg: the same libjpeg code as sharp's, pixel-identical output) and a
 * 32×32 PNG in ~0.12 ms in pngjs. Test sets such as CIFAR and Tiny-ImageNet are all small images,
 * so this path carries them.
 *
 * Only plain cases are taken, so that the pixels are those libvips would give: 8-bit JPEG
 * (baseline or progressive, grey or YCbCr) without an ICC profile, Adobe colour transform or EXIF
 * rotation; PNG of at most 8 bits per channel without an ICC profile. Anything else, anything
 * these decoders reject, and any JPEG libjpeg warns about (corrupt data) returns undefined and
 * goes to libvips, which names the damage.
 */

/** Larger images go to libvips: its fixed cost is then small beside the decode itself. */
export const SMALL_MAX_PIXELS = 96 * 96;

export interface SmallImage { rgb: Uint8Array; width: number; height: number }

/** Decode to size×size RGB (fill, resampled as libvips does, alpha flattened on white), or undefined to use libvips. */
export function decodeSmall(bytes: Buffer, size: number): SmallImage | undefined {
  try {
    const decoded = isPng(bytes) ? plainPng(bytes) : isJpeg(bytes) ? plainJpeg(bytes) : undefined;
    if (!decoded) return undefined;
    const { rgb, width, height } = decoded;
    return { rgb: width === size && height === size ? rgb : resizeFill(rgb, width, height, size), width, height };
  } catch {
    return undefined;
  }
}

/** Format by magic bytes (decode.ts uses them too, to name a truncated file). */
export const isJpeg = (b: Buffer) => b[0] === 0xff && b[1] === 0xd8;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
export const isPng = (b: Buffer) => b.subarray(0, 8).equals(PNG_SIGNATURE);

/**
 * Walk the JPEG header segments up to the scan: the frame size when this is a case that decodes
 * outside libvips exactly as in libvips (whatever its size: callers set their own limits).
 */
export function plainJpegSize(b: Buffer): { width: number; height: number } | undefined {
  let at = 2;
  let frame: { width: number; height: number } | undefined;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1]!;
    if (marker === 0xff) { at++; continue; }
    const length = b.readUInt16BE(at + 2);
    const body = b.subarray(at + 4, at + 2 + length);
    if (marker === 0xda) return frame; // start of scan: header done
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      const precision = body[0];
      const components = body[5];
      const height = body.readUInt16BE(1);
      const width = body.readUInt16BE(3);
      if (precision !== 8 || (components !== 1 && components !== 3) || width * height === 0) return undefined;
      frame = { width, height };
    } else if (marker >= 0xc3 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return undefined; // lossless, hierarchical or arithmetic-coded
    } else if (marker === 0xe1 && body.subarray(0, 4).toString('latin1') === 'Exif' && exifOrientation(body.subarray(6)) > 1) {
      return undefined;
    } else if (marker === 0xe2 && body.subarray(0, 11).toString('latin1') === 'ICC_PROFILE') {
      return undefined;
    } else if (marker === 0xee && body.subarray(0, 5).toString('latin1') === 'Adobe') {
      return undefined;
    }
    at += 2 + length;
  }
  return undefined;
}

/** EXIF orientation tag (0x0112) of IFD0, or 1 when absent. */
function exifOrientation(tiff: Buffer): number {
  const little = tiff.subarray(0, 2).toString('latin1') === 'II';
  const u16 = (o: number) => (little ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (little ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd = u32(4);
  const entries = u16(ifd);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (u16(entry) === 0x0112) return u16(entry + 8);
  }
  return 1;
}

/** libjpeg's messages for the current decode: any warning means damage libvips should judge. */
let jpegMessages = 0;
/** The WebAssembly global, typed here because the project's lib settings (no DOM) leave it out. */
const Wasm = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: unknown) => { exports: unknown } } }).WebAssembly;
const wasm = new Wasm.Module(readFileSync(createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
const mozjpeg = await mozjpegFactory({
  noInitialRun: true,
  // Instantiated synchronously from the bytes on disk: the default loader would fetch() them.
  instantiateWasm: (imports: unknown, done: (instance: unknown) => void) => {
    const instance = new Wasm.Instance(wasm, imports);
    done(instance);
    return instance.exports;
  },
  print: () => undefined,
  printErr: () => void jpegMessages++,
} as Parameters<typeof mozjpegFactory>[0]);

function plainJpeg(b: Buffer): SmallImage | undefined {
  const size = plainJpegSize(b);
  if (!size || size.width * size.height > SMALL_MAX_PIXELS) return undefined;
  jpegMessages = 0;
  // libjpeg errors throw out of the module, which stays usable (it does not exit).
  const img = mozjpeg.decode(b, false);
  if (!img || jpegMessages > 0) return undefined;
  const { width, height, data } = img;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    rgb[p * 3] = data[p * 4]!;
    rgb[p * 3 + 1] = data[p * 4 + 1]!;
    rgb[p * 3 + 2] = data[p * 4 + 2]!;
  }
  return { rgb, width, height };
}

/** PNG chunk types before the image data; iCCP means colours libvips would convert. */
function plainPngHeader(b: Buffer): boolean {
  if (b.length < 33) return false;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const depth = b[24]!;
  if (depth > 8 || width * height === 0 || width * height > SMALL_MAX_PIXELS) return false;
  for (let at = 8; at + 8 <= b.length;) {
    const type = b.subarray(at + 4, at + 8).toString('latin1');
    if (type === 'IDAT') return true;
    if (type === 'iCCP') return false;
    at += 12 + b.readUInt32BE(at);
  }
  return false;
}

function plainPng(b: Buffer): SmallImage | undefined {
  if (!plainPngHeader(b)) return undefined;
  const { width, height, data } = PNG.sync.read(b);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const a = data[p * 4 + 3]! / 255;
    // Flattened on white, as decode.ts asks libvips to do.
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.round(data[p * 4 + c]! * a + 255 * (1 - a));
  }
  return { rgb, width, height };
}

/**
 * For each output pixel o of one axis, its taps bounds[o]..bounds[o + 1]: the input pixel (edges
 * clamped) and the weight of each, in kernel order. Taps of weight 0 are left out: they only add
 * ±0, and at an exact 2× enlarge every other output is a single tap of weight 1.
 */
interface AxisTaps { bounds: Int32Array; at: Int32Array; weights: Float64Array }

/**
 * The same in libvips' integer arithmetic: each output is the clamped
 * floor((Σ weight × input + bias) × scale / 2^shift), an 8-bit value.
 */
export interface FixedTaps { start: Int32Array; weights: Int32Array; taps: number; bias: number; scale: number; shift: number }

/**
 * Reducing (no axis enlarged) reproduces vips_resize bit for bit (libvips 8.17 in sharp 0.34,
 * checked against sharp on noise and on photos): vertical then horizontal; along each axis first
 * vips_shrink's box average by floor(in / out / 2) when that is 2 or more (the "gap" of 2), then
 * vips_reduce's lanczos-3 with centre alignment, its 12-bit truncated weights taken from 65
 * sub-pixel phases; the image is rounded to 8 bits after each step.
 */
function reduceFilters(inSize: number, outSize: number): FixedTaps[] {
  return cached(fixedCache, `${inSize} ${outSize}`, () => buildReduceFilters(inSize, outSize));
}

const fixedCache = new Map<string, FixedTaps[]>();

/** Filters by (input size, output size), built once: a corpus has few distinct image sizes. */
function cached<T>(cache: Map<string, T>, key: string, build: () => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    value = build();
    if (cache.size > 1024) cache.clear();
    cache.set(key, value);
  }
  return value;
}

/**
 * vips_resize's reduce, in its order (vertically, then horizontally), over pixels held wherever
 * `pass` keeps them: a JS buffer here, WebAssembly memory in jpeg-scaled.ts.
 */
export function reduceWith<T>(pixels: T, width: number, height: number, size: number, pass: (pixels: T, width: number, height: number, f: FixedTaps, horizontal: boolean) => T): T {
  let h = height;
  for (const f of reduceFilters(height, size)) {
    pixels = pass(pixels, width, h, f, false);
    h = f.start.length;
  }
  let w = width;
  for (const f of reduceFilters(width, size)) {
    pixels = pass(pixels, w, h, f, true);
    w = f.start.length;
  }
  return pixels;
}

/** vips_reduce's sub-pixel phases (VIPS_TRANSFORM_SCALE) and weight precision (VIPS_INTERPOLATE_SHIFT). */
const PHASES = 64;
const WEIGHT_SHIFT = 12;

function buildReduceFilters(inSize: number, outSize: number): FixedTaps[] {
  if (outSize >= inSize) return [];
  // sharp asks vips_resize for a scale of 1 / (in / out), which vips_reduce inverts again.
  let shrink = 1 / (1 / (inSize / outSize));
  const out = Math.floor(inSize / shrink + 0.5);
  let extra = out * shrink - inSize;
  const box = Math.max(1, Math.floor(inSize / out / 2));
  const filters: FixedTaps[] = [];
  if (box > 1) {
    filters.push(boxTaps(Math.ceil(inSize / box), box));
    shrink /= box;
    extra /= box;
  }
  const taps = 2 * roundHalfEven(3 * shrink) + 1;
  const phases: Int32Array[] = [];
  for (let p = 0; p <= PHASES; p++) phases.push(lanczos3Mask(taps, shrink, p / PHASES));
  // When the output is rounded down, the unused input is split between both ends.
  const offset = (1 + extra) / 2 - 1;
  const pad = Math.ceil(taps / 2) - 1;
  const start = new Int32Array(out);
  const weights = new Int32Array(out * taps);
  // Stepped as vips_reduce steps it: summing the step, not multiplying, decides some phases.
  let centre = 0.5 * shrink - 0.5 - offset;
  for (let o = 0; o < out; o++, centre += shrink) {
    start[o] = Math.trunc(centre) - pad;
    weights.set(phases[((Math.trunc(centre * PHASES * 2) & (PHASES * 2 - 1)) + 1) >> 1]!, o * taps);
  }
  filters.push({ start, weights, taps, bias: 1 << (WEIGHT_SHIFT - 1), scale: 1, shift: WEIGHT_SHIFT });
  return filters;
}

/** vips_shrink's box average: a last partial box repeats the edge; 8-bit division by multiplying. */
function boxTaps(out: number, box: number): FixedTaps {
  const start = new Int32Array(out);
  for (let o = 0; o < out; o++) start[o] = o * box;
  return { start, weights: new Int32Array(out * box).fill(1), taps: box, bias: box >> 1, scale: Math.floor(2 ** 32 / (256 * box)), shift: 24 };
}

/** libvips' lanczos-3 weights for one sub-pixel phase x, normalised, then truncated to 12 bits. */
function lanczos3Mask(taps: number, shrink: number, x: number): Int32Array {
  const half = x + taps / 2 - 1;
  const c = new Float64Array(taps);
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    c[i] = vipsLanczos3((i - half) / shrink);
    sum += c[i]!;
  }
  return Int32Array.from(c, (w) => Math.trunc((w / sum) * (1 << WEIGHT_SHIFT)));
}

/** As libvips computes it (operation order kept: the weights are truncated, so ulps can matter). */
function vipsLanczos3(x: number): number {
  if (x < -3 || x > 3) return 0;
  return sinc(x) * sinc(x / 3);
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

/** C's rint() in the default rounding mode. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
}

/**
 * The 1-D filters of vips_resize's enlarging path, measured on impulses through sharp: its affine,
 * bicubic (Catmull-Rom) sampling the input at x / scale − 0.5; and once one axis is enlarged, the
 * affine also runs along the other at scale 1, so that axis is shifted by half a pixel. An axis
 * that is reduced meanwhile is lanczos-3 with pixel centres aligned, here in floating point (the
 * affine after it is not reproduced bit for bit either).
 */
function axisFilters(inSize: number, outSize: number): AxisTaps[] {
  return cached(filterCache, `${inSize} ${outSize}`, () => buildAxisFilters(inSize, outSize));
}

const filterCache = new Map<string, AxisTaps[]>();

function buildAxisFilters(inSize: number, outSize: number): AxisTaps[] {
  if (outSize > inSize) return [catmullRomTaps(inSize, outSize)];
  const reduce = outSize < inSize ? [lanczos3Taps(inSize, outSize)] : [];
  return [...reduce, catmullRomTaps(outSize, outSize)];
}

function lanczos3Taps(inSize: number, outSize: number): AxisTaps {
  const scale = inSize / outSize;
  const support = 3 * scale;
  const lanczos = (x: number) => {
    if (x === 0) return 1;
    if (x <= -3 || x >= 3) return 0;
    const px = Math.PI * x;
    return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
  };
  return buildTaps(inSize, outSize, Math.ceil(support) * 2 + 1, (o) => (o + 0.5) * scale - 0.5, support, (d) => lanczos(d / scale));
}

function catmullRom(x: number): number {
  const a = Math.abs(x);
  if (a < 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

function catmullRomTaps(inSize: number, outSize: number): AxisTaps {
  const scale = inSize / outSize;
  return buildTaps(inSize, outSize, 5, (o) => o * scale - 0.5, 2, catmullRom);
}

function buildTaps(inSize: number, outSize: number, taps: number, centreOf: (o: number) => number, support: number, kernel: (distance: number) => number): AxisTaps {
  const bounds = new Int32Array(outSize + 1);
  const at: number[] = [];
  const weights: number[] = [];
  const w = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const centre = centreOf(o);
    const first = Math.floor(centre - support) + 1;
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      w[t] = kernel(first + t - centre);
      sum += w[t]!;
    }
    for (let t = 0; t < taps; t++) {
      const weight = w[t]! / sum;
      if (weight === 0) continue;
      at.push(Math.min(inSize - 1, Math.max(0, first + t)));
      weights.push(weight);
    }
    bounds[o + 1] = at.length;
  }
  return { bounds, at: Int32Array.from(at), weights: Float64Array.from(weights) };
}

/** Offsets (in samples) of every tap's source pixel along an axis, clamped at the edges. */
function tapOffsets(f: { start: Int32Array; taps: number }, inLen: number, stride: number): Int32Array {
  const offsets = new Int32Array(f.start.length * f.taps);
  for (let o = 0; o < f.start.length; o++) {
    for (let t = 0; t < f.taps; t++) offsets[o * f.taps + t] = Math.min(inLen - 1, Math.max(0, f.start[o]! + t)) * stride;
  }
  return offsets;
}

/**
 * One step of libvips' integer reduce, 8 bits in and out: vertically, whole rows are weighted and
 * summed at once (contiguous memory); horizontally, pixel by pixel. jpeg-scaled.c's jw_pass is
 * the same loop, for the WebAssembly path.
 */
function fixedPass(src: Uint8Array, width: number, height: number, f: FixedTaps, horizontal: boolean): Uint8Array {
  const { start, weights, taps } = f;
  const outLen = start.length;
  const lineLen = horizontal ? width : height;
  const acc = new Int32Array(horizontal ? outLen * 3 : width * 3);
  const out = new Uint8Array(horizontal ? outLen * height * 3 : width * outLen * 3);
  const lines = horizontal ? height : outLen;
  const offsets = tapOffsets(f, lineLen, horizontal ? 3 : width * 3);
  for (let line = 0; line < lines; line++) {
    if (horizontal) {
      const base = line * width * 3;
      for (let o = 0, a = 0; o < outLen; o++, a += 3) {
        let r = 0, g = 0, b = 0;
        for (let t = o * taps, end = t + taps; t < end; t++) {
          const w = weights[t]!;
          const i = base + offsets[t]!;
          r += w * src[i]!; g += w * src[i + 1]!; b += w * src[i + 2]!;
        }
        acc[a] = r; acc[a + 1] = g; acc[a + 2] = b;
      }
    } else {
      acc.fill(0);
      for (let t = line * taps, end = t + taps; t < end; t++) {
        const w = weights[t]!;
        if (w === 0) continue;
        const row = offsets[t]!;
        for (let x = 0; x < acc.length; x++) acc[x] += w * src[row + x]!;
      }
    }
    to8(acc, out, line * acc.length, f);
  }
  return out;
}

/** Sums to 8 bits: libvips' rounding shift for weights, its multiply-and-shift division for boxes. */
function to8(acc: Int32Array, out: Uint8Array, at: number, f: FixedTaps): void {
  if (f.scale === 1) {
    const { bias, shift } = f;
    for (let i = 0; i < acc.length; i++) {
      const v = (acc[i]! + bias) >> shift;
      out[at + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  } else {
    const { bias, scale } = f;
    const divisor = 2 ** f.shift;
    for (let i = 0; i < acc.length; i++) out[at + i] = Math.min(255, Math.floor(((acc[i]! + bias) * scale) / divisor));
  }
}

/** Resize interleaved RGB to size×size (aspect not kept: "fill") as libvips does. */
export function resizeFill(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  if (size <= width && size <= height) return reduceWith(rgb, width, height, size, fixedPass);
  try {
    return enlargeInModule(wasmInstance(), rgb, width, height, size);
  } finally {
    releaseIfLarge();
  }
}

/**
 * An enlarge (at least one axis), in double precision: along x then along y, each filter a pass
 * of jpeg-scaled.c's jw_fpass over the module's memory (~4× faster than V8 runs the same loops,
 * with the same results to the last bit), rounded to 8 bits at the end.
 */
function enlargeInModule(m: WasmExports, rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const input = m.jw_input(rgb.length);
  if (!input) throw new Error('out of WebAssembly memory');
  new Uint8Array(m.memory.buffer, input, rgb.length).set(rgb);
  let data = m.jw_widen(input, rgb.length);
  let w = width;
  let h = height;
  for (const f of axisFilters(width, size)) {
    data = floatPass(m, data, w, h, f, true);
    w = f.bounds.length - 1;
  }
  for (const f of axisFilters(height, size)) {
    data = floatPass(m, data, w, h, f, false);
    h = f.bounds.length - 1;
  }
  const out = m.jw_narrow(data, size * size * 3);
  if (!data || !out) throw new Error('out of WebAssembly memory');
  return new Uint8Array(m.memory.buffer, out, size * size * 3).slice();
}

function floatPass(m: WasmExports, data: number, width: number, height: number, f: AxisTaps, horizontal: boolean): number {
  const bounds = m.jw_alloc(f.bounds.byteLength);
  const at = m.jw_alloc(f.at.byteLength);
  const weights = m.jw_alloc(f.weights.byteLength);
  if (!data || !bounds || !at || !weights) throw new Error('out of WebAssembly memory');
  // Views made after the allocations: growing the memory replaces its buffer.
  new Int32Array(m.memory.buffer, bounds, f.bounds.length).set(f.bounds);
  new Int32Array(m.memory.buffer, at, f.at.length).set(f.at);
  new Float64Array(m.memory.buffer, weights, f.weights.length).set(f.weights);
  return m.jw_fpass(data, width, height, horizontal ? 1 : 0, f.bounds.length - 1, bounds, at, weights);
}
