/**
 * The onnx and tfjs runtimes must compute the same function from the same ONNX file: tfjs re-implements
 * the ViT by hand, so this is the test that catches a wrong patch order, head split or GELU.
 * Runs against the shipped model on real decoded images; nothing is mocked.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createRuntime, RUNTIMES } from '../../src/embed/backend/index.js';
import { namedParameters, parseOnnxModel, readModelParameters, readOnnxInitializers } from '../../src/embed/backend/onnx-weights.js';
import { loadModel, type LoadedModel } from '../../src/embed/model-card.js';
import type { EmbedRuntime, EncodedImage } from '../../src/embed/runtime.js';
import { INPUT_ID, modelView, trimUniformBorder, writeNormalised } from '../../src/embed/views.js';
import { decodeRead } from '../../src/scan/decode.js';
import { ConfigError, ModelError } from '../../src/errors.js';
import { defaultModelDir, packageRoot } from '../../src/util/package-root.js';
import { mulberry32 } from '../../src/util/rng.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff']);
/** Enough images for a meaningful minimum, few enough to keep the test quick on a busy 2-core box. */
const MAX_FIXTURES = 16;

/** Image files under fixtures/, sorted so the batch is the same on every machine. */
function fixtureImages(): string[] {
  const root = join(packageRoot(), 'fixtures');
  if (!existsSync(root)) return [];
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (IMAGE_EXTENSIONS.has(extname(entry).toLowerCase())) found.push(path);
    }
  };
  walk(root);
  return found.slice(0, MAX_FIXTURES);
}

/**
 * Twelve visibly different images, JPEG-encoded so that decoding goes through the same path as
 * real photos: SVG scenes of shapes and gradients, plus value-noise textures.
 */
