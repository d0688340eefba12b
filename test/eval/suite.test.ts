import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { parseCsv } from '../../src/report/csv.js';
import { buildSuite, listImages, type Suite } from '../../src/eval/suite.js';
import { FAMILIES } from '../../src/eval/transforms.js';
import { packageRoot } from '../../src/util/package-root.js';

// fixtures/ holds downstream/ and upstream/ (with a nested upstream/more/): 89 photos, plus a README and a CSV to skip.
const source = join(packageRoot(), 'fixtures');
const families = Object.keys(FAMILIES);
let tmp: string;
let suite: Suite;

const build = (workDir: string, seed = 7) => buildSuite(source, { originals: 4, distractors: 20, seed, workDir, concurrency: 2 });
const csv = async (path: string) => (parseCsv(await readFile(path, 'utf8'))).slice(1);

/** Every file of a suite with its sha256, so two builds can be compared byte for byte. */
async function digest(workDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['downstream', 'upstream']) {
    for (const name of (await readdir(join(workDir, sub))).sort()) {
      out.push(`${sub}/${name} ${createHash('sha256').update(await readFile(join(workDir, sub, name))).digest('hex')}`);
    }
  }
  return out;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'neardup-suite-test-'));
  suite = await build(join(tmp, 'a'));
});

after(() => rm(tmp, { recursive: true, force: true }));

test('listImages lists image files recursively, sorted, and skips everything else', async () => {
  const images = await listImages(source);
  assert.equal(images.length, 89);
  assert.ok(images.some((p) => p.startsWith(join('upstream', 'more', 'img_'))), 'nested folders are walked');
  assert.ok(!images.some((p) => p.endsWith('.md') || p.endsWith('.csv')));
  assert.deepEqual(images, [...images].sort());
});

test('the suite has the asked-for counts: one copy per original per family, plus the distractors', async () => {
  assert.equal((await readdir(suite.downstreamDir)).length, 4);
  assert.equal((await readdir(suite.upstreamDir)).length, 4 * families.length + 20);
  assert.equal(suite.truth.size, 4 * families.length);
  assert.equal(suite.distractors.length, 20);
  assert.deepEqual(suite.families, families);
  for (const family of families) assert.equal([...suite.truth.values()].filter((t) => t.family === family).length, 4, family);
  assert.equal(new Set([...suite.truth.values()].map((t) => t.downstream)).size, 4);
});

test('ground-truth.csv matches the returned truth and the files on disk', async () => {
  const rows = await csv(join(tmp, 'a', 'ground-truth.csv'));
  assert.equal(rows.length, suite.truth.size);
  const upstream = new Set(await readdir(suite.upstreamDir));
  const downstream = new Set(await readdir(suite.downstreamDir));
  for (const [up, down, family] of rows) {
    assert.deepEqual(suite.truth.get(up), { downstream: down, family });
    assert.ok(upstream.has(up) && downstream.has(down), `${up} -> ${down}`);
  }
  for (const d of suite.distractors) assert.ok(upstream.has(d) && !suite.truth.has(d), d);
  assert.equal(upstream.size, suite.truth.size + suite.distractors.length, 'every upstream file is a copy or a distractor');
  // Neutral names: nothing in an upstream name tells copy from distractor or names the family.
  for (const name of upstream) assert.match(name, /^u\d+\.\w+$/);
});

test('originals are never distractors, and distractors are byte-for-byte copies of their source', async () => {
  const rows = await csv(join(tmp, 'a', 'sources.csv'));
  const originals = new Set(rows.filter((r) => r[1] === 'original').map((r) => r[2]));
  const distractors = rows.filter((r) => r[1] === 'distractor');
  assert.equal(originals.size, 4);
  assert.equal(distractors.length, 20);
  for (const [file, , src] of distractors) {
    assert.ok(!originals.has(src), src);
    assert.deepEqual(await readFile(join(tmp, 'a', file)), await readFile(join(source, src)), file);
  }
  for (const [file, , src] of rows.filter((r) => r[1] === 'copy')) assert.ok(originals.has(src), `${file} copies ${src}`);
});

test('the same seed rebuilds the same files; another seed picks other photos', async () => {
  const again = await build(join(tmp, 'b'));
  assert.deepEqual(await digest(join(tmp, 'b')), await digest(join(tmp, 'a')));
  assert.deepEqual([...again.truth], [...suite.truth]);
  assert.deepEqual(again.distractors, suite.distractors);
  await build(join(tmp, 'c'), 8);
  assert.notDeepEqual(await digest(join(tmp, 'c')), await digest(join(tmp, 'a')));
});

test('rebuilding over an earlier suite replaces it', async () => {
  const work = join(tmp, 'b');
  await buildSuite(source, { originals: 2, distractors: 3, seed: 7, workDir: work, families: ['mirror'] });
  assert.equal((await readdir(join(work, 'upstream'))).length, 2 + 3);
  assert.equal((await csv(join(work, 'ground-truth.csv'))).length, 2);
});

test('bad inputs are ConfigErrors', async () => {
  const work = join(tmp, 'bad');
  await assert.rejects(buildSuite(join(tmp, 'missing'), { originals: 4, seed: 1, workDir: work }), ConfigError);
  await assert.rejects(buildSuite(source, { originals: 80, distractors: 20, seed: 1, workDir: work }), /89 images/);
  await assert.rejects(buildSuite(source, { originals: 0, seed: 1, workDir: work }), ConfigError);
  await assert.rejects(buildSuite(source, { originals: 2, seed: 1.5, workDir: work }), ConfigError);
  await assert.rejects(buildSuite(source, { originals: 2, seed: 1, workDir: work, families: ['sepia' as never] }), /one of crop50/);
  await assert.rejects(buildSuite(source, { originals: 2, seed: 1, workDir: join(source, 'suite') }), /inside the photo folder/);
  mkdirSync(join(work, 'upstream'), { recursive: true });
  writeFileSync(join(work, 'upstream', 'mine.jpg'), 'not ours');
  await assert.rejects(buildSuite(source, { originals: 2, distractors: 1, seed: 1, workDir: work }), /not empty/);
});
