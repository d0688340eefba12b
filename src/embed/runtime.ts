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
  dispose(): Promise<void>;
}

export interface RuntimeOptions {
  /** Inference threads for the model (onnx on CPU: that many single-threaded sessions); decode threads are sized separately. */
  threads: number;
}