async function proceduralImages(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    const rnd = mulberry32(1000 + i);
    const colour = (): string => `rgb(${Math.floor(rnd() * 256)},${Math.floor(rnd() * 256)},${Math.floor(rnd() * 256)})`;
    const shapes: string[] = [];
    for (let s = 0; s < 6; s++) {
      const x = Math.floor(rnd() * 200);
      const y = Math.floor(rnd() * 150);
      const r = 10 + Math.floor(rnd() * 50);
      shapes.push(s % 2 === 0 ? `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour()}"/>` : `<rect x="${x}" y="${y}" width="${2 * r}" height="${r}" fill="${colour()}" transform="rotate(${Math.floor(rnd() * 90)} ${x} ${y})"/>`);
    }
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150">
      <defs><linearGradient id="g" x1="0" y1="0" x2="${rnd().toFixed(2)}" y2="1"><stop offset="0" stop-color="${colour()}"/><stop offset="1" stop-color="${colour()}"/></linearGradient></defs>
      <rect width="200" height="150" fill="url(#g)"/>${shapes.join('')}</svg>`;
    out.push(await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer());
  }
  for (let i = 0; i < 4; i++) {
    const rnd = mulberry32(2000 + i);
    const cells = 4 + 3 * i;
    const grid = Array.from({ length: (cells + 1) * (cells + 1) * 3 }, () => rnd() * 255);
    const w = 160;
    const h = 120;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        // Bilinear value noise: smooth blobs at a different scale per image.
        const fx = (x / w) * cells;
        const fy = (y / h) * cells;
        const x0 = Math.floor(fx);
        const y0 = Math.floor(fy);
        const tx = fx - x0;
        const ty = fy - y0;
        for (let c = 0; c < 3; c++) {
          const at = (gx: number, gy: number): number => grid[(gy * (cells + 1) + gx) * 3 + c];
          const top = at(x0, y0) * (1 - tx) + at(x0 + 1, y0) * tx;
          const bottom = at(x0, y0 + 1) * (1 - tx) + at(x0 + 1, y0 + 1) * tx;
          raw[(y * w + x) * 3 + c] = Math.round(top * (1 - ty) + bottom * ty);
        }
      }
    }
    out.push(await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
  }
  return out;
}

/** Decode, resize (fill) and normalise one image into NCHW floats, as the card prescribes. */
async function preprocess(input: Buffer | string, model: LoadedModel): Promise<Float32Array> {
  const { size, mean, std } = model.card.input;
  const rgb = await sharp(input).rotate().removeAlpha().toColourspace('srgb').resize(size, size, { fit: 'fill' }).raw().toBuffer();
  const out = new Float32Array(3 * size * size);
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) out[c * size * size + p] = (rgb[p * 3 + c] / 255 - mean[c]) / std[c];
  }
  return out;
}

function batch(images: Float32Array[]): Float32Array {
  const out = new Float32Array(images.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const image of images) {
    out.set(image, at);
    at += image.length;
  }
  return out;
}

const dot = (a: Float32Array, i: number, b: Float32Array, j: number, dims: number): number => {
  let sum = 0;
  for (let k = 0; k < dims; k++) sum += a[i * dims + k] * b[j * dims + k];
  return sum;
};

describe('onnx and tfjs runtimes on the shipped float model', () => {
  let model: LoadedModel;
  let onnx: EmbedRuntime;
  let tfjs: EmbedRuntime;
  let count = 0;
  let procedural = 0;
  let fromOnnx: Float32Array;
  let fromTfjs: Float32Array;
  let dims = 0;

  before(async () => {
    model = loadModel(defaultModelDir('tfjs'));
    dims = model.card.output.dims;
    const generated = await proceduralImages();
    procedural = generated.length;
    const inputs = [...generated, ...fixtureImages()];
    const pixels = batch(await Promise.all(inputs.map((input) => preprocess(input, model))));
    count = inputs.length;
    // One intra-op thread: the machine is shared with a training job and other tests.
    onnx = await createRuntime('onnx', model, { threads: 1 });
    tfjs = await createRuntime('tfjs', model, { threads: 1 });
    fromOnnx = await onnx.embed(pixels, count);
    fromTfjs = await tfjs.embed(pixels, count);
  });

  after(async () => {
    await onnx?.dispose();
    await tfjs?.dispose();
  });

  test('report their names', () => {
    assert.equal(onnx.name, 'onnxruntime-node');
    assert.ok(['tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm'].includes(tfjs.name), tfjs.name);
  });

  test('return count × dims floats', () => {
    assert.equal(fromOnnx.length, count * dims);
    assert.equal(fromTfjs.length, count * dims);
  });

  test('agree per image (cosine >= 0.999)', (t) => {
    let min = Infinity;
    for (let i = 0; i < count; i++) min = Math.min(min, dot(fromOnnx, i, fromTfjs, i, dims));
    t.diagnostic(`onnx vs ${tfjs.name}: min cosine ${min.toFixed(7)} over ${count} images`);
    assert.ok(min >= 0.999, `min cosine ${min}`);
  });

  test('return unit-norm embeddings', () => {
    for (const [name, out] of [['onnx', fromOnnx], ['tfjs', fromTfjs]] as const) {
      for (let i = 0; i < count; i++) {
        const norm = Math.sqrt(dot(out, i, out, i, dims));
        assert.ok(Math.abs(norm - 1) < 1e-4, `${name} image ${i}: norm ${norm}`);
      }
    }
  });

  test('give distinct images distinct embeddings', (t) => {
    // Only the procedural images are known to be distinct: fixtures may hold near-duplicates on purpose.
    for (const [name, out] of [['onnx', fromOnnx], ['tfjs', fromTfjs]] as const) {
      let max = -Infinity;
      let sum = 0;
      let pairs = 0;
      for (let i = 0; i < procedural; i++) {
        for (let j = i + 1; j < procedural; j++) {
          const cos = dot(out, i, out, j, dims);
          max = Math.max(max, cos);
          sum += cos;
          pairs++;
        }
      }
      t.diagnostic(`${name}: between distinct images, max cosine ${max.toFixed(4)}, mean ${(sum / pairs).toFixed(4)}`);
      assert.ok(max < 0.99, `${name}: two distinct images have cosine ${max}`);
      assert.ok(sum / pairs < 0.9, `${name}: embeddings have collapsed (mean cosine ${sum / pairs})`);
    }
  });

  test('embed a batch the same as one image at a time', async () => {
    const size = model.card.input.size;
    const perImage = 3 * size * size;
    const pixels = batch(await Promise.all((await proceduralImages()).slice(0, 3).map((input) => preprocess(input, model))));
    for (const runtime of [onnx, tfjs]) {
      const whole = await runtime.embed(pixels, 3);
      for (let i = 0; i < 3; i++) {
        const single = await runtime.embed(pixels.slice(i * perImage, (i + 1) * perImage), 1);
        assert.ok(dot(whole, i, single, 0, dims) > 0.99999, `${runtime.name} image ${i}`);
      }
      assert.equal((await runtime.embed(new Float32Array(0), 0)).length, 0);
      await assert.rejects(runtime.embed(new Float32Array(10), 1), RangeError);
    }
  });
});

describe('the shipped int8 model (training/quantize.py) against the float one', () => {
  const float = loadModel(defaultModelDir('tfjs'));
  const int8 = loadModel(defaultModelDir());
  let count = 0;
  let fromFloat: Float32Array;
  let fromInt8: Float32Array;
  let fromPool: Float32Array;
  let poolSize = 0;

  before(async () => {
    const inputs = [...(await proceduralImages()), ...fixtureImages()];
    const pixels = batch(await Promise.all(inputs.map((input) => preprocess(input, int8))));
    count = inputs.length;
    const floatRuntime = await createRuntime('onnx', float, { threads: 1 });
    const int8Runtime = await createRuntime('onnx', int8, { threads: 1 });
    const pool = await createRuntime('onnx', int8, { threads: 2 });
    try {
      fromFloat = await floatRuntime.embed(pixels, count);
      fromInt8 = await int8Runtime.embed(pixels, count);
      // Two halves at once, one per pooled session: the pool must put each answer back in place.
      const half = Math.floor(count / 2);
      const perImage = pixels.length / count;
      const parts = await Promise.all([pool.embed(pixels.slice(0, half * perImage), half), pool.embed(pixels.slice(half * perImage), count - half)]);
      fromPool = batch(parts);
      poolSize = pool.parallelism;
    } finally {
      await Promise.all([floatRuntime.dispose(), int8Runtime.dispose(), pool.dispose()]);
    }
  });

  test('is its own model: another id, onnx only, naming its source', () => {
    assert.notEqual(int8.id, float.id);
    assert.deepEqual(int8.card.runtimes, ['onnx']);
    // `from` names the source weights; a model id adds the input parameters (+INPUT_ID) to them.
    assert.equal(`${int8.card.quantization?.from}+${INPUT_ID}`, float.id);
  });

  test('embeds each image like the float model (cosine >= 0.995)', (t) => {
    const dims = int8.card.output.dims;
    let min = Infinity;
    for (let i = 0; i < count; i++) min = Math.min(min, dot(fromFloat, i, fromInt8, i, dims));
    t.diagnostic(`float vs int8: min cosine ${min.toFixed(5)} over ${count} images`);
    assert.ok(min >= 0.995, `min cosine ${min}`);
  });

  test('a pool of 2 single-threaded sessions returns what one session does', () => {
    assert.equal(poolSize, 2);
    assert.equal(fromPool.length, fromInt8.length);
    for (let i = 0; i < fromPool.length; i++) assert.ok(Math.abs(fromPool[i]! - fromInt8[i]!) < 1e-5, `float ${i}: ${fromPool[i]} vs ${fromInt8[i]}`);
  });

  test('tfjs refuses it with a message that names the float model', async () => {
    await assert.rejects(createRuntime('tfjs', int8, { threads: 1 }), (error: unknown) => {
      assert.ok(error instanceof ModelError);
      assert.match(error.message, /runs on onnx only: it is quantized .*--model models\/neardup-vit-s8 for tfjs/);
      return true;
    });
  });
});

describe('decoding in the onnx pool\'s threads (decodeAndEmbed)', () => {
  const model = loadModel(defaultModelDir());
  const views = 2;

  test('gives the sizes, errors and descriptors that decoding here and embedding gives', async (t) => {
    const encoded = [...(await proceduralImages()), ...fixtureImages().map((f) => readFileSync(f))];
    const cifar = Buffer.from(Array.from({ length: 3072 }, (_, i) => (i * 37) % 256));
    const corrupt = Buffer.alloc(500, 7);
    const images: EncodedImage[] = [
      ...encoded.map((bytes) => ({ bytes, format: 'encoded' as const, embed: true })),
      { bytes: cifar, format: 'cifar', embed: true },
      { bytes: corrupt, format: 'encoded', embed: true },
      { bytes: encoded[1]!, format: 'encoded', embed: false }, // a duplicate: decoded, not embedded
    ];
    const { size, mean, std } = model.card.input;
    const pool = await createRuntime('onnx', model, { threads: 2 });
    const single = await createRuntime('onnx-main-thread', model, { threads: 1 });
    try {
      assert.ok(pool.decodeAndEmbed, 'the CPU pool decodes in its threads');
      const half = Math.ceil(images.length / 2);
      const [a, b] = await Promise.all([pool.decodeAndEmbed(images.slice(0, half), views), pool.decodeAndEmbed(images.slice(half), views)]);
      const outcomes = [...a.outcomes, ...b.outcomes];
      const vectors = batch([a.vectors, b.vectors]);
      const expected = await Promise.all(images.map((image) => decodeRead(Buffer.from(image.bytes), '', image.format === 'cifar' ? 'cifar' : null, { size })));
      const wanted = expected.flatMap((d, i) => (d.ok && images[i]!.embed ? [d.rgb!] : []));
      const pixels = new Float32Array(wanted.length * views * 3 * size * size);
      let slot = 0;
      // The same model input as viewBatch: uniform borders trimmed, then each view.
      for (const rgb of wanted) for (let v = 0; v < views; v++) writeNormalised(modelView(trimUniformBorder(rgb, size), size, v), size, mean, std, pixels, slot++);
      const reference = await single.embed(pixels, wanted.length * views);

      assert.deepEqual(outcomes, expected.map((d) => (d.ok ? { ok: true, width: d.width, height: d.height } : { ok: false, error: d.error })));
      assert.equal(outcomes.at(-2)!.ok, false, 'bytes that are no image fail');
      assert.deepEqual(outcomes.at(-3), { ok: true, width: 32, height: 32 }, 'the CIFAR record decodes as 32×32');
      assert.equal(vectors.length, reference.length, 'no descriptors for failures or embed: false');
      let worst = 0;
      for (let i = 0; i < vectors.length; i++) worst = Math.max(worst, Math.abs(vectors[i]! - reference[i]!));
      t.diagnostic(`${wanted.length} images × ${views} views; max |difference| ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-5, `max difference ${worst}`);
    } finally {
      await Promise.all([pool.dispose(), single.dispose()]);
    }
  });
});

