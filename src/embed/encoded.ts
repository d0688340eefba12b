import { decodeRead } from '../scan/decode.js';
import type { LoadedModel } from './model-card.js';
import type { DecodedBatch, EmbedRuntime, EncodedImage } from './runtime.js';
import { modelBatch } from './views.js';
import { lumaOfRgb } from '../verify/luma.js';

/**
 * Decode a batch of read images, then embed those marked for it in `views` views (and their
 * insets, with `insets`), in one model call. Runs where the pixels are needed: on an inference
 * thread of the CPU pool, next to its session, so that pixels never cross threads (only the
 * encoded bytes and the descriptors do).
 */
export async function decodeAndEmbed(model: LoadedModel, runtime: EmbedRuntime, images: readonly EncodedImage[], views: number, wantLuma = false, insets = false): Promise<DecodedBatch> {
  const { size } = model.card.input;
  const decoded = await Promise.all(images.map((image) => decodeRead(Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength), '', image.format === 'cifar' ? 'cifar' : null, { size })));
  const wanted = decoded.flatMap((d, i) => (d.ok && images[i]!.embed ? [d.rgb!] : []));
  const batch = modelBatch(wanted, views, model.card.input, insets);
  const vectors = wanted.length > 0 ? await runtime.embed(batch.pixels, batch.count) : new Float32Array(0);
  const pixels = size * size;
  const ok = wantLuma ? decoded.flatMap((d) => (d.ok ? [d.rgb!] : [])) : [];
  const luma = new Uint8Array(ok.length * pixels);
  ok.forEach((rgb, i) => luma.set(lumaOfRgb(rgb, pixels), i * pixels));
  return { outcomes: decoded.map((d) => (d.ok ? { ok: true as const, width: d.width, height: d.height } : { ok: false as const, error: d.error })), vectors, insets: batch.insets, luma };
}
