/**
 * `npm run bench` — throughput and memory of every part of the audit, measured in one run on
 * the same inputs, and the limit ratio: end-to-end images/s ÷ 2/(t_decode + t_embed), where t
 * are measured core-seconds per image (1.0 = both cores do nothing but useful work).
 *
 *   npm run bench -- [--kinds png32,jpg64,jpg500] [--upstream 10000,100000] [--downstream 10000] [--batch 32] [--work .cache/bench]
 *
 * Inputs are generated from ../shared/data/tiny-imagenet/val when present (64×64 photos;
 * 32×32 PNG are downscaled, ~500×375 JPEG are upscaled: say so when quoting numbers), else
 * procedural. Each copy gets a unique pixel so exact-duplicate reuse cannot inflate the rates.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import sharp from 'sharp';
import hnswlib from 'hnswlib-node';
import { EF_SEARCH, HNSW_PARAMS } from '../src/ann/hnsw.js';
import { decodeImage } from '../src/scan/decode.js';
import { createRuntime } from '../src/embed/backend/index.js';
import { loadModel } from '../src/embed/model-card.js';
import { DOWNSTREAM_VIEWS, writeNormalised } from '../src/embed/views.js';
import { defaultModelDir, packageRoot } from '../src/util/package-root.js';
import { mulberry32 } from '../src/util/rng.js';

const KINDS = {
  png32: { side: [32, 32], format: 'png' },
  jpg64: { side: [64, 64], format: 'jpg' },
  jpg500: { side: [500, 375], format: 'jpg' },
} as const;
type Kind = keyof typeof KINDS;

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/**
 * Val photos [from, from + count). Upstream and downstream copies come from disjoint slices, so
 * the corpus is clean apart from chance look-alikes, like a real one (a benchmark whose every
 * upstream image copies a test image measures the report, not the audit).
 */
function sourcePhotos(from: number, count: number): Buffer[] {
  const dir = join(packageRoot(), '..', 'shared', 'data', 'tiny-imagenet', 'val');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().slice(from, from + count).map((f) => readFileSync(join(dir, f)));
}

async function procedural(i: number): Promise<Buffer> {
  const rng = mulberry32(i);
  const raw = Buffer.alloc(64 * 64 * 3);
  const [a, b, c] = [rng() * 6, rng() * 6, rng() * 255];
  for (let p = 0; p < 64 * 64; p++) {
    const x = p % 64, y = Math.floor(p / 64);
    raw[p * 3] = (Math.sin(x / (a + 1)) * 127 + 128) | 0;
    raw[p * 3 + 1] = (Math.cos(y / (b + 1)) * 127 + 128) | 0;
    raw[p * 3 + 2] = (c + x * y) % 256;
  }
  return sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
}

