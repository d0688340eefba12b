/**
 * Make the int8 model from the float one: calibrate activation ranges on real photos with
 * onnxruntime, then let training/quantize.py rewrite the graph (see its docstring for the method).
 *
 *   node dist/scripts/quantize.js [--model models/neardup-vit-s8] [--images ../shared/data/tiny-imagenet/train]
 *                                 [--count 2000] [--out models/neardup-vit-s8-int8] [--python /usr/bin/python3]
 *
 * Calibration photos go through neardup's own decoder, each in one of the 8 views the audit uses,
 * so the ranges are those the model meets. Never calibrate on the evaluation photos (val/).
 * Afterwards: `neardup eval ../shared/data/tiny-imagenet/val --model <out> --write-card`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { decodeImage } from '../src/scan/decode.js';
import { loadModel } from '../src/embed/model-card.js';
import { applyView, VIEWS, writeNormalised } from '../src/embed/views.js';
import { listSource, parseSource } from '../src/sources/list.js';
import { packageRoot } from '../src/util/package-root.js';

const { values } = parseArgs({ options: {
  model: { type: 'string', default: join(packageRoot(), 'models', 'neardup-vit-s8') },
  images: { type: 'string', default: join(packageRoot(), '..', 'shared', 'data', 'tiny-imagenet', 'train') },
  count: { type: 'string', default: '2000' },
  out: { type: 'string', default: join(packageRoot(), 'models', 'neardup-vit-s8-int8') },
  python: { type: 'string', default: '/usr/bin/python3' },
} });

/** Every image of a folder, in neardup's listing order, then `count` of them spread evenly. */
async function pick(root: string, count: number): Promise<string[]> {
  const all: string[] = [];
  for await (const page of listSource(parseSource(root, '--images'))) all.push(...page.files.map((f) => f.path));
  if (all.length === 0) throw new Error(`no images under ${root}: pass --images <folder of photos>`);
  const step = Math.max(1, all.length / count);
  return Array.from({ length: Math.min(count, all.length) }, (_, i) => all[Math.floor(i * step)]!);
}

async function main() {
  const model = loadModel(values.model!);
  const work = join(packageRoot(), '.cache', 'quantize');
  mkdirSync(work, { recursive: true });
  const tapsModel = join(work, 'taps.onnx');
  const tapsList = join(work, 'taps.json');
  const script = join(packageRoot(), 'training', 'quantize.py');
  execFileSync(values.python!, [script, 'taps', '--model', model.dir, '--out', tapsModel, '--list', tapsList], { stdio: 'inherit' });
  const taps = (await import(tapsList, { with: { type: 'json' } })).default as string[];

  const files = await pick(values.images!, Number(values.count));
  const { size, mean, std } = model.card.input;
  const session = await ort.InferenceSession.create(tapsModel, { intraOpNumThreads: 2 });
  const ranges = new Map<string, [number, number]>(taps.map((t) => [t, [Infinity, -Infinity]]));
  const batch = 32;
  for (let start = 0; start < files.length; start += batch) {
    const chunk = files.slice(start, start + batch);
    const pixels = new Float32Array(chunk.length * 3 * size * size);
    const decoded = await Promise.all(chunk.map((f) => decodeImage(f, { size })));
    decoded.forEach((d, i) => {
      if (!d.ok) throw new Error(`${chunk[i]}: ${d.error}`);
      writeNormalised(applyView(d.rgb!, size, (start + i) % VIEWS.length), size, mean, std, pixels, i);
    });
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', pixels, [chunk.length, 3, size, size]) });
    for (const t of taps) {
      const r = ranges.get(t)!;
      for (const v of out[t]!.data as Float32Array) {
        if (v < r[0]) r[0] = v;
        if (v > r[1]) r[1] = v;
      }
    }
  }
  await session.release();
  const rangesFile = join(work, 'ranges.json');
  writeFileSync(rangesFile, JSON.stringify({ source: `${files.length} photos from ${values.images} (8 views in turn)`, ranges: Object.fromEntries(ranges) }, null, 2));
  execFileSync(values.python!, [script, 'write', '--model', model.dir, '--ranges', rangesFile, '--out', values.out!], { stdio: 'inherit' });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
