import { decodeBmp, isBmp } from './bmp.js';
import { decodeIco, isIco } from './ico.js';
import type { RasterResult } from './raster.js';
import { decodeTga, isTga } from './tga.js';

/**
 * Formats libvips (as built into sharp) cannot load: BMP, ICO and TGA, recognised by their
 * headers, never by the file name. Their decoders give pixels, which decode.ts hands to libvips
 * as raw input so that everything after the decode (resize to the model input, alpha on white,
 * the pixel limit) is the same code as for any other format.
 */

/** Undefined when the bytes are none of these formats (libvips then reads them or names them). */
export function decodeRasterFormat(bytes: Buffer, maxPixels: number): RasterResult | undefined {
  try {
    if (isBmp(bytes)) return decodeBmp(bytes, maxPixels);
    if (isIco(bytes)) return decodeIco(bytes, maxPixels);
    if (isTga(bytes)) return decodeTga(bytes, maxPixels);
    return undefined;
  } catch (e) {
    // The decoders check lengths first; anything still thrown is damage they did not foresee.
    return { error: `corrupt ${formatName(bytes)}: ${(e as Error).message.split('\n')[0]!.slice(0, 160)}` };
  }
}

/** Whether the first bytes of a file (64 are enough) are those of one of these formats. */
export const isRasterFormat = (head: Buffer): boolean => isBmp(head) || isIco(head) || isTga(head);

const formatName = (b: Buffer): string => (isBmp(b) ? 'BMP' : isIco(b) ? 'ICO' : 'TGA');
