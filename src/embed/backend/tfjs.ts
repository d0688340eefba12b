/**
 * The TensorFlow.js runtime: the ViT of training/vit.py re-implemented in tfjs ops, with weights
 * read from the same ONNX file that onnxruntime runs (so the two cannot drift apart).
 *
 * Backends, best first: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node (both optional
 * dependencies that fail to install offline), then tfjs-core + the WebAssembly backend, which
 * always installs. The forward pass is written for the wasm backend's fast paths (see
 * ENGINE-NOTES.md): only plain 2-D matMuls against pre-transposed weights for the Linear layers,
 * q/k/v computed per head from column slices of the qkv weight (no 5-D transposes), the attention
 * scale folded into the query weights, and the patch extraction done in plain JS.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { debuglog } from 'node:util';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { ModelError } from '../../errors.js';
import type { LoadedModel, ModelCard } from '../model-card.js';
import type { EmbedRuntime, RuntimeOptions } from '../runtime.js';
import { readModelParameters, type OnnxTensor } from './onnx-weights.js';

const debug = debuglog('neardup');

type Tf = typeof import('@tensorflow/tfjs-core');

/** What `runtime.name` reports for each tfjs backend, in the order they are tried. */
export type TfjsBackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'tfjs-wasm';

/**
 * Largest number of images in one forward pass. The wasm heap is capped at 4 GiB and a pass keeps
 * roughly 0.3 MB of activations per image alive, so bigger calls are split to stay far below it.
 */
const MAX_PASS = 256;

let loading: Promise<{ tf: Tf; name: TfjsBackendName }> | undefined;

/**
 * Load tfjs once per process: tfjs keeps a single global engine, so every runtime shares the
 * backend picked by the first call.
 */
function loadTf(): Promise<{ tf: Tf; name: TfjsBackendName }> {
  loading ??= (async () => {
    const natives: Array<[TfjsBackendName, string]> = [
      ['tfjs-node-gpu', '@tensorflow/tfjs-node-gpu'],
      ['tfjs-node', '@tensorflow/tfjs-node'],
    ];
    for (const [name, specifier] of natives) {
      try {
        // A variable specifier keeps tsc from requiring the types of packages that may be absent.
        const mod = (await import(specifier)) as { default?: Tf } & Tf;
        // For a CommonJS package `default` is module.exports, which is complete; the named
        // exports Node detects statically may not be.
        const tf = mod.default ?? mod;
        if (await tf.setBackend('tensorflow')) {
          await tf.ready();
          return { tf, name };
        }
        debug('tfjs: %s loaded but its tensorflow backend did not initialise', specifier);
      } catch (error) {
        debug('tfjs: %s unavailable (%s)', specifier, error instanceof Error ? error.message.split('\n')[0] : String(error));
      }
    }
    try {
      const tf = await import('@tensorflow/tfjs-core');
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Load the .wasm binaries from the installed package, never from a CDN: the package's main
      // file sits in its dist/ folder next to them.
      const require = createRequire(import.meta.url);
      wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
      if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
      await tf.ready();
      return { tf, name: 'tfjs-wasm' as const };
    } catch (cause) {
      loading = undefined; // let a later call retry rather than caching the failure
      throw new ModelError(
        'Cannot start TensorFlow.js: neither @tensorflow/tfjs-node(-gpu) nor the WebAssembly backend loaded. Reinstall dependencies (npm ci) or use --runtime onnx',
        'E_MODEL_RUNTIME',
        { cause },
      );
    }
  })();
  return loading;
}

interface LayerNormWeights {
  gamma: Tensor1D;
  beta: Tensor1D;
}

interface BlockWeights {
  norm1: LayerNormWeights;
  /** Per head, [dim, headDim] column slices of the qkv weight; the query ones pre-scaled. */
  q: Tensor2D[];
  k: Tensor2D[];
  v: Tensor2D[];
  qBias: Tensor1D[];
  kBias: Tensor1D[];
  vBias: Tensor1D[];
  proj: Tensor2D;
  projBias: Tensor1D;
  norm2: LayerNormWeights;
  fc1: Tensor2D;
  fc1Bias: Tensor1D;
  fc2: Tensor2D;
  fc2Bias: Tensor1D;
}

interface VitWeights {
  patch: Tensor2D;
  patchBias: Tensor1D;
  /** cls token as a [1, 1, dim] tensor, tiled per batch. */
  cls: Tensor3D;
  /** [tokens, dim] position embeddings, broadcast over the batch. */
  pos: Tensor2D;
  blocks: BlockWeights[];
  norm: LayerNormWeights;
  head: Tensor2D;
  headBias: Tensor1D;
}

