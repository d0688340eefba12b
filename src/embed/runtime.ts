import type { Box } from './views.js';

/**
 * The one interface every inference runtime implements. Inputs are preprocessed already:
 * float32 NCHW, `count` images of 3×size×size, normalised with the card's mean/std.
 * Outputs are `count` descriptors of `dims` floats each, L2-normalised, concatenated.
 */
export interface EmbedRuntime {
  /** 'onnxruntime-node', 'tfjs-node', 'tfjs-node-gpu' or 'tfjs-wasm'. */
  readonly name: string;
  /** How many embed() calls can run at once, each on its own cores (callers keep that many in flight). */
  readonly parallelism: number;
  embed(pixels: Float32Array, count: number): Promise<Float32Array>;
  /**
   * Decode and embed in the runtime's own threads, when it has them (the CPU pool). The caller
   * has read and hashed the bytes; the pool's threads turn them into pixels and descriptors, so
   * the main thread keeps only what is serial (catalog, matching). Absent: the caller decodes.
   */
  decodeAndEmbed?(images: readonly EncodedImage[], views: number, luma?: boolean, insets?: boolean): Promise<DecodedBatch>;
  dispose(): Promise<void>;
}

/** An image as read from its source, not decoded yet. */
export interface EncodedImage {
  bytes: Uint8Array;
  /** How the bytes are laid out ('cifar': raw planes; anything else: an encoded file). */
  format: 'cifar' | 'encoded';
  /** False for an exact duplicate whose descriptors exist already: decode only (size, errors). */
  embed: boolean;
}

/**
 * Per image, its size or why it failed; the descriptors of the images to embed that decoded, in
 * order, `views` each, followed by the descriptors of the insets found (when asked for: see
 * views.ts modelBatch); and, when asked for, the luma of every decoded image's model input (size²
 * bytes each, in order of the ok outcomes; else empty), which the verify stage compares instead
 * of decoding again.
 */
export interface DecodedBatch {
  outcomes: ({ ok: true; width: number; height: number } | { ok: false; error: string })[];
  vectors: Float32Array;
  /** Per embedded image, its insets' boxes (often none); the inset descriptors follow the views in `vectors`, in this order. */
  insets: Box[][];
  luma: Uint8Array;
}

export interface RuntimeOptions {
  /** Inference threads for the model (onnx on CPU: that many single-threaded sessions); decode threads are sized separately. */
  threads: number;
}
