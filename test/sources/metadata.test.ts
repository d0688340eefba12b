/**
 * Source metadata: CIFAR labels (and their names from the official side files) and ImageNet-style
 * class folders land in images.meta, then in the meta columns of matches.csv / candidates.csv,
 * in summary.json's contamination_by_label and in report.html; a shard merge reproduces them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { audit } from '../../src/audit/run.js';
import { parseCsv } from '../../src/report/csv.js';
import { mergeShards } from '../../src/report/merge.js';
import { listSource, parseSource } from '../../src/sources/list.js';
import { Catalog } from '../../src/state/catalog.js';
import { cifar100Batch, cifar10Batch } from '../helpers/archives.js';

const CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** A deterministic 32×32 RGB image (pixels do not matter to listing). */
const rgb = (seed: number) => Buffer.from(Array.from({ length: 3072 }, (_, i) => (i * 7 + seed * 31) % 256));

/** List a source into a fresh catalog and read back images.meta per key (null when none). */
async function catalogMetas(spec: string): Promise<Map<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-meta-db-'));
  const catalog = Catalog.open(join(dir, 'neardup.db'));
  try {
    const parsed = parseSource(spec);
    const id = catalog.upsertSource('downstream', spec, parsed.root);
    for await (const page of listSource(parsed, { pageSize: 64 })) {
      assert.deepEqual(page.errors, []);
      catalog.recordListed(id, page.files);
    }
    const rows = catalog.db.prepare('SELECT key, meta FROM images ORDER BY key').all() as { key: string; meta: string | null }[];
    return new Map(rows.map((r) => [r.key, r.meta === null ? null : JSON.parse(r.meta)]));
  } finally {
    catalog.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('CIFAR-10: each record gets its label, and its name from batches.meta.txt', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-meta-c10-'));
  const labels = [3, 0, 9, 3, 7];
  writeFileSync(join(dir, 'test_batch.bin'), cifar10Batch(labels.map((label, i) => ({ label, rgb: rgb(i) }))));
  // More records than one read chunk (256), so labels are collected across chunks.
  const trainLabels = Array.from({ length: 300 }, (_, i) => (i * 3) % 10);
  writeFileSync(join(dir, 'data_batch_2.bin'), cifar10Batch(trainLabels.map((label, i) => ({ label, rgb: rgb(i) }))));

  const unnamed = await catalogMetas(`cifar10:${dir}`);
  assert.equal(unnamed.size, labels.length + trainLabels.length);
  labels.forEach((label, i) => assert.deepEqual(unnamed.get(`test/00000${i}`), { label }, 'no side file: the label alone'));

  // The official file: one name per line, then blank lines.
  writeFileSync(join(dir, 'batches.meta.txt'), `${CIFAR10_NAMES.join('\n')}\n\n`);
  const named = await catalogMetas(`cifar10:${dir}`);
  labels.forEach((label, i) => assert.deepEqual(named.get(`test/00000${i}`), { label, label_name: CIFAR10_NAMES[label] }));
  trainLabels.forEach((label, i) => assert.deepEqual(named.get(`train/${String(10_000 + i).padStart(6, '0')}`), { label, label_name: CIFAR10_NAMES[label] }, `record ${i}`));

  // A single batch file named directly finds the side file next to it too.
  const single = await catalogMetas(`cifar10:${join(dir, 'test_batch.bin')}`);
  assert.deepEqual(single.get('test/000004'), { label: 7, label_name: 'horse' });
  rmSync(dir, { recursive: true, force: true });
});

test('CIFAR-100: coarse and fine labels, with names from the two side files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-meta-c100-'));
  const records = [{ coarse: 4, fine: 0 }, { coarse: 1, fine: 3 }, { coarse: 19, fine: 99 }];
  writeFileSync(join(dir, 'test.bin'), cifar100Batch(records.map((r, i) => ({ ...r, rgb: rgb(i) }))));
  const coarse = Array.from({ length: 20 }, (_, i) => `coarse_${i}`);
  const fine = Array.from({ length: 100 }, (_, i) => `fine_${i}`);
  writeFileSync(join(dir, 'coarse_label_names.txt'), `${coarse.join('\n')}\n`);
  writeFileSync(join(dir, 'fine_label_names.txt'), `${fine.join('\r\n')}\r\n`);
  const metas = await catalogMetas(`cifar100:${dir}`);
  assert.deepEqual([...metas.keys()], ['test/000000', 'test/000001', 'test/000002']);
  records.forEach((r, i) => assert.deepEqual(metas.get(`test/00000${i}`), {
    coarse_label: r.coarse, fine_label: r.fine, coarse_label_name: coarse[r.coarse], fine_label_name: fine[r.fine],
  }));

  rmSync(join(dir, 'coarse_label_names.txt'));
  const noCoarse = await catalogMetas(`cifar100:${dir}`);
  assert.deepEqual(noCoarse.get('test/000002'), { coarse_label: 19, fine_label: 99, fine_label_name: 'fine_99' });
  rmSync(dir, { recursive: true, force: true });
});

