import TGA from 'tga-js';
import { fromRgba, tooLargeReason, type RasterResult } from './raster.js';

/**
 * TGA through tga-js. TGA has no magic bytes (the "TRUEVISION-XFILE" footer is optional), so a
 * file is taken as TGA only when every header field holds a value the format allows; text and
 * the other image formats fail that at their first bytes. tga-js reads past the end of a cut
 * file without noticing, so the length of the pixel data is checked here first.
 */

interface TgaHeader {
  idLength: number;
  mapType: number;
  imageType: number;
  mapLength: number;
  mapDepth: number;
  width: number;
  height: number;
  depth: number;
  descriptor: number;
}

const HEADER = 18;
const MAPPED = [1, 9];
const TRUE_COLOUR = [2, 10];
const GREY = [3, 11];
const RLE = [9, 10, 11];

function readHeader(b: Buffer): TgaHeader {
  return {
    idLength: b[0]!, mapType: b[1]!, imageType: b[2]!, mapLength: b.readUInt16LE(5), mapDepth: b[7]!,
    width: b.readUInt16LE(12), height: b.readUInt16LE(14), depth: b[16]!, descriptor: b[17]!,
  };
}

const depthsFor = (type: number): number[] => (MAPPED.includes(type) ? [8, 16] : TRUE_COLOUR.includes(type) ? [15, 16, 24, 32] : GREY.includes(type) ? [8, 16] : []);

export function isTga(b: Buffer): boolean {
  if (b.length < HEADER) return false;
  const h = readHeader(b);
  const mapped = MAPPED.includes(h.imageType);
  if (h.mapType !== (mapped ? 1 : 0) || !depthsFor(h.imageType).includes(h.depth)) return false;
  if (h.mapType === 0 && (b.readUInt16LE(3) !== 0 || h.mapLength !== 0 || h.mapDepth !== 0)) return false;
  if (h.mapType === 1 && (h.mapLength === 0 || ![15, 16, 24, 32].includes(h.mapDepth))) return false;
  return h.width > 0 && h.height > 0 && (h.descriptor & 0xc0) === 0;
}

export function decodeTga(bytes: Buffer, maxPixels: number): RasterResult {
  const h = readHeader(bytes);
  if (h.width * h.height > maxPixels) return { error: tooLargeReason(maxPixels) };
  const unsupported = unsupportedReason(h);
  if (unsupported) return { error: unsupported };
  const start = HEADER + h.idLength + h.mapLength * (h.mapDepth >> 3);
  const truncated = truncationReason(bytes, h, start);
  if (truncated) return { error: truncated };
  const tga = new TGA();
  tga.load(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const { data } = tga.getImageData({ width: h.width, height: h.height, data: new Uint8ClampedArray(h.width * h.height * 4) });
  const rgba = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  fixAlpha(rgba, h);
  return { raster: fromRgba(rgba, h.width, h.height) };
}

/** What tga-js does not read. */
function unsupportedReason(h: TgaHeader): string | undefined {
  if (h.depth === 15) return 'unsupported TGA: 15 bits per pixel';
  if (MAPPED.includes(h.imageType) && (h.depth !== 8 || h.mapDepth !== 24 || h.mapLength > 256)) return `unsupported TGA: colour map of ${h.mapLength} ${h.mapDepth}-bit entries with ${h.depth}-bit indices`;
  if (TRUE_COLOUR.includes(h.imageType) && h.depth === 16) return 'unsupported TGA: 16-bit colour';
  return undefined;
}

function truncationReason(b: Buffer, h: TgaHeader, start: number): string | undefined {
  if (start > b.length) return 'corrupt TGA: header or colour map truncated';
  const pixelBytes = h.depth >> 3;
  const pixels = h.width * h.height;
  if (RLE.includes(h.imageType)) return rleComplete(b, start, pixels, pixelBytes) ? undefined : 'corrupt TGA: RLE pixel data truncated';
  const need = pixels * pixelBytes;
  return b.length - start < need ? `corrupt TGA: pixel data truncated (${b.length - start} of ${need} bytes)` : undefined;
}

/** Walk the RLE packets: true when they cover every pixel before the file ends. */
function rleComplete(b: Buffer, start: number, pixels: number, pixelBytes: number): boolean {
  let at = start;
  let done = 0;
  while (done < pixels) {
    if (at >= b.length) return false;
    const packet = b[at]!;
    const count = (packet & 0x7f) + 1;
    at += 1 + (packet & 0x80 ? pixelBytes : count * pixelBytes);
    done += count;
  }
  return at <= b.length;
}

/**
 * The descriptor's low four bits count the alpha bits; where they say none, the fourth byte of a
 * 32-bit pixel is not alpha (writers often leave it 0), so the image is opaque.
 */
function fixAlpha(rgba: Uint8Array, h: TgaHeader): void {
  if (h.depth !== 32 || (h.descriptor & 0x0f) !== 0) return;
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
}
