import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fromRgba, tooLargeReason, type RasterResult } from './raster.js';

/**
 * BMP through libnsbmp (NetSurf's decoder, as built to WebAssembly by @cwasm/nsbmp): 1/4/8-bit
 * palettes, 16/24/32-bit, bottom-up and top-down, BI_RGB, BI_BITFIELDS and RLE4/RLE8. The header
 * is read here first, because libnsbmp only says "insufficient data" or "data error": a file
 * that is cut short or declares what libnsbmp cannot read gets a precise reason instead.
 */

interface BmpHeader {
  offset: number;
  width: number;
  height: number;
  bpp: number;
  compression: number;
  /** Red, green, blue, alpha masks of 16/32-bit pixels (alpha 0 when there is none). */
  masks: number[];
}

const COMPRESSION = Object.freeze({ rgb: 0, rle8: 1, rle4: 2, bitfields: 3, jpeg: 4, png: 5, alphaBitfields: 6 });
const CORE_HEADER = 12;
const MAX_HEADER = 124;

/** "BM" and the size of a header libnsbmp knows (or too few bytes to hold one: a cut file). */
export const isBmp = (b: Buffer): boolean => b[0] === 0x42 && b[1] === 0x4d && (b.length < 18 || validHeaderSize(b.readUInt32LE(14)));
const validHeaderSize = (n: number) => n === CORE_HEADER || (n >= 40 && n <= MAX_HEADER);

export function decodeBmp(bytes: Buffer, maxPixels: number): RasterResult {
  const header = readHeader(bytes);
  if (typeof header === 'string') return { error: header };
  const reason = bmpReason(bytes, header, maxPixels);
  if (reason) return { error: reason };
  const decoded = nsbmpDecode(bytes);
  if (typeof decoded === 'string') return { error: decoded };
  widenNarrowChannels(decoded.rgba, header);
  return { raster: fromRgba(decoded.rgba, decoded.width, decoded.height) };
}

function readHeader(b: Buffer): BmpHeader | string {
  if (b.length < 18 || b.length < 14 + b.readUInt32LE(14)) return 'corrupt BMP: header truncated';
  const size = b.readUInt32LE(14);
  const offset = b.readUInt32LE(10);
  if (size === CORE_HEADER) return { offset, width: b.readUInt16LE(18), height: b.readUInt16LE(20), bpp: b.readUInt16LE(24), compression: COMPRESSION.rgb, masks: [] };
  const bpp = b.readUInt16LE(28);
  const compression = b.readUInt32LE(30);
  return { offset, width: b.readInt32LE(18), height: b.readInt32LE(22), bpp, compression, masks: masksOf(b, size, bpp, compression) };
}

/** BI_BITFIELDS masks follow a 40-byte header, or sit inside a larger one; BI_RGB 16-bit is 5-5-5. */
function masksOf(b: Buffer, size: number, bpp: number, compression: number): number[] {
  if (compression === COMPRESSION.bitfields || compression === COMPRESSION.alphaBitfields) {
    const alpha = compression === COMPRESSION.alphaBitfields || size >= 56;
    if (b.length < 54 + (alpha ? 16 : 12)) return [];
    return [b.readUInt32LE(54), b.readUInt32LE(58), b.readUInt32LE(62), alpha ? b.readUInt32LE(66) : 0];
  }
  return bpp === 16 ? [0x7c00, 0x03e0, 0x001f, 0] : [];
}

/** What is wrong with the header or the length of the pixel data; undefined when libnsbmp can have it. */
function bmpReason(b: Buffer, h: BmpHeader, maxPixels: number): string | undefined {
  const height = Math.abs(h.height);
  if (h.width <= 0 || height === 0) return `corrupt BMP: invalid size ${h.width}×${h.height}`;
  if (h.width * height > maxPixels) return tooLargeReason(maxPixels);
  if (![1, 4, 8, 16, 24, 32].includes(h.bpp)) return `unsupported BMP: ${h.bpp} bits per pixel`;
  if (h.compression === COMPRESSION.jpeg || h.compression === COMPRESSION.png) return `unsupported BMP: embedded ${h.compression === COMPRESSION.jpeg ? 'JPEG' : 'PNG'} data (compression ${h.compression})`;
  if (!(Object.values(COMPRESSION) as number[]).includes(h.compression)) return `unsupported BMP: unknown compression ${h.compression}`;
  if (h.offset >= b.length) return `corrupt BMP: pixel data truncated (0 bytes after the ${b.length}-byte header)`;
  if (h.compression === COMPRESSION.rle8 || h.compression === COMPRESSION.rle4) {
    return rleComplete(b, h.offset, height, h.compression === COMPRESSION.rle8 ? 8 : 4) ? undefined : 'corrupt BMP: RLE pixel data truncated';
  }
  const need = Math.ceil((h.width * h.bpp) / 32) * 4 * height;
  const have = b.length - h.offset;
  return have < need ? `corrupt BMP: pixel data truncated (${have} of ${need} bytes)` : undefined;
}