test('folder, glob and list sources: the first folder of the key is the class', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-meta-cls-'));
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer();
  for (const key of ['n01443537/a.png', 'n01443537/deeper/b.png', 'n09999999/c.png', 'root.png']) {
    mkdirSync(join(dir, 'imgs', key, '..'), { recursive: true });
    writeFileSync(join(dir, 'imgs', key), png);
  }
  const expected = { 'n01443537/a.png': { class: 'n01443537' }, 'n01443537/deeper/b.png': { class: 'n01443537' }, 'n09999999/c.png': { class: 'n09999999' }, 'root.png': null };
  assert.deepEqual(Object.fromEntries(await catalogMetas(join(dir, 'imgs'))), expected);
  assert.deepEqual(Object.fromEntries(await catalogMetas(`glob:${join(dir, 'imgs')}/**/*.png`)), expected);

  writeFileSync(join(dir, 'imgs', 'files.txt'), ['n01443537/a.png', './n09999999/c.png', 'root.png', join(dir, 'imgs', 'n01443537/deeper/b.png')].join('\n'));
  const listed = await catalogMetas(`list:${join(dir, 'imgs', 'files.txt')}`);
  assert.deepEqual(Object.fromEntries(listed), {
    'n01443537/a.png': { class: 'n01443537' }, './n09999999/c.png': { class: 'n09999999' }, 'root.png': null, 'n01443537/deeper/b.png': { class: 'n01443537' },
  });
  rmSync(dir, { recursive: true, force: true });
});

const csvObjects = (file: string): Record<string, string>[] => {
  const [header, ...rows] = parseCsv(readFileSync(file, 'utf8'));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
};

/** Outputs a merge must reproduce, minus what legitimately differs (timings, catalog, timestamp). */
function comparable(dir: string): Record<string, string> {
  const { timings, catalog, ...summary } = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  void timings;
  void catalog;
  return {
    'matches.csv': readFileSync(join(dir, 'matches.csv'), 'utf8'),
    'candidates.csv': readFileSync(join(dir, 'candidates.csv'), 'utf8'),
    'summary.json': JSON.stringify(summary, null, 2),
    'report.html': readFileSync(join(dir, 'report.html'), 'utf8').replace(/generated [^<]*/g, 'generated'),
  };
}

