/**
 * How fast report.html's review view opens at scale: a real catalog with generated images and
 * 50,000 matched pairs (each with an alignment, so every pair has an overlay), the review files
 * written by the report's own code (review-data.js, thumbnails and overlays under thumbs/), then
 * the page opened from disk in Debian's Chromium (playwright-core) and timed until the review is
 * interactive: the first page of pairs rendered, and a key press moving to the next pair.
 *
 *   node dist/scripts/bench-report.js [--pairs 50000] [--upstream 10000] [--downstream 2000] [--work .cache/bench-report] [--runs 3]
 *
 * Pairs are spread over the images (pairs ÷ upstream candidates per upstream image, as an audit
 * with k candidates each would store). The catalog and pictures are kept in --work and reused
 * by the next run (pictures are written once), so the first run also measures writing them.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { Catalog, type MatchRow } from '../src/state/catalog.js';
import { candidates } from '../src/state/queries.js';
import { writeReviewFiles } from '../src/report/review.js';
import { renderReport } from '../src/report/html.js';
import { mulberry32 } from '../src/util/rng.js';

const CHROMIUM = '/usr/bin/chromium';
const MODEL = 'bench@report';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '50000' }, upstream: { type: 'string', default: '10000' }, downstream: { type: 'string', default: '2000' },
    work: { type: 'string', default: '.cache/bench-report' }, runs: { type: 'string', default: '3' },
  },
});
const PAIRS = Number(values.pairs);
const UP = Number(values.upstream);
const DOWN = Number(values.downstream);
const WORK = resolve(values.work!);

/** A 64×64 JPEG of smooth random blobs: real, decodable, and different for every seed. */
async function makeImage(path: string, seed: number): Promise<void> {
  const rnd = mulberry32(seed);
  const side = 64;
  const rgb = Buffer.alloc(side * side * 3);
  const blobs = Array.from({ length: 5 }, () => ({ x: rnd() * side, y: rnd() * side, r: 6 + rnd() * 20, c: [rnd() * 255, rnd() * 255, rnd() * 255] }));
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const o = (y * side + x) * 3;
      for (let ch = 0; ch < 3; ch++) rgb[o + ch] = 40 + ((x + y) * ch) % 60;
      for (const b of blobs) if ((x - b.x) ** 2 + (y - b.y) ** 2 < b.r ** 2) for (let ch = 0; ch < 3; ch++) rgb[o + ch] = b.c[ch]!;
    }
  }
  await sharp(rgb, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 85 }).toFile(path);
}

async function makeFiles(dir: string, n: number, seed0: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const limit = pLimit(4);
  const paths = Array.from({ length: n }, (_, i) => join(dir, `${String(i).padStart(6, '0')}.jpg`));
  await Promise.all(paths.map((p, i) => limit(() => (existsSync(p) ? undefined : makeImage(p, seed0 + i)))));
  return paths;
}

