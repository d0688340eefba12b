/** tga-js ships no types; this is the part of its API that tga.ts calls. */
declare module 'tga-js' {
  export default class TGA {
    /** Parses the header and takes the pixel data (RLE expanded); throws on a header it cannot read. */
    load(data: Uint8Array): void;
    /** RGBA, top row first, into the given object (without one it needs a browser's document). */
    getImageData<T extends { width: number; height: number; data: Uint8ClampedArray }>(imageData: T): T;
  }
}