/** The parameters training/vit.py declares for an architecture, with their PyTorch shapes. */
function expectedShapes(arch: ModelCard['architecture']): Map<string, number[]> {
  const { image, patch, dim, depth, mlp_ratio: ratio, out_dim: out } = arch;
  const tokens = (image / patch) ** 2 + 1;
  const shapes = new Map<string, number[]>([
    ['patch_embed.weight', [dim, patch * patch * 3]],
    ['patch_embed.bias', [dim]],
    ['cls', [1, 1, dim]],
    ['pos', [1, tokens, dim]],
    ['norm.weight', [dim]],
    ['norm.bias', [dim]],
    ['head.weight', [out, dim]],
    ['head.bias', [out]],
  ]);
  for (let i = 0; i < depth; i++) {
    const p = `blocks.${i}.`;
    shapes.set(`${p}norm1.weight`, [dim]).set(`${p}norm1.bias`, [dim]);
    shapes.set(`${p}qkv.weight`, [3 * dim, dim]).set(`${p}qkv.bias`, [3 * dim]);
    shapes.set(`${p}proj.weight`, [dim, dim]).set(`${p}proj.bias`, [dim]);
    shapes.set(`${p}norm2.weight`, [dim]).set(`${p}norm2.bias`, [dim]);
    shapes.set(`${p}fc1.weight`, [ratio * dim, dim]).set(`${p}fc1.bias`, [ratio * dim]);
    shapes.set(`${p}fc2.weight`, [dim, ratio * dim]).set(`${p}fc2.bias`, [dim]);
  }
  return shapes;
}

function checkArchitecture(model: LoadedModel): void {
  const { card } = model;
  const a = card.architecture;
  const problems: string[] = [];
  if (a.type !== 'vit') problems.push(`architecture.type is ${JSON.stringify(a.type)}, not "vit"`);
  if (a.pooling !== 'cls') problems.push(`architecture.pooling is ${JSON.stringify(a.pooling)}, not "cls"`);
  if (a.image % a.patch !== 0) problems.push(`image ${a.image} is not a multiple of patch ${a.patch}`);
  if (a.dim % a.heads !== 0) problems.push(`dim ${a.dim} is not a multiple of heads ${a.heads}`);
  if (card.input.size !== a.image) problems.push(`input.size ${card.input.size} differs from architecture.image ${a.image}`);
  if (card.output.dims !== a.out_dim) problems.push(`output.dims ${card.output.dims} differs from architecture.out_dim ${a.out_dim}`);
  if (problems.length > 0) {
    throw new ModelError(`Model card ${model.dir}/card.json cannot run on tfjs: ${problems.join('; ')}. Use --runtime onnx or re-export the model`, 'E_MODEL_UNSUPPORTED');
  }
}

