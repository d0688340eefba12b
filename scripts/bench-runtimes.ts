/**
 * Throughput of each embedding runtime on the shipped model at batch 32 (inference only: inputs
 * are synthetic, already normalised, so decode cost is excluded). Not a test.
 *
 *   node dist/scripts/bench-runtimes.js [--threads 1] [--seconds 3] [--model models/neardup-vit-s8]
 */
import { parseArgs } from 'node:util';
import { createRuntime, RUNTIMES } from '../src/embed/backend/index.js';
import { loadModel } from '../src/embed/model-card.js';
import { defaultModelDir } from '../src/util/package-root.js';

const BATCH = 32;

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '3' },
    model: { type: 'string' },
  },
});
const threads = Number(values.threads);
const seconds = Number(values.seconds);
const model = loadModel(values.model ?? defaultModelDir());
const size = model.card.input.size;

// Deterministic pseudo-normal pixels (sum of uniforms): the same work on every run.
const pixels = new Float32Array(BATCH * 3 * size * size);
let state = 12345;
for (let i = 0; i < pixels.length; i++) {
  let sum = 0;
  for (let k = 0; k < 4; k++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    sum += state / 4294967296;
  }
  pixels[i] = sum - 2;
}

console.log(`model ${model.id}, batch ${BATCH}, ${threads} thread(s), ~${seconds} s per runtime`);
for (const name of Object.keys(RUNTIMES)) {
  const runtime = await createRuntime(name, model, { threads });
  try {
    await runtime.embed(pixels, BATCH); // warm-up: first run allocates and, on wasm, compiles
    let images = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      await runtime.embed(pixels, BATCH);
      images += BATCH;
    }
    const elapsed = (performance.now() - start) / 1000;
    console.log(`${name.padEnd(5)} ${runtime.name.padEnd(17)} ${(images / elapsed).toFixed(1).padStart(8)} images/s`);
  } finally {
    await runtime.dispose();
  }
}
