/**
 * dHash, the perceptual-hash baseline printed beside the model in `eval`: cheap, well known, and
 * blind to rotation, mirroring and heavy crops — which is the point of comparing against it.
 */
import sharp from 'sharp';

/**
 * 64-bit difference hash: grayscale, squash to 9×8 (aspect ignored), then one bit per pair of
 * horizontally adjacent pixels, set when the left one is brighter. Row-major, first pair is the
 * most significant bit.
 *
 * @param input - an encoded image; alpha is flattened onto white first so transparent areas hash
 *   the same as a viewer would see them.
 */
export async function dhash(input: Buffer): Promise<bigint> {
  const { data, info } = await sharp(input)
    .flatten({ background: '#ffffff' })
    .grayscale()
    .resize(9, 8, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const step = info.channels; // grayscale() may still leave 3 equal channels; read the first
  let hash = 0n;
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      const left = data[(y * 9 + x) * step];
      const right = data[(y * 9 + x + 1) * step];
      hash = (hash << 1n) | (left > right ? 1n : 0n);
    }
  }
  return hash;
}

/** Number of differing bits between two hashes (0–64 for dHash). */
export function hamming(a: bigint, b: bigint): number {
  let diff = BigInt.asUintN(64, a ^ b); // as unsigned, so a negative input cannot end the loop early
  let count = 0;
  while (diff > 0n) {
    diff &= diff - 1n;
    count++;
  }
  return count;
}