/** Builds the tfjs weight tensors from PyTorch-layout parameters: every Linear weight pre-transposed. */
function buildWeights(tf: Tf, params: Map<string, OnnxTensor>, arch: ModelCard['architecture']): VitWeights {
  const { dim, heads, depth } = arch;
  const headDim = dim / heads;
  const scale = headDim ** -0.5;
  const get = (name: string): OnnxTensor => params.get(name) as OnnxTensor; // presence checked by the caller
  const vector = (name: string): Tensor1D => tf.tensor1d(get(name).data);
  /** PyTorch [out, in] -> the [in, out] that a plain x·W matMul wants; once, at load. */
  const linear = (name: string, rows?: [number, number], factor = 1): Tensor2D => {
    const t = get(name);
    const [outs, ins] = t.dims;
    const [from, to] = rows ?? [0, outs];
    const out = new Float32Array(ins * (to - from));
    for (let o = from; o < to; o++) {
      for (let i = 0; i < ins; i++) out[i * (to - from) + (o - from)] = t.data[o * ins + i] * factor;
    }
    return tf.tensor2d(out, [ins, to - from]);
  };
  const slice = (name: string, from: number, to: number, factor = 1): Tensor1D =>
    tf.tensor1d(get(name).data.slice(from, to).map((x) => x * factor));
  const norm = (prefix: string): LayerNormWeights => ({ gamma: vector(`${prefix}.weight`), beta: vector(`${prefix}.bias`) });

  const blocks: BlockWeights[] = [];
  for (let b = 0; b < depth; b++) {
    const p = `blocks.${b}`;
    const block: BlockWeights = {
      norm1: norm(`${p}.norm1`),
      q: [], k: [], v: [], qBias: [], kBias: [], vBias: [],
      proj: linear(`${p}.proj.weight`),
      projBias: vector(`${p}.proj.bias`),
      norm2: norm(`${p}.norm2`),
      fc1: linear(`${p}.fc1.weight`),
      fc1Bias: vector(`${p}.fc1.bias`),
      fc2: linear(`${p}.fc2.weight`),
      fc2Bias: vector(`${p}.fc2.bias`),
    };
    // vit.py reshapes the qkv output to (3, heads, headDim): rows [0, dim) are q, [dim, 2·dim) k,
    // [2·dim, 3·dim) v, and within each, head h owns rows [h·headDim, (h+1)·headDim).
    for (let h = 0; h < heads; h++) {
      const at = (part: number): [number, number] => [part * dim + h * headDim, part * dim + (h + 1) * headDim];
      // Folding headDim^-0.5 into the query weights saves a multiply over every score matrix.
      block.q.push(linear(`${p}.qkv.weight`, at(0), scale));
      block.k.push(linear(`${p}.qkv.weight`, at(1)));
      block.v.push(linear(`${p}.qkv.weight`, at(2)));
      block.qBias.push(slice(`${p}.qkv.bias`, ...at(0), scale));
      block.kBias.push(slice(`${p}.qkv.bias`, ...at(1)));
      block.vBias.push(slice(`${p}.qkv.bias`, ...at(2)));
    }
    blocks.push(block);
  }
  const pos = get('pos');
  return {
    patch: linear('patch_embed.weight'),
    patchBias: vector('patch_embed.bias'),
    cls: tf.tensor3d(get('cls').data, [1, 1, dim]),
    pos: tf.tensor2d(pos.data, [pos.dims[1], dim]),
    blocks,
    norm: norm('norm'),
    head: linear('head.weight'),
    headBias: vector('head.bias'),
  };
}

/**
 * For each (token, element) of the flattened patches, the offset of its pixel inside one NCHW
 * image. vit.py flattens patches in (row, col, channel) order of an NHWC view, so element
 * (py, px, c) of the patch at grid cell (gy, gx) is pixel (c, gy·p + py, gx·p + px).
 */
function patchIndex(size: number, patch: number): Int32Array {
  const grid = size / patch;
  const index = new Int32Array(size * size * 3);
  let k = 0;
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      for (let py = 0; py < patch; py++) {
        for (let px = 0; px < patch; px++) {
          for (let c = 0; c < 3; c++) index[k++] = c * size * size + (gy * patch + py) * size + gx * patch + px;
        }
      }
    }
  }
  return index;
}

function layerNorm(tf: Tf, x: Tensor2D, w: LayerNormWeights, eps: number): Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  const scaled = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(scaled, w.gamma), w.beta);
}

/**
 * x·W + b as one fused 2-D matMul without transpose flags: the wasm fast path, and the bias add
 * folded into the same kernel (about a quarter faster than matMul then add).
 */
const linear = (tf: Tf, x: Tensor2D, weight: Tensor2D, bias: Tensor1D): Tensor2D =>
  tf.fused.matMul({ a: x, b: weight, bias }) as Tensor2D;

