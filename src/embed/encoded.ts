import { decodeRead } from '../scan/decode.js';
import type { LoadedModel } from './model-card.js';
import type { DecodedBatch, EmbedRuntime, EncodedImage } from './runtime.js';
import { applyView, writeNormalised } from './views.js';

/**
 * Decode a batch of read images, then embed those marked for it in `views` views, in one model
 * call. Runs where the pixels are needed: on an inference thread of the CPU pool, next to its
 * session, so that pixels never cross threads (only the encoded bytes and the descriptors do).
 */
export async function decodeAndEmbed(model: LoadedModel, runtime: EmbedRuntime, images: readonly EncodedImage[], views: number): Promise<DecodedBatch> {
  const { size, mean, std } = model.card.input;
  const decoded = await Promise.all(images.map((image) => decodeRead(Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength), '', image.format === 'cifar' ? 'cifar' : null, { size })));
  const wanted = decoded.flatMap((d, i) => (d.ok && images[i]!.embed ? [d.rgb!] : []));
  const pixels = new Float32Array(wanted.length * views * 3 * size * size);
  let slot = 0;
  for (const rgb of wanted) {
    for (let v = 0; v < views; v++) writeNormalised(applyView(rgb, size, v), size, mean, std, pixels, slot++);
  }
  const vectors = wanted.length > 0 ? await runtime.embed(pixels, wanted.length * views) : new Float32Array(0);
  return { outcomes: decoded.map((d) => (d.ok ? { ok: true as const, width: d.width, height: d.height } : { ok: false as const, error: d.error })), vectors };
}