describe('onnx-weights on the shipped float model', () => {
  const model = loadModel(defaultModelDir('tfjs'));

  test('maps every parameter of the card architecture to its PyTorch name and shape', async () => {
    // Expected shapes derived independently from card.json and training/vit.py (state_dict layout).
    const { image, patch, dim, depth, mlp_ratio: ratio, out_dim: out } = model.card.architecture;
    const expected: Record<string, number[]> = {
      cls: [1, 1, dim],
      pos: [1, (image / patch) ** 2 + 1, dim],
      'patch_embed.weight': [dim, 3 * patch * patch],
      'patch_embed.bias': [dim],
      'norm.weight': [dim],
      'norm.bias': [dim],
      'head.weight': [out, dim],
      'head.bias': [out],
    };
    for (let b = 0; b < depth; b++) {
      Object.assign(expected, {
        [`blocks.${b}.norm1.weight`]: [dim],
        [`blocks.${b}.norm1.bias`]: [dim],
        [`blocks.${b}.qkv.weight`]: [3 * dim, dim],
        [`blocks.${b}.qkv.bias`]: [3 * dim],
        [`blocks.${b}.proj.weight`]: [dim, dim],
        [`blocks.${b}.proj.bias`]: [dim],
        [`blocks.${b}.norm2.weight`]: [dim],
        [`blocks.${b}.norm2.bias`]: [dim],
        [`blocks.${b}.fc1.weight`]: [ratio * dim, dim],
        [`blocks.${b}.fc1.bias`]: [ratio * dim],
        [`blocks.${b}.fc2.weight`]: [dim, ratio * dim],
        [`blocks.${b}.fc2.bias`]: [dim],
      });
    }
    const params = await readModelParameters(model.weightsPath);
    assert.deepEqual([...params.keys()].sort(), Object.keys(expected).sort());
    for (const [name, shape] of Object.entries(expected)) {
      const tensor = params.get(name);
      assert.deepEqual(tensor?.dims, shape, name);
      assert.equal(tensor?.data.length, shape.reduce((a, b) => a * b, 1), name);
      assert.ok(tensor?.data.every(Number.isFinite), `${name} has non-finite values`);
    }
  });

  test('keeps one logical parameter per initializer in the file', () => {
    const raw = readOnnxInitializers(readFileSync(model.weightsPath));
    const logical = namedParameters(parseOnnxModel(readFileSync(model.weightsPath)));
    assert.equal(raw.size, logical.size);
    const sizes = (m: Map<string, { data: Float32Array }>): number[] => [...m.values()].map((t) => t.data.length).sort((a, b) => a - b);
    assert.deepEqual(sizes(raw), sizes(logical));
  });

  test('wraps an unreadable file in ModelError', async () => {
    await assert.rejects(readModelParameters(join(model.dir, 'card.json')), ModelError);
    await assert.rejects(readModelParameters(join(model.dir, 'no-such-file.onnx')), ModelError);
  });
});

