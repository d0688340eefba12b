/**
 * `node dist/scripts/hnsw-ef.js` — what the HNSW search list length (ef) costs and what it misses,
 * on a downstream catalog prepared by `npm run bench` (or `neardup prepare`).
 *
 *   node dist/scripts/hnsw-ef.js [--db <prepared catalog>] [--queries 1500] [--clean <folder>] [--ef 16,24,32,48,64]
 *
 * Queries are transformed copies (every eval family) of random downstream images; the truth is
 * every downstream image whose best view scores at or above the floor, found by brute force. A
 * miss is such an image absent from the 20 nearest vectors (what searchOne asks for at k = 10).
 * The cost is CPU per query on clean images (the common case): the first files of --clean.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Catalog } from '../src/state/catalog.js';
import { buildIndex } from '../src/ann/hnsw.js';
import { indexPathFor } from '../src/audit/session.js';
import { applyTransform, FAMILIES, type FamilyName } from '../src/eval/transforms.js';
import { decodeRead } from '../src/scan/decode.js';
import { createRuntime } from '../src/embed/backend/index.js';
import { loadModel } from '../src/embed/model-card.js';
import { VIEWS, writeNormalised } from '../src/embed/views.js';
import { defaultModelDir, packageRoot } from '../src/util/package-root.js';
import { mulberry32 } from '../src/util/rng.js';
import { SILENT } from '../src/util/progress-types.js';

const { values } = parseArgs({ options: {
  db: { type: 'string' }, queries: { type: 'string', default: '1500' }, ef: { type: 'string', default: '16,24,32,48,64' },
  clean: { type: 'string', default: join(packageRoot(), '.cache', 'bench', 'jpg64', 'up') },
} });
const model = loadModel(defaultModelDir());
const db = values.db ?? join(packageRoot(), '.cache', 'bench', 'downstream', `prepared-10000-${model.id.replace('@', '-')}.db`);
if (!existsSync(db)) throw new Error(`No prepared downstream catalog at ${db}: run \`npm run bench\` first or pass --db`);
const threshold = model.card.threshold!;
const floor = threshold - 0.05;

const catalog = Catalog.open(db, { readonly: true });
const sourceIds = catalog.sources().filter((s) => s.role === 'downstream').map((s) => s.id);
const dims = model.card.output.dims;
const index = buildIndex(catalog, { sourceIds, modelId: model.id, views: VIEWS.length, dims, path: indexPathFor(db, model.card.name) }, SILENT);
if (!index.loadedFromDisk) console.log('(the saved index did not match; built one in memory)');
const paths = new Map((catalog.db.prepare(`SELECT id, path FROM images WHERE status = 'ok'`).all() as { id: number; path: string }[]).map((r) => [r.id, r.path]));

const runtime = await createRuntime('onnx-main-thread', model, { threads: 2 });
const { size, mean, std } = model.card.input;
async function embed(bytes: Buffer): Promise<Float32Array> {
  const d = await decodeRead(bytes, '', null, { size });
  if (!d.ok || !d.rgb) throw new Error(`cannot decode a query image${d.ok ? '' : `: ${d.error}`}`);
  const px = new Float32Array(3 * size * size);
  writeNormalised(d.rgb, size, mean, std, px, 0);
  return runtime.embed(px, 1);
}

const rng = mulberry32(7);
const families = Object.keys(FAMILIES) as FamilyName[];
const queries: Float32Array[] = [];
for (let q = 0; q < Number(values.queries); q++) {
  const source = index.ids[Math.floor(rng() * index.ids.length)]!;
  const t = await applyTransform(readFileSync(paths.get(source)!), families[q % families.length]!, rng);
  queries.push(await embed(t.data));
}
const cleanFiles = readdirSync(values.clean!).filter((f) => !f.startsWith('.')).sort().slice(0, 3000);
const clean = await Promise.all(cleanFiles.map((f) => embed(readFileSync(join(values.clean!, f)))));
await runtime.dispose();

/** Every downstream image at or above the floor for this query, with its best-view score. */
function truthOf(q: Float32Array): Map<number, number> {
  const found = new Map<number, number>();
  for (const [id, v] of index.vectors) {
    let best = -Infinity;
    for (let k = 0; k < index.views; k++) {
      let dot = 0;
      for (let i = 0; i < dims; i++) dot += v[k * dims + i]! * q[i]!;
      best = Math.max(best, dot);
    }
    if (best >= floor) found.set(id, best);
  }
  return found;
}
const truths = queries.map(truthOf);
const pairs = truths.reduce((n, t) => n + t.size, 0);
const above = truths.reduce((n, t) => n + [...t.values()].filter((s) => s >= threshold).length, 0);
console.log(`${model.id}; ${index.ids.length} downstream images × ${index.views} views; ${queries.length} transformed copies: ${pairs} pairs at or above the floor ${floor.toFixed(3)}, ${above} at or above the threshold ${threshold}; cost on ${clean.length} clean images\n`);
console.log('| ef | missed ≥ floor | missed ≥ threshold | µs per query (clean) |');
console.log('|---|---|---|---|');
for (const ef of values.ef!.split(',').map(Number)) {
  index.hnsw.setEf(ef);
  let missed = 0, missedAbove = 0;
  queries.forEach((q, i) => {
    const found = new Set(index.hnsw.searchKnn(Array.from(q), 20).neighbors.map((label) => Math.floor(label / index.views)));
    for (const [id, score] of truths[i]!) if (!found.has(id)) { missed++; if (score >= threshold) missedAbove++; }
  });
  const arrays = clean.map((q) => Array.from(q));
  const cpu0 = process.cpuUsage();
  for (const q of arrays) index.hnsw.searchKnn(q, 20);
  const cpu = process.cpuUsage(cpu0);
  console.log(`| ${ef} | ${missed} / ${pairs} | ${missedAbove} / ${above} | ${((cpu.user + cpu.system) / arrays.length).toFixed(0)} |`);
}
catalog.close();