test('an audit with a labelled downstream: meta columns, contamination_by_label, report, shard merge', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-meta-audit-'));
  const originals = readdirSync('fixtures/downstream').sort();
  const images = await Promise.all(originals.map(async (f, i) => ({
    label: i % 10,
    rgb: await sharp(join('fixtures/downstream', f)).resize(32, 32, { fit: 'fill' }).removeAlpha().raw().toBuffer(),
  })));
  const bin = join(dir, 'cifar-10-batches-bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'test_batch.bin'), cifar10Batch(images));
  // A hostile class name: it must come out escaped in the report.
  const names = CIFAR10_NAMES.map((n, i) => (i === 3 ? '<b>"cat"&</b>' : n));
  writeFileSync(join(bin, 'batches.meta.txt'), `${names.join('\n')}\n`);
  // Upstream in class folders: exact copies of records 3, 7 and 13, plus unrelated fixture photos.
  for (const i of [3, 7, 13]) {
    mkdirSync(join(dir, 'up', 'copies'), { recursive: true });
    await sharp(images[i]!.rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(dir, 'up', 'copies', `copy-${i}.png`));
  }
  mkdirSync(join(dir, 'up', 'web'));
  for (const f of readdirSync('fixtures/upstream').filter((n) => /\.(png|jpg)$/.test(n)).sort().slice(0, 6)) {
    writeFileSync(join(dir, 'up', 'web', f), readFileSync(join('fixtures/upstream', f)));
  }
  writeFileSync(join(dir, 'up', 'at-root.png'), readFileSync(join(dir, 'up', 'copies', 'copy-7.png')));

  const base = { upstream: [join(dir, 'up')], downstream: [`cifar10:${bin}`] };
  const r = await audit({ ...base, out: join(dir, 'whole') });
  assert.equal(r.summary.counts.downstreamOk, originals.length);

  const matchesText = readFileSync(join(dir, 'whole/matches.csv'), 'utf8');
  // The meta columns come last, after the verify stage's columns and the reason.
  assert.equal(matchesText.split('\n')[0], 'upstream,downstream,score,view,verify_score,zoom,angle,shift_x,shift_y,overlap,reason,upstream_meta,downstream_meta,decided_by');
  assert.equal(readFileSync(join(dir, 'whole/candidates.csv'), 'utf8').split('\n')[0], 'upstream,downstream,score,view,kind,decision,verify_score,zoom,angle,shift_x,shift_y,overlap,reason,upstream_meta,downstream_meta,decided_by');
  const index = (downstream: string) => Number(/test\/(\d+)$/.exec(downstream)![1]);
  const expectedMeta = (i: number) => ({ label: images[i]!.label, label_name: names[images[i]!.label] });
  const upstreamClass = (upstream: string) => /\/up\/([^/]+)\//.exec(upstream)?.[1];
  for (const file of ['matches.csv', 'candidates.csv']) {
    for (const row of csvObjects(join(dir, 'whole', file))) {
      assert.deepEqual(JSON.parse(row.downstream_meta!), expectedMeta(index(row.downstream!)), `${file}: downstream meta of ${row.downstream}`);
      const cls = upstreamClass(row.upstream!);
      if (cls) assert.equal(row.upstream_meta, JSON.stringify({ class: cls }), `${file}: upstream meta of ${row.upstream}`);
      else assert.equal(row.upstream_meta, '', `${file}: a file at the upstream root has no meta`);
    }
  }
  const matches = csvObjects(join(dir, 'whole/matches.csv'));
  for (const i of [3, 7, 13]) assert.ok(matches.some((m) => m.upstream!.endsWith(`copy-${i}.png`) && index(m.downstream!) === i && m.score === '1.000000'), `copy of ${i} matched`);
  assert.ok(matches.some((m) => m.upstream!.endsWith('at-root.png') && m.upstream_meta === ''));

  // contamination_by_label, expected from the downstream labels and matches.csv.
  const expected = new Map<string, { images: number; contaminated: Set<string> }>();
  for (const img of images) {
    const e = expected.get(names[img.label]!) ?? { images: 0, contaminated: new Set() };
    e.images++;
    expected.set(names[img.label]!, e);
  }
  for (const m of matches) expected.get((JSON.parse(m.downstream_meta!) as { label_name: string }).label_name)!.contaminated.add(m.downstream!);
  const want = [...expected.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([label, e]) => ({ label, images: e.images, contaminated: e.contaminated.size }));
  assert.deepEqual(r.summary.contamination_by_label, want);
  const summaryFile = JSON.parse(readFileSync(join(dir, 'whole/summary.json'), 'utf8'));
  assert.deepEqual(summaryFile.contamination_by_label, want);
  assert.ok(want.find((w) => w.label === names[3])!.contaminated === 2, 'records 3 and 13 share a label and are both copied');

  const html = readFileSync(join(dir, 'whole/report.html'), 'utf8');
  assert.match(html, /Contamination per downstream label/);
  assert.ok(html.includes('&lt;b&gt;&quot;cat&quot;&amp;&lt;/b&gt;'), 'the hostile label name is escaped');
  assert.ok(!html.includes('<b>"cat"'), 'and never raw');
  assert.match(html, /<span class="imeta">class: copies<\/span>/);
  assert.match(html, /<span class="imeta">label: 7, label_name: horse<\/span>/);

  // Two upstream shards merged give the same outputs, labels included.
  const shards: string[] = [];
  for (let i = 0; i < 2; i++) {
    shards.push(join(dir, `s${i}`));
    await audit({ ...base, out: join(dir, `s${i}`), shard: `${i}/2` });
  }
  await mergeShards(shards, join(dir, 'merged'));
  const [whole, merged] = [comparable(join(dir, 'whole')), comparable(join(dir, 'merged'))];
  for (const f of Object.keys(whole)) assert.equal(merged[f], whole[f], `${f} of the merge`);

  // A downstream without labels gets no section.
  const plain = await audit({ upstream: [join(dir, 'up')], downstream: ['fixtures/downstream'], out: join(dir, 'plain') });
  assert.equal(plain.summary.contamination_by_label, undefined);
  assert.ok(!readFileSync(join(dir, 'plain/report.html'), 'utf8').includes('per downstream label'));
  rmSync(dir, { recursive: true, force: true });
});