/** A tiny protobuf writer, to build synthetic graphs that exercise the mapping rules. */
const pb = {
  varint(n: number): number[] {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
    return out;
  },
  key: (field: number, wire: number): number[] => pb.varint(field * 8 + wire),
  bytes: (field: number, payload: number[]): number[] => [...pb.key(field, 2), ...pb.varint(payload.length), ...payload],
  string: (field: number, s: string): number[] => pb.bytes(field, [...Buffer.from(s, 'utf8')]),
  int: (field: number, n: number): number[] => [...pb.key(field, 0), ...pb.varint(n)],
  floatsLE: (values: number[]): number[] => [...Buffer.from(new Float32Array(values).buffer)],
};

/** TensorProto with raw_data and packed dims, or float_data and unpacked dims. */
function tensorProto(name: string, dims: number[], values: number[], style: 'raw' | 'float_data'): number[] {
  const dimBytes = style === 'raw' ? pb.bytes(1, dims.flatMap(pb.varint)) : dims.flatMap((d) => pb.int(1, d));
  const data = style === 'raw' ? pb.bytes(9, pb.floatsLE(values)) : pb.bytes(4, pb.floatsLE(values));
  return [...dimBytes, ...pb.int(2, 1), ...pb.string(8, name), ...data];
}

function nodeProto(op: string, name: string, inputs: string[], outputs: string[], attributes: number[][] = []): number[] {
  return [
    ...inputs.flatMap((i) => pb.string(1, i)),
    ...outputs.flatMap((o) => pb.string(2, o)),
    ...pb.string(3, name),
    ...pb.string(4, op),
    ...attributes.flatMap((a) => pb.bytes(5, a)),
  ];
}