/** Write n unique images of a kind into dir (cached between runs; an interrupted run continues). */
async function generate(kind: Kind, n: number, dir: string, offset: number, photos: Buffer[]): Promise<void> {
  const marker = join(dir, `.complete-${n}-v2`);
  if (existsSync(marker)) return;
  mkdirSync(dir, { recursive: true });
  const present = new Set(readdirSync(dir));
  const { side, format } = KINDS[kind];
  const limit = pLimit(4);
  await Promise.all(Array.from({ length: n }, (_, i) => limit(async () => {
    if (present.has(`${String(i).padStart(7, '0')}.${format}`)) return;
    const src = photos.length ? photos[(offset + i) % photos.length]! : await procedural(offset + i);
    const { data } = await sharp(src).resize(side[0], side[1], { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    data[0] = (offset + i) % 256; // unique decoded pixels per copy
    data[1] = Math.floor((offset + i) / 256) % 256;
    data[2] = Math.floor((offset + i) / 65536) % 256;
    const img = sharp(data, { raw: { width: side[0], height: side[1], channels: 3 } });
    const out = format === 'png' ? await img.png().toBuffer() : await img.jpeg({ quality: 90 }).toBuffer();
    writeFileSync(join(dir, `${String(i).padStart(7, '0')}.${format}`), out);
  })));
  writeFileSync(marker, '');
}

async function decodeOnly(dir: string, n: number, concurrency: number, size: number) {
  const files = readdirSync(dir).filter((f) => !f.startsWith('.')).slice(0, n).map((f) => join(dir, f));
  const limit = pLimit(concurrency);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(files.map((f) => limit(() => decodeImage(f, { size }))));
  const wall = (performance.now() - t0) / 1000;
  return { perSecond: files.length / wall, coreSecondsPerImage: cpuSeconds(process.cpuUsage(cpu0)) / files.length };
}

async function embedOnly(modelDir: string, n: number, batch: number, threads: number) {
  const model = loadModel(modelDir);
  const runtime = await createRuntime('onnx', model, { threads });
  const { size, mean, std } = model.card.input;
  const rgb = new Uint8Array(size * size * 3).map((_, i) => (i * 37) % 256);
  const pixels = new Float32Array(batch * 3 * size * size);
  for (let s = 0; s < batch; s++) writeNormalised(rgb, size, mean, std, pixels, s);
  // Warm every session (first runs allocate), then measure long enough to average out jitter.
  await Promise.all(Array.from({ length: runtime.parallelism * 2 }, () => runtime.embed(pixels, batch)));
  const rounds = Math.max(1, Math.round(n / batch));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // As many batches at once as the runtime has sessions, as the audit keeps them.
  for (let r = 0; r < rounds; r += runtime.parallelism) {
    await Promise.all(Array.from({ length: Math.min(runtime.parallelism, rounds - r) }, () => runtime.embed(pixels, batch)));
  }
  const wall = (performance.now() - t0) / 1000;
  await runtime.dispose();
  return { perSecond: (rounds * batch) / wall, coreSecondsPerImage: cpuSeconds(process.cpuUsage(cpu0)) / (rounds * batch) };
}

function hnswRates(n: number, dims: number) {
  const rng = mulberry32(7);
  const vec = () => { const v = Array.from({ length: dims }, () => rng() - 0.5); const s = Math.hypot(...v); return v.map((x) => x / s); };
  const index = new hnswlib.HierarchicalNSW('ip', dims);
  index.initIndex(n, HNSW_PARAMS.M, HNSW_PARAMS.efConstruction, HNSW_PARAMS.seed);
  const data = Array.from({ length: n }, vec);
  let t0 = performance.now();
  data.forEach((v, i) => index.addPoint(v, i));
  const build = n / ((performance.now() - t0) / 1000);
  index.setEf(EF_SEARCH);
  const queries = Array.from({ length: 5000 }, vec);
  t0 = performance.now();
  for (const q of queries) index.searchKnn(q, 20);
  return { buildPerSecond: build, queriesPerSecond: queries.length / ((performance.now() - t0) / 1000) };
}

/** Run one library call in a child process, so that its peak RSS is its own. */
function child<T>(call: string): Promise<T & { seconds: number; cpuSeconds: number; maxRssMB: number }> {
  const code = `import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)}).then(async (m) => {
    const t0 = performance.now();
    const r = await ${call};
    const cpu = process.cpuUsage();
    console.log(JSON.stringify({ ...r, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
  })`;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.on('close', (c) => (c === 0 ? resolve(JSON.parse(stdout.trim().split('\n').pop()!)) : reject(new Error(`child exited ${c}`))));
  });
}

/** The downstream side once: embedded in all its views and indexed, shared read-only by every audit. */
function prepareChild(down: string, db: string) {
  return child<{ images: number }>(`m.prepare({ downstream: [${JSON.stringify(down)}], db: ${JSON.stringify(db)} })`);
}

