import { decodeRead, type DecodeResult } from '../scan/decode.js';
import type { LoadedModel } from './model-card.js';
import type { DecodedBatch, EmbedRuntime, EncodedImage } from './runtime.js';
import { DETAIL_SCALE, insetModelBatch, modelBatch, type InsetSource } from './views.js';
import { lumaOfRgb } from '../verify/luma.js';

type DecodedOk = Extract<DecodeResult, { ok: true }>;

/**
 * Decode a batch of read images, then embed those marked for it in `views` views (and their
 * insets, with `insets`, each cut from a second, larger decode of its image), in one model call.
 * Runs where the pixels are needed: on an inference thread of the CPU pool, next to its session,
 * so that pixels never cross threads (only the encoded bytes and the descriptors do).
 */
export async function decodeAndEmbed(model: LoadedModel, runtime: EmbedRuntime, images: readonly EncodedImage[], views: number, wantLuma = false, insets = false): Promise<DecodedBatch> {
  const { size } = model.card.input;
  const decode = (image: EncodedImage, side: number) => decodeRead(Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength), '', image.format === 'cifar' ? 'cifar' : null, { size: side });
  const decoded = await Promise.all(images.map((image) => decode(image, size)));
  const embedded = images.flatMap((image, i) => (decoded[i]!.ok && image.embed ? [{ image, decoded: decoded[i]! as DecodedOk }] : []));
  const wanted = embedded.map((e) => e.decoded.rgb!);
  const batch = insets ? await insetModelBatch(wanted, views, model.card.input, embedded.map(({ image, decoded: d }) => insetSource(d, size, (side) => decode(image, side)))) : modelBatch(wanted, views, model.card.input);
  const vectors = wanted.length > 0 ? await runtime.embed(batch.pixels, batch.count) : new Float32Array(0);
  const pixels = size * size;
  const ok = wantLuma ? decoded.flatMap((d) => (d.ok ? [d.rgb!] : [])) : [];
  const luma = new Uint8Array(ok.length * pixels);
  ok.forEach((rgb, i) => luma.set(lumaOfRgb(rgb, pixels), i * pixels));
  return { outcomes: decoded.map((d) => (d.ok ? { ok: true as const, width: d.width, height: d.height } : { ok: false as const, error: d.error })), vectors, insets: batch.insets, luma };
}

/**
 * What the inset search needs to know of a decoded image (views.ts {@link InsetSource}): its
 * shape, and its detail decode, made by `decode` at the detail side; none when the source is no
 * larger than the model input (a CIFAR record, a thumbnail: decoding it larger adds nothing) or
 * fails the second time.
 */
export function insetSource(source: { width: number; height: number }, size: number, decode: (side: number) => Promise<DecodeResult>): InsetSource {
  return {
    aspect: source.width / source.height,
    detail: async () => {
      if (Math.max(source.width, source.height) <= size) return undefined;
      const side = size * DETAIL_SCALE;
      const detail = await decode(side);
      return detail.ok ? { rgb: detail.rgb!, side } : undefined;
    },
  };
}
