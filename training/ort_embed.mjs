// Reference embeddings for parity checks: runs an ONNX model with onnxruntime-node (the runtime
// neardup ships with), since the Debian onnx package has no evaluator of its own.
//   node training/ort_embed.mjs <model.onnx> <pixels.f32> <count> <out.f32>
// pixels.f32: count×3×H×W float32 (already normalised); out.f32: count×D float32.
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, input, count, output] = process.argv.slice(2);
const n = Number(count);
const buf = readFileSync(input);
const pixels = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const side = Math.round(Math.sqrt(pixels.length / n / 3));
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
const result = await session.run({ pixels: new ort.Tensor('float32', pixels, [n, 3, side, side]) });
const out = result.embedding.data;
writeFileSync(output, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