describe('onnx-weights mapping rules', () => {
  // Three Linear layers exported three different ways, each with logical weight [[1, 2, 3], [4, 5, 6]] ([out=2, in=3]):
  //  a: MatMul on a constant-folded, pre-transposed initializer [3, 2] with a generated name;
  //  b: MatMul on Transpose(b.weight [2, 3]);
  //  c: Gemm transB=1 on c.weight [2, 3], float_data and unpacked dims.
  const graph = [
    ...pb.bytes(5, tensorProto('onnx::MatMul_7', [3, 2], [1, 4, 2, 5, 3, 6], 'raw')),
    ...pb.bytes(5, tensorProto('a.bias', [2], [0.5, -0.5], 'raw')),
    ...pb.bytes(5, tensorProto('b.weight', [2, 3], [1, 2, 3, 4, 5, 6], 'raw')),
    ...pb.bytes(5, tensorProto('c.weight', [2, 3], [1, 2, 3, 4, 5, 6], 'float_data')),
    ...pb.bytes(5, tensorProto('c.bias', [2], [1, 1], 'float_data')),
    ...pb.bytes(5, [...pb.bytes(1, pb.varint(1)), ...pb.int(2, 7), ...pb.string(8, 'shape_const')]), // INT64: skipped
    ...pb.bytes(1, nodeProto('MatMul', '/a/MatMul', ['x', 'onnx::MatMul_7'], ['a_mm'])),
    ...pb.bytes(1, nodeProto('Add', '/a/Add', ['a.bias', 'a_mm'], ['a_out'])),
    ...pb.bytes(1, nodeProto('Transpose', '/b/Transpose', ['b.weight'], ['b_wt'], [[...pb.string(1, 'perm'), ...pb.bytes(8, [1, 0])]])),
    ...pb.bytes(1, nodeProto('MatMul', '/b/MatMul', ['a_out', 'b_wt'], ['b_out'])),
    ...pb.bytes(1, nodeProto('Gemm', '/c/Gemm', ['b_out', 'c.weight', 'c.bias'], ['y'], [[...pb.string(1, 'transB'), ...pb.int(3, 1)]])),
    ...pb.bytes(1, nodeProto('MatMul', '/attn/MatMul', ['q', 'k'], ['s'])), // activations only: ignored
  ];
  const modelBytes = Uint8Array.from([...pb.int(1, 8), ...pb.bytes(7, graph)]);

  test('reads raw_data, float_data, packed and unpacked dims, and skips non-float tensors', () => {
    const raw = readOnnxInitializers(modelBytes);
    assert.deepEqual([...raw.keys()], ['onnx::MatMul_7', 'a.bias', 'b.weight', 'c.weight', 'c.bias']);
    assert.deepEqual(raw.get('c.weight')?.dims, [2, 3]);
    assert.deepEqual([...(raw.get('c.weight')?.data ?? [])], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...(raw.get('a.bias')?.data ?? [])], [0.5, -0.5]);
  });

  test('names and orients Linear weights by following the graph', () => {
    const params = namedParameters(parseOnnxModel(modelBytes));
    assert.deepEqual([...params.keys()].sort(), ['a.bias', 'a.weight', 'b.weight', 'c.bias', 'c.weight']);
    for (const name of ['a.weight', 'b.weight', 'c.weight']) {
      assert.deepEqual(params.get(name)?.dims, [2, 3], name);
      assert.deepEqual([...(params.get(name)?.data ?? [])], [1, 2, 3, 4, 5, 6], name);
    }
  });

  test('rejects bytes that are not a model', () => {
    assert.throws(() => parseOnnxModel(Uint8Array.from([0x3a, 0x05, 0x01])), /past its message|truncated/);
    assert.throws(() => parseOnnxModel(Uint8Array.from(pb.int(1, 8))), /no graph/);
  });
});

describe('createRuntime', () => {
  test('lists the valid names for an unknown runtime', async () => {
    assert.deepEqual(Object.keys(RUNTIMES).sort(), ['onnx', 'onnx-main-thread', 'tfjs']);
    assert.ok(Object.isFrozen(RUNTIMES));
    await assert.rejects(createRuntime('tensorrt', loadModel(defaultModelDir()), { threads: 1 }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /^Expected one of "onnx", "onnx-main-thread", "tfjs" for embed\.runtime but received "tensorrt" \(string\)$/);
      return true;
    });
  });
});