/** An upstream audit against the prepared downstream side (what every shard of a large run does), with the verify stage on or off. */
function auditChild(up: string, downstreamDb: string, out: string, runtime: string, verify: string) {
  return child<{ upstream: number; upstreamSeconds: number; verifySeconds: number; verifyPairs: number; candidates: number }>(`m.audit({ upstream: [${JSON.stringify(up)}], downstreamDb: ${JSON.stringify(downstreamDb)}, out: ${JSON.stringify(out)}, runtime: ${JSON.stringify(runtime)}, verify: ${JSON.stringify(verify)} })
      .then((r) => ({ upstream: r.summary.counts.upstream, upstreamSeconds: r.summary.timings.embedUpstream + r.summary.timings.match,
        verifySeconds: r.summary.timings.verify ?? 0, verifyPairs: r.summary.timings.verifyPairs ?? 0, candidates: r.summary.counts.candidates }))`);
}

const fmt = (x: number) => x.toFixed(0);

async function main() {
  const { values } = parseArgs({ options: {
    kinds: { type: 'string', default: 'png32,jpg64,jpg500' }, upstream: { type: 'string', default: '10000,100000' },
    downstream: { type: 'string', default: '10000' }, runtimes: { type: 'string', default: 'onnx' }, work: { type: 'string', default: join(packageRoot(), '.cache', 'bench') },
    batch: { type: 'string', default: '32' }, verify: { type: 'string', default: 'on,off' },
  } });
  const kinds = values.kinds!.split(',') as Kind[];
  const ups = values.upstream!.split(',').map(Number);
  const downN = Number(values.downstream);
  const batch = Number(values.batch);
  const modelDir = defaultModelDir();
  const model = loadModel(modelDir);
  const threads = cpus().length;
  console.log(`machine: ${cpus().length}× ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.versions.node}; model ${model.id}`);
  const photos = sourcePhotos(0, 5000);
  const downPhotos = sourcePhotos(5000, 5000);
  console.log(`inputs: ${photos.length ? 'tiny-imagenet val photos 0-4999 (upstream) and 5000-9999 (downstream), resized per kind' : 'procedural images (../shared absent)'}; each copy unique\n`);
  const h = hnswRates(downN * 8, model.card.output.dims);
  console.log(`HNSW (${downN * 8} vectors, ${model.card.output.dims}-d, M${HNSW_PARAMS.M} ef${HNSW_PARAMS.efConstruction}): build ${fmt(h.buildPerSecond)}/s, query (k20, ef${EF_SEARCH}) ${fmt(h.queriesPerSecond)}/s`);

  // One downstream set (jpg64, the kind of the test sets neardup audits most) prepared once.
  const downDir = join(values.work!, 'downstream', 'images-v2');
  await generate('jpg64', downN, downDir, 1_000_000, downPhotos);
  const downDb = join(values.work!, 'downstream', `prepared-${downN}-${model.id.replace('@', '-')}.db`);
  const reused = existsSync(downDb);
  const prep = await prepareChild(downDir, downDb);
  console.log(reused
    ? `downstream: ${prep.images} jpg64 images × ${DOWNSTREAM_VIEWS} views, prepared by an earlier run (${downDb}; delete it to measure the preparation)\n`
    : `downstream: ${prep.images} jpg64 images × ${DOWNSTREAM_VIEWS} views prepared once in ${prep.seconds.toFixed(1)} s (${fmt((prep.images * DOWNSTREAM_VIEWS) / prep.seconds)} views/s), peak RSS ${fmt(prep.maxRssMB)} MB\n`);

  console.log('| input | runtime | verify | upstream | decode-only img/s | embed-only img/s | audit img/s (whole run) | audit img/s (upstream side) | limit img/s | limit ratio | peak RSS MB | candidates | verify pairs/s | CPU: verify / decode+model / rest |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const embedCosts: string[] = [];
  // Embed-only is measured right before and right after every audit, and the audit's limit uses
  // the mean of the two: this machine's speed drifts by up to ±20% within a run.
  const measureEmbed = () => embedOnly(modelDir, 8192, batch, threads);
  let embedBefore = await measureEmbed();
  for (const kind of kinds) {
    const maxUp = Math.max(...ups);
    const upDir = join(values.work!, kind, 'up');
    await generate(kind, maxUp, upDir, 0, photos);
    const dec = await decodeOnly(upDir, Math.min(maxUp, 3000), 8, model.card.input.size);
    for (const [runtime, verify] of values.runtimes!.split(',').flatMap((rt) => values.verify!.split(',').map((v) => [rt, v] as const))) {
      const slope: { n: number; s: number }[] = [];
      for (const n of ups) {
        const listDir = join(values.work!, kind, `list-${n}`);
        mkdirSync(listDir, { recursive: true });
        const list = join(listDir, 'up.txt');
        writeFileSync(list, readdirSync(upDir).filter((f) => !f.startsWith('.')).sort().slice(0, n).map((f) => join(upDir, f)).join('\n'));
        const out = join(values.work!, kind, `out-${n}`);
        rmSync(out, { recursive: true, force: true });
        const r = await auditChild(`list:${list}`, downDb, out, runtime, verify);
        const embedAfter = await measureEmbed();
        const emb = { perSecond: (embedBefore.perSecond + embedAfter.perSecond) / 2, coreSecondsPerImage: (embedBefore.coreSecondsPerImage + embedAfter.coreSecondsPerImage) / 2 };
        embedCosts.push(`${embedBefore.coreSecondsPerImage.toExponential(2)}/${embedAfter.coreSecondsPerImage.toExponential(2)}`);
        embedBefore = embedAfter;
        const limit = 2 / (dec.coreSecondsPerImage + emb.coreSecondsPerImage);
        const upSide = r.upstream / r.upstreamSeconds;
        slope.push({ n, s: r.seconds });
        // CPU shares of the whole process: the verifier's own time (single-threaded, on the main
        // thread), decode + model at their measured cost per image, and the rest (matching, catalog, reading).
        const modelCpu = r.upstream * (dec.coreSecondsPerImage + emb.coreSecondsPerImage);
        const share = (x: number) => `${((100 * x) / r.cpuSeconds).toFixed(0)}%`;
        const verifyRate = r.verifySeconds > 0 ? fmt(r.verifyPairs / r.verifySeconds) : '–';
        console.log(`| ${kind} | ${runtime} | ${verify} | ${n} | ${fmt(dec.perSecond)} | ${fmt(emb.perSecond)} | ${fmt(r.upstream / r.seconds)} | ${fmt(upSide)} | ${fmt(limit)} | ${(upSide / limit).toFixed(2)} | ${fmt(r.maxRssMB)} | ${r.candidates} | ${verifyRate} (${r.verifyPairs} pairs) | ${share(r.verifySeconds)} / ${share(modelCpu)} / ${share(r.cpuSeconds - r.verifySeconds - modelCpu)} |`);
      }
      if (slope.length >= 2) {
        const [a, b] = [slope[0]!, slope[slope.length - 1]!];
        const perImage = (b.s - a.s) / (b.n - a.n);
        console.log(`|  | ${runtime} | ${verify} | 1,000,000 (extrapolated from the slope ${a.n}→${b.n}) |  |  |  | ${fmt(1 / perImage)} |  |  | est. ${((a.s + perImage * (1e6 - a.n)) / 3600).toFixed(2)} h in all |`);
      }
    }
  }
  console.log(`\nlimit = 2 / (t_decode + t_embed) with t in core-seconds per image: decode measured per kind; embed (on pre-decoded tensors, batch ${batch}, ${threads} threads) measured before/after each audit row (${embedCosts.join(', ')} core-s/img), the row's limit from their mean.`);
  console.log('Audits run against the prepared downstream side (audit --downstream-db), as every shard of a large run does; "whole run" includes loading it and writing the outputs.');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
