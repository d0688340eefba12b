/**
 * The onnxruntime-node runtime: runs the exported ONNX graph as is. It is the reference
 * implementation (it matched PyTorch within 3e-7) and ~10× faster than tfjs-wasm on CPU.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { debuglog } from 'node:util';
import * as ort from 'onnxruntime-node';
import { ModelError } from '../../errors.js';
import type { LoadedModel } from '../model-card.js';
import type { EmbedRuntime, RuntimeOptions } from '../runtime.js';

const debug = debuglog('neardup');

/**
 * Whether to ask for the CUDA execution provider. Read here rather than in src/config/ because it
 * describes the machine (whether onnxruntime-node was installed with its CUDA libraries), not the
 * run, and it must never change results: CUDA and CPU outputs agree to float precision.
 */
export const wantCuda = (): boolean => process.env.NEARDUP_CUDA === '1';

/**
 * Whether onnxruntime-node's CUDA provider library is installed beside its binding, or undefined
 * when the package layout is not the expected one. Checked first because a failed CUDA load makes
 * onnxruntime print an error line straight to stderr, which a CLI user should not see for a
 * fallback that works.
 */
function cudaProviderInstalled(): boolean | undefined {
  try {
    const bin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin');
    const dirs = readdirSync(bin).map((napi) => join(bin, napi, process.platform, process.arch)).filter((dir) => existsSync(dir));
    if (dirs.length === 0) return undefined;
    return dirs.some((dir) => existsSync(join(dir, 'libonnxruntime_providers_cuda.so')) || existsSync(join(dir, 'onnxruntime_providers_cuda.dll')));
  } catch {
    return undefined;
  }
}

function sessionOptions(threads: number, providers: string[]): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    intraOpNumThreads: threads,
    // One graph branch at a time: the ViT is a chain, and extra inter-op threads only compete with
    // the decode workers for the same cores.
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // Session config entries, flattened by the binding to "session.intra_op.allow_spinning".
    // Spinning threads burn a core while waiting for work, which slows the decode workers that
    // share the machine (ENGINE-NOTES: onnxruntime-node threads).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/**
 * Create the onnxruntime-node runtime for a loaded model, with `opts.threads` intra-op threads.
 * Uses the CUDA execution provider when env NEARDUP_CUDA=1 and it loads, else the CPU one.
 * Throws ModelError when the model cannot be loaded.
 */
export async function createOnnxRuntime(model: LoadedModel, opts: RuntimeOptions): Promise<EmbedRuntime> {
  if (!Number.isInteger(opts.threads) || opts.threads < 1) {
    throw new RangeError(`createOnnxRuntime: threads must be a positive integer, got ${String(opts.threads)}`);
  }
  let session: ort.InferenceSession | undefined;
  if (wantCuda() && cudaProviderInstalled() === false) {
    debug('onnx: NEARDUP_CUDA=1 but onnxruntime-node has no CUDA libraries (install with ONNXRUNTIME_NODE_INSTALL_CUDA=v12), using CPU');
  } else if (wantCuda()) {
    try {
      session = await ort.InferenceSession.create(model.weightsPath, sessionOptions(opts.threads, ['cuda', 'cpu']));
    } catch (error) {
      // onnxruntime-node's CUDA libraries are a separate, online-only download at install time.
      debug('onnx: CUDA execution provider unavailable, using CPU (%s)', error instanceof Error ? error.message.split('\n')[0] : String(error));
    }
  }
  try {
    session ??= await ort.InferenceSession.create(model.weightsPath, sessionOptions(opts.threads, ['cpu']));
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new ModelError(
      `onnxruntime-node cannot load ${model.weightsPath} (${why}): re-export the model with training/export.py (opset 17), or try --runtime tfjs`,
      'E_MODEL_RUNTIME',
      { cause },
    );
  }

  const { card } = model;
  const inputName = session.inputNames[0];
  const outputName = session.outputNames.includes(card.output.name) ? card.output.name : session.outputNames[0];
  const size = card.input.size;
  const perImage = 3 * size * size;
  const dims = card.output.dims;
  debug('onnx: session ready for %s (input %s, output %s)', model.id, inputName, outputName);

  const live = session;
  let disposed = false;
  return {
    name: 'onnxruntime-node',
    parallelism: 1,
    async embed(pixels: Float32Array, count: number): Promise<Float32Array> {
      if (disposed) throw new Error('embed() called after dispose()');
      if (!Number.isInteger(count) || count < 0 || pixels.length !== count * perImage) {
        throw new RangeError(`embed() expects ${perImage} floats per image; got ${pixels.length} floats for ${count} images`);
      }
      if (count === 0) return new Float32Array(0);
      const input = new ort.Tensor('float32', pixels, [count, 3, size, size]);
      const results = await live.run({ [inputName]: input });
      const output = results[outputName];
      try {
        if (output.dims.length !== 2 || output.dims[0] !== count || output.dims[1] !== dims) {
          throw new ModelError(`Model ${model.id} returned shape [${output.dims.join(', ')}], the card says [${count}, ${dims}]: the card does not describe this ONNX file`, 'E_MODEL_CORRUPT');
        }
        // Copy out so the result does not alias onnxruntime's output buffer.
        return Float32Array.from(output.data as Float32Array);
      } finally {
        for (const value of Object.values(results)) value.dispose();
      }
    },
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      await live.release();
    },
  };
}
