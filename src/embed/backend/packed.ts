import type { EncodedImage } from '../runtime.js';

/** A batch of encoded images in one buffer: one transfer to a thread instead of a clone per image. */
export interface PackedImages { buffer: ArrayBuffer; ends: Uint32Array; cifar: Uint8Array; embed: Uint8Array }

/**
 * Copy the images' bytes into one fresh buffer (transferable: a file read into Node's shared
 * pool buffer must not be detached).
 */
export function packImages(images: readonly EncodedImage[]): PackedImages {
  const ends = new Uint32Array(images.length);
  let total = 0;
  images.forEach((image, i) => (ends[i] = total += image.bytes.byteLength));
  const bytes = new Uint8Array(total);
  images.forEach((image, i) => bytes.set(image.bytes, i === 0 ? 0 : ends[i - 1]!));
  return {
    buffer: bytes.buffer,
    ends,
    cifar: Uint8Array.from(images, (image) => (image.format === 'cifar' ? 1 : 0)),
    embed: Uint8Array.from(images, (image) => (image.embed ? 1 : 0)),
  };
}

export function unpackImages(packed: PackedImages): EncodedImage[] {
  return Array.from(packed.ends, (end, i) => ({
    bytes: new Uint8Array(packed.buffer, i === 0 ? 0 : packed.ends[i - 1]!, end - (i === 0 ? 0 : packed.ends[i - 1]!)),
    format: packed.cifar[i] ? 'cifar' : 'encoded',
    embed: packed.embed[i] === 1,
  }));
}