/** The catalog an audit of these files would leave: images decoded (hash of the bytes), and PAIRS verified matches. */
async function buildCatalog(): Promise<{ catalog: Catalog; up: number; down: number }> {
  const ups = await makeFiles(join(WORK, 'upstream'), UP, 1);
  const downs = await makeFiles(join(WORK, 'downstream'), DOWN, 1_000_000);
  const catalog = Catalog.open(join(WORK, 'catalog.db'));
  const up = catalog.upsertSource('upstream', join(WORK, 'upstream'), join(WORK, 'upstream'));
  const down = catalog.upsertSource('downstream', join(WORK, 'downstream'), join(WORK, 'downstream'));
  const existing = (catalog.db.prepare('SELECT COUNT(*) AS n FROM matches WHERE model_id = ?').get(MODEL) as { n: number }).n;
  if (existing === PAIRS) return { catalog, up, down };
  for (const [source, paths] of [[up, ups], [down, downs]] as const) {
    catalog.recordListed(source, paths.map((p) => ({ key: p.slice(p.lastIndexOf('/') + 1), path: p, bytes: statSync(p).size, mtimeMs: statSync(p).mtimeMs })));
  }
  const ids = catalog.db.prepare("SELECT id, path FROM images WHERE status = 'pending'").all() as { id: number; path: string }[];
  const { readFileSync } = await import('node:fs');
  catalog.commitDecoded(ids.map((r) => ({ id: r.id, hash: createHash('sha1').update(readFileSync(r.path)).digest('hex'), width: 64, height: 64 })), [], undefined, []);
  const idOf = new Map((catalog.db.prepare('SELECT id, path FROM images').all() as { id: number; path: string }[]).map((r) => [r.path, r.id]));
  const rnd = mulberry32(7);
  const rows: MatchRow[] = [];
  const seen = new Set<string>();
  for (let i = 0; rows.length < PAIRS; i++) {
    const u = idOf.get(ups[i % UP]!)!;
    const d = idOf.get(downs[Math.floor(rnd() * DOWN)]!)!;
    if (seen.has(`${u}:${d}`)) continue;
    seen.add(`${u}:${d}`);
    const verify = 0.65 + rnd() * 0.35;
    const alignment = { verifier: 'bench', view: 0, zoom: 0.9 + rnd() * 0.3, angle: (rnd() - 0.5) * 20, shiftX: (rnd() - 0.5) * 0.1, shiftY: (rnd() - 0.5) * 0.1, overlap: 0.8, ncc: verify, affine: [] };
    rows.push({ upstreamId: u, downstreamId: d, score: 0.6 + rnd() * 0.4, view: 0, kind: 'embedding', decision: 'match',
      reason: `aligned: zoom ${alignment.zoom.toFixed(2)}, ${Math.round(alignment.overlap * 100)}% overlap, correlation ${verify.toFixed(2)} ≥ 0.629 (cosine 0.7000)`,
      verifyScore: verify, alignment: JSON.stringify(alignment) });
  }
  catalog.resetMatches(MODEL, 'bench');
  catalog.commitMatches(MODEL, rows, 0, true);
  return { catalog, up, down };
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium`);
  mkdirSync(WORK, { recursive: true });
  let t = performance.now();
  const { catalog, up, down } = await buildCatalog();
  console.log(`catalog: ${UP} upstream + ${DOWN} downstream generated 64×64 JPEGs, ${PAIRS} matched pairs (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const out = join(WORK, 'out');
  t = performance.now();
  const all = candidates(catalog, MODEL, [up], [down]);
  const review = await writeReviewFiles(catalog, out, all, { threshold: 0.629, verify: true, catalogPath: catalog.path });
  catalog.close();
  console.log(`review files: ${review.pairs} pairs; thumbnails ${JSON.stringify(review.thumbs)}, overlays ${JSON.stringify(review.overlays)} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  console.log(`review-data.js: ${(statSync(join(out, 'review-data.js')).size / 1e6).toFixed(1)} MB`);
  writeFileSync(join(out, 'report.html'), renderReport({
    title: 'neardup bench', generatedAt: new Date().toISOString(), modelId: MODEL, threshold: 0.629,
    counts: { upstream: UP, downstream: DOWN, matched: UP, kept: 0, errors: 0 }, perDownstream: [], pairs: [],
    candidateScores: all.map((c) => c.score), errorsByReason: [], review,
  }));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const times: number[] = [];
  const inPage: number[] = [];
  try {
    for (let run = 0; run < Number(values.runs); run++) {
      const page = await (await browser.newContext()).newPage();
      const t0 = performance.now();
      await page.goto(pathToFileURL(join(out, 'report.html')).href, { waitUntil: 'commit' });
      await page.waitForSelector('#review[data-ready="1"]', { timeout: 60_000 });
      inPage.push(Number(await page.getAttribute('#review', 'data-ready-ms')));
      await page.keyboard.press('j');
      await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector('#review .rv-status')?.textContent.startsWith('Pair 2 of'));
      times.push(performance.now() - t0);
      await page.context().close();
    }
  } finally {
    await browser.close();
  }
  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`time to interactive (navigation → first page rendered → 'j' moved the focus), ${times.length} runs: ${times.map(fmt).join(', ')}; median ${fmt([...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!)}`);
  console.log(`review ready in the page (performance.now() at the first page rendered): ${inPage.map(fmt).join(', ')}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.versions.node}`);
}

await main();
