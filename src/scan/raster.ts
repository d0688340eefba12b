/** What the decoders of formats.ts give: pixels in one shape, or a reason. */

/** Decoded pixels, top row first: 3 channels when opaque, else straight (not premultiplied) RGBA. */
export interface Raster { width: number; height: number; channels: 3 | 4; data: Buffer }

/**
 * What one of these formats gave: pixels, the bytes of an image libvips reads itself (an ICO's
 * PNG entry), or why the file cannot be used.
 */
export type RasterResult = { raster: Raster } | { encoded: Buffer } | { error: string };

/** The reason for an image over the pixel limit; libvips' own refusal is worded the same. */
export const tooLargeReason = (maxPixels: number): string => `image too large: more than ${maxPixels} pixels (decompression bomb?)`;

/**
 * RGBA from a decoder to the Raster libvips gets: opaque images lose the alpha channel (a PNG of
 * the same picture has none either, so both take the same libvips path), and an alpha channel
 * that is 0 everywhere is taken as unused, as browsers do: such files come from writers that
 * leave the fourth byte zero, and read as transparent they would be blank white.
 */
export function fromRgba(rgba: Uint8Array, width: number, height: number): Raster {
  const n = width * height;
  let opaque = true;
  let clear = true;
  for (let p = 0; p < n; p++) {
    const a = rgba[p * 4 + 3]!;
    if (a !== 255) opaque = false;
    if (a !== 0) clear = false;
    if (!opaque && !clear) break;
  }
  if (!opaque && !clear) return { width, height, channels: 4, data: Buffer.from(rgba.buffer, rgba.byteOffset, n * 4) };
  const rgb = Buffer.allocUnsafe(n * 3);
  for (let p = 0; p < n; p++) {
    rgb[p * 3] = rgba[p * 4]!;
    rgb[p * 3 + 1] = rgba[p * 4 + 1]!;
    rgb[p * 3 + 2] = rgba[p * 4 + 2]!;
  }
  return { width, height, channels: 3, data: rgb };
}