/**
 * Walk the RLE opcodes: true when the stream reaches its end-of-bitmap code, or covers every row,
 * before the file ends. libnsbmp leaves the missing rows transparent instead of failing.
 */
function rleComplete(b: Buffer, start: number, height: number, bits: 4 | 8): boolean {
  let at = start;
  let rows = 0;
  while (at + 2 <= b.length) {
    const count = b[at]!;
    const code = b[at + 1]!;
    at += 2;
    if (count > 0) continue;
    if (code === 0) rows++;
    else if (code === 1) return true;
    else if (code === 2) {
      rows += b[at + 1] ?? 0;
      at += 2;
    } else {
      const bytes = bits === 8 ? code : Math.ceil(code / 2);
      at += bytes + (bytes & 1);
    }
    if (rows >= height) return at <= b.length;
  }
  return false;
}

/**
 * libnsbmp moves a narrow channel's bits to the top of the byte (5-bit 31 becomes 248, not 255),
 * so a 16-bit white would come out grey. Scale each such channel to the full range, as browsers
 * and other decoders do.
 */
function widenNarrowChannels(rgba: Uint8Array, h: BmpHeader): void {
  h.masks.forEach((mask, channel) => {
    const bits = contiguousBits(mask);
    if (bits === 0 || bits >= 8) return;
    const max = (1 << bits) - 1;
    const table = Uint8Array.from({ length: 256 }, (_, o) => Math.round(((o >> (8 - bits)) * 255) / max));
    for (let i = channel; i < rgba.length; i += 4) rgba[i] = table[rgba[i]!]!;
  });
}

const contiguousBits = (mask: number): number => {
  if (mask === 0) return 0;
  const low = mask & -mask;
  return 32 - Math.clz32(mask >>> 0) - (31 - Math.clz32(low));
};

interface NsbmpExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(pointer: number): void;
  decode_bmp(outPixels: number, outWidth: number, outHeight: number, input: number, length: number): number;
}

/** The WebAssembly global, typed here because the project's lib settings (no DOM) leave it out. */
const Wasm = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: unknown) => { exports: unknown } } }).WebAssembly;
const compiled = new Wasm.Module(readFileSync(createRequire(import.meta.url).resolve('@cwasm/nsbmp/nsbmp.wasm')));
// The package's own loader keeps one instance for the life of the process; instantiating here
// lets a thread drop an instance grown by a large file (WebAssembly memory never shrinks).
const noSyscalls = () => {
  throw new Error('libnsbmp made a system call');
};
const instantiate = (): NsbmpExports => new Wasm.Instance(compiled, { wasi_snapshot_preview1: { fd_close: noSyscalls, fd_seek: noSyscalls, fd_write: noSyscalls } }).exports as NsbmpExports;
let nsbmp = instantiate();
const MAX_RETAINED_BYTES = 64 * 1024 * 1024;

/** libnsbmp's results other than success (bmp_result). */
const NSBMP_ERRORS: Record<number, string> = {
  1: 'out of memory decoding BMP',
  2: 'corrupt BMP: pixel data truncated',
  3: 'corrupt BMP: invalid header or pixel data',
};

function nsbmpDecode(bytes: Buffer): { rgba: Uint8Array; width: number; height: number } | string {
  const x = nsbmp;
  try {
    const input = x.malloc(bytes.length);
    new Uint8Array(x.memory.buffer, input, bytes.length).set(bytes);
    const out = x.malloc(12);
    const result = x.decode_bmp(out, out + 4, out + 8, input, bytes.length);
    x.free(input);
    const [pixels, width, height] = new Uint32Array(x.memory.buffer, out, 3);
    x.free(out);
    if (result !== 0) return NSBMP_ERRORS[result] ?? `corrupt BMP: libnsbmp error ${result}`;
    const rgba = new Uint8Array(new Uint8Array(x.memory.buffer, pixels!, width! * height! * 4));
    x.free(pixels!);
    return { rgba, width: width!, height: height! };
  } catch (e) {
    nsbmp = instantiate(); // a trap can leave the module's allocator mid-update
    throw e;
  } finally {
    if (x.memory.buffer.byteLength > MAX_RETAINED_BYTES) nsbmp = instantiate();
  }
}