/** The forward pass of vit.py for `count` images whose patches are already flattened. */
function forward(tf: Tf, w: VitWeights, arch: ModelCard['architecture'], patches: Float32Array, count: number): Tensor2D {
  return tf.tidy(() => {
    const { dim, heads, layer_norm_eps: eps } = arch;
    const cells = (arch.image / arch.patch) ** 2;
    const tokens = cells + 1;
    const rows = count * tokens;
    const headDim = dim / heads;
    const perHead = (t: Tensor2D): Tensor3D => tf.reshape(t, [count, tokens, headDim]);

    const embedded = linear(tf, tf.tensor2d(patches, [count * cells, patches.length / (count * cells)]), w.patch, w.patchBias);
    const withCls = tf.concat([tf.tile(w.cls, [count, 1, 1]), tf.reshape(embedded, [count, cells, dim])], 1);
    // Every Linear works on a [count·tokens, dim] matrix so that it is one plain 2-D matMul.
    let x: Tensor2D = tf.reshape(tf.add(withCls, w.pos), [rows, dim]);

    for (const b of w.blocks) {
      const h = layerNorm(tf, x, b.norm1, eps);
      const outputs: Tensor2D[] = [];
      for (let i = 0; i < heads; i++) {
        const q = perHead(linear(tf, h, b.q[i], b.qBias[i]));
        // An explicit transpose of k is far cheaper on wasm than matMul's transposeB flag.
        const kT = tf.transpose(perHead(linear(tf, h, b.k[i], b.kBias[i])), [0, 2, 1]);
        const v = perHead(linear(tf, h, b.v[i], b.vBias[i]));
        const attention = tf.softmax(tf.matMul(q, kT));
        outputs.push(tf.reshape(tf.matMul(attention, v), [rows, headDim]));
      }
      x = tf.add(x, linear(tf, tf.concat(outputs, 1), b.proj, b.projBias));
      const hidden = linear(tf, layerNorm(tf, x, b.norm2, eps), b.fc1, b.fc1Bias);
      // Exact erf GELU, as F.gelu's default (not the tanh approximation).
      const gelu: Tensor2D = tf.mul(tf.mul(hidden, tf.add(tf.erf(tf.mul(hidden, Math.SQRT1_2)), 1)), 0.5);
      x = tf.add(x, linear(tf, gelu, b.fc2, b.fc2Bias));
    }

    const cls: Tensor2D = tf.reshape(tf.slice(tf.reshape(x, [count, tokens, dim]), [0, 0, 0], [count, 1, dim]), [count, dim]);
    const z = linear(tf, layerNorm(tf, cls, w.norm, eps), w.head, w.headBias);
    return tf.div(z, tf.maximum(tf.norm(z, 'euclidean', 1, true), 1e-12));
  });
}

function disposeAll(value: unknown): void {
  if (Array.isArray(value)) value.forEach(disposeAll);
  else if (value && typeof value === 'object') {
    if (typeof (value as Tensor).dispose === 'function' && 'dataId' in value) (value as Tensor).dispose();
    else Object.values(value).forEach(disposeAll);
  }
}

/**
 * Create the tfjs runtime for a loaded model. Weights are read from the ONNX file the card names
 * and mapped to PyTorch parameter names (see onnx-weights.ts); `runtime.name` says which backend
 * was loaded. `opts.threads` is not used: tfjs-node sizes its own thread pool and the wasm
 * backend runs single-threaded in Node.
 */
export async function createTfjsRuntime(model: LoadedModel, opts: RuntimeOptions): Promise<EmbedRuntime> {
  checkArchitecture(model);
  const arch = model.card.architecture;
  const params = await readModelParameters(model.weightsPath);
  const problems: string[] = [];
  for (const [name, shape] of expectedShapes(arch)) {
    const got = params.get(name);
    if (!got) problems.push(`${name} is missing`);
    else if (got.dims.join(',') !== shape.join(',')) problems.push(`${name} is [${got.dims.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (problems.length > 0) {
    throw new ModelError(`Model weights ${model.weightsPath} do not match the card's architecture (${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}): re-export the model with training/export.py`, 'E_MODEL_CORRUPT');
  }

  const { tf, name } = await loadTf();
  const weights = buildWeights(tf, params, arch);
  const size = model.card.input.size;
  const index = patchIndex(size, arch.patch);
  const perImage = 3 * size * size;
  const outDims = arch.out_dim;
  let disposed = false;
  debug('tfjs: %s runtime ready for %s', name, model.id);

  return {
    name,
    parallelism: 1,
    async embed(pixels: Float32Array, count: number): Promise<Float32Array> {
      if (disposed) throw new Error('embed() called after dispose()');
      if (!Number.isInteger(count) || count < 0 || pixels.length !== count * perImage) {
        throw new RangeError(`embed() expects ${perImage} floats per image; got ${pixels.length} floats for ${count} images`);
      }
      const out = new Float32Array(count * outDims);
      for (let start = 0; start < count; start += MAX_PASS) {
        const n = Math.min(MAX_PASS, count - start);
        const patches = new Float32Array(n * perImage);
        for (let img = 0; img < n; img++) {
          const src = (start + img) * perImage;
          const dst = img * perImage;
          for (let k = 0; k < perImage; k++) patches[dst + k] = pixels[src + index[k]];
        }
        const result = forward(tf, weights, arch, patches, n);
        try {
          out.set(await result.data<'float32'>(), start * outDims);
        } finally {
          result.dispose();
        }
      }
      return out;
    },
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      disposeAll(weights);
    },
  };
}
