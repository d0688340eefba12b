import decodeIcoEntries from 'decode-ico';
import { fromRgba, tooLargeReason, type RasterResult } from './raster.js';

/**
 * ICO (and CUR) files: the largest entry is the image. A PNG entry goes back to the caller as
 * PNG bytes for libvips; a BMP entry (colour bitmap plus AND mask) is decoded by decode-ico.
 * The directory is checked here first so that a cut file is named as such.
 */

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const ENTRY = 16;

/** Reserved 0, type 1 (icon) or 2 (cursor), at least one entry; not an ISO-BMFF box (AVIF/HEIF start with a size). */
export const isIco = (b: Buffer): boolean =>
  b.length >= 6 && b.readUInt16LE(0) === 0 && [1, 2].includes(b.readUInt16LE(2)) && b.readUInt16LE(4) > 0
  && b.subarray(4, 8).toString('latin1') !== 'ftyp' && (b.length < 10 || b[9] === 0);

interface Entry { index: number; offset: number; size: number; width: number; height: number; png: boolean }

export function decodeIco(bytes: Buffer, maxPixels: number): RasterResult {
  const entries = readDirectory(bytes);
  if (typeof entries === 'string') return { error: entries };
  const best = entries.reduce((a, e) => (e.width * e.height > a.width * a.height ? e : a));
  if (best.width * best.height > maxPixels) return { error: tooLargeReason(maxPixels) };
  const data = bytes.subarray(best.offset, best.offset + best.size);
  if (best.png) return { encoded: data };
  // decode-ico decodes every entry of the file it is given: give it a file of the chosen one.
  const [image] = decodeIcoEntries(singleEntryIco(bytes, best, data));
  if (!image || image.type !== 'bmp') return { error: 'corrupt ICO: entry could not be decoded' };
  return { raster: fromRgba(new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength), image.width, image.height) };
}

function readDirectory(b: Buffer): Entry[] | string {
  const count = b.readUInt16LE(4);
  if (b.length < 6 + count * ENTRY) return `corrupt ICO: directory of ${count} entries truncated`;
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 6 + i * ENTRY;
    const size = b.readUInt32LE(at + 8);
    const offset = b.readUInt32LE(at + 12);
    if (offset + size > b.length) return `corrupt ICO: image ${i + 1} data truncated (${Math.max(0, b.length - offset)} of ${size} bytes)`;
    const png = b.subarray(offset, offset + 8).equals(PNG_MAGIC);
    const dims = png ? pngSize(b, offset) : bitmapSize(b, offset, b[at]!, b[at + 1]!);
    if (!dims) return `corrupt ICO: image ${i + 1} header truncated`;
    entries.push({ index: i, offset, size, png, ...dims });
  }
  return entries;
}

const pngSize = (b: Buffer, at: number) => (at + 24 <= b.length ? { width: b.readUInt32BE(at + 16), height: b.readUInt32BE(at + 20) } : undefined);

/** The bitmap header's size (its height counts the AND mask too); the directory's bytes say 0 for 256. */
function bitmapSize(b: Buffer, at: number, dirWidth: number, dirHeight: number) {
  if (at + 16 > b.length) return undefined;
  const width = Math.abs(b.readInt32LE(at + 4)) || dirWidth || 256;
  const height = Math.abs(b.readInt32LE(at + 8)) / 2 || dirHeight || 256;
  return { width, height };
}

function singleEntryIco(b: Buffer, e: Entry, data: Buffer): Buffer {
  const head = Buffer.alloc(6 + ENTRY);
  head.writeUInt16LE(1, 2);
  head.writeUInt16LE(1, 4);
  b.copy(head, 6, 6 + e.index * ENTRY, 6 + e.index * ENTRY + 12);
  head.writeUInt32LE(6 + ENTRY, 6 + 12);
  return Buffer.concat([head, data]);
}
