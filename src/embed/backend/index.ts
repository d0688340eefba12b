/**
 * The table of inference runtimes, picked by name (config `embed.runtime`, flag `--runtime`).
 * Each runtime module is imported lazily so that choosing one never loads the other's native code.
 */
import { invalidOption, ModelError } from '../../errors.js';
import { FLOAT_MODEL } from '../../util/package-root.js';
import type { LoadedModel } from '../model-card.js';
import type { EmbedRuntime, RuntimeOptions } from '../runtime.js';

/** A factory for one runtime. */
export type RuntimeFactory = (model: LoadedModel, opts: RuntimeOptions) => Promise<EmbedRuntime>;

/** Every runtime by name: 'onnx' (onnxruntime-node, the default and fastest) and 'tfjs'. */
export const RUNTIMES: Readonly<Record<'onnx' | 'tfjs' | 'onnx-main-thread', RuntimeFactory>> = Object.freeze({
  onnx: async (model: LoadedModel, opts: RuntimeOptions) => (await import('./threaded.js')).createThreadedOnnxRuntime(model, opts),
  // The same session on the main thread, where run() blocks decode scheduling; kept so that
  // `npm run bench` can measure what the worker thread buys.
  'onnx-main-thread': async (model: LoadedModel, opts: RuntimeOptions) => (await import('./onnx.js')).createOnnxRuntime(model, opts),
  tfjs: async (model: LoadedModel, opts: RuntimeOptions) => (await import('./tfjs.js')).createTfjsRuntime(model, opts),
});

/** A name in {@link RUNTIMES}. */
export type RuntimeName = keyof typeof RUNTIMES;

/** Whether `name` is a key of {@link RUNTIMES}. */
export const isRuntimeName = (name: string): name is RuntimeName => Object.hasOwn(RUNTIMES, name);

/**
 * Create the runtime called `name` for a loaded model. Throws ConfigError listing the valid names
 * for an unknown one, and ModelError when the runtime cannot load the model.
 */
export async function createRuntime(name: string, model: LoadedModel, opts: RuntimeOptions): Promise<EmbedRuntime> {
  if (!isRuntimeName(name)) {
    throw invalidOption('embed.runtime', `one of ${Object.keys(RUNTIMES).map((k) => JSON.stringify(k)).join(', ')}`, name);
  }
  const family = name.startsWith('onnx') ? 'onnx' : name;
  const supported = model.card.runtimes;
  if (supported && !supported.includes(family)) {
    const why = model.card.quantization ? `it is quantized (${model.card.quantization.from} → int8 operators only onnxruntime has)` : 'its card says so';
    throw new ModelError(`Model ${model.id} runs on ${supported.join(', ')} only: ${why}. Use --runtime ${supported[0]}, or --model models/${FLOAT_MODEL} for ${name}`, 'E_MODEL_RUNTIME');
  }
  return RUNTIMES[name](model, opts);
}
