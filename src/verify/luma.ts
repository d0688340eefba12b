/**
 * What the verify stage compares: the luma of the model's input pixels (the 64×64 fill-resized
 * image), so that it costs no decode of its own and sees exactly what the embedder saw.
 */

/** Luma (Rec. 601 weights, rounded) of `pixels` interleaved RGB pixels. */
export function lumaOfRgb(rgb: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let p = 0, s = 0; p < pixels; p++, s += 3) out[p] = Math.round(0.299 * rgb[s]! + 0.587 * rgb[s + 1]! + 0.114 * rgb[s + 2]!);
  return out;
}
