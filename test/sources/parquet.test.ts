import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { audit } from '../../src/audit/run.js';
import { ConfigError } from '../../src/errors.js';
import { listSource, parseSource, type ListingPage } from '../../src/sources/list.js';
import { cachedParquetWindows, clearParquetCache, planWindows, readParquetImage, readParquetMetadataSync } from '../../src/sources/parquet.js';
import { parseCsv } from '../../src/report/csv.js';
import { writeImageParquet, type ImageRow } from '../helpers/parquet.js';

const rows = (file: string) => parseCsv(readFileSync(file, 'utf8')).slice(1);
const names = readdirSync('fixtures/upstream').filter((f) => /\.(png|jpg)$/.test(f)).sort();
const image = (f: string) => readFileSync(join('fixtures/upstream', f));

async function listAll(spec: string): Promise<ListingPage> {
  const all: ListingPage = { files: [], errors: [] };
  for await (const page of listSource(parseSource(spec), { pageSize: 7 })) {
    all.files.push(...page.files);
    all.errors.push(...page.errors);
  }
  return all;
}

// One audit over parquet shards (HF struct column in one, plain binary in the other, a null
// image row, a shard that is not parquet at all) and one over the same images as a folder.
const shared = {} as { dir: string; half: number; viaParquet: Awaited<ReturnType<typeof audit>>; viaFolder: Awaited<ReturnType<typeof audit>> };

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-parquet-'));
  const half = Math.ceil(names.length / 2);
  const first: ImageRow[] = names.slice(0, half).map((f, i) => ({ image: image(f), label: i % 5, name: f, keep: i % 2 === 0 }));
  first.splice(3, 0, { image: null, label: 9, name: 'missing', keep: false });
  writeImageParquet(join(dir, 'train-00000.parquet'), first, { struct: true, rowGroupSize: 5 });
  writeImageParquet(join(dir, 'train-00001.parquet'), names.slice(half).map((f, i) => ({ image: image(f), label: 100 + i, name: f })), { rowGroupSize: 4 });
  writeFileSync(join(dir, 'train-00002.parquet'), Buffer.from('this is not a parquet file, only a few bytes of text'));
  const viaParquet = await audit({ upstream: [`parquet:${dir}/train-{00000..00002}.parquet`], downstream: ['fixtures/downstream'], out: join(dir, 'out-parquet') });
  const flat = join(dir, 'flat');
  mkdirSync(flat);
  for (const f of names) writeFileSync(join(flat, f), image(f));
  const viaFolder = await audit({ upstream: [flat], downstream: ['fixtures/downstream'], out: join(dir, 'out-flat') });
  Object.assign(shared, { dir, half, viaParquet, viaFolder });
});

after(() => rmSync(shared.dir, { recursive: true, force: true }));

test('an audit over parquet shards finds the same matches as over the folder', () => {
  const { dir, viaParquet, viaFolder } = shared;
  assert.equal(viaParquet.summary.counts.upstreamOk, names.length, 'every image row decodes');
  assert.equal(viaFolder.summary.counts.upstreamOk, names.length);
  // Map parquet keys back to file names through the row order used to write them.
  const first = names.slice(0, shared.half);
  first.splice(3, 0, 'missing');
  const second = names.slice(shared.half);
  const nameOf = (p: string) => {
    const m = /train-0000([01])\.parquet\/(\d+)$/.exec(p);
    assert.ok(m, `parquet key ${p}`);
    return (m[1] === '0' ? first : second)[Number(m[2])]!;
  };
  const strip = (p: string) => p.replace(/^.*\/flat\//, '');
  const pq = rows(join(dir, 'out-parquet/matches.csv')).map(([u, d, s, v]) => [nameOf(u!), d, s, v]);
  const flat = rows(join(dir, 'out-flat/matches.csv')).map(([u, d, s, v]) => [strip(u!), d, s, v]);
  assert.ok(pq.length > 0);
  assert.deepEqual(pq.sort(), flat.sort());
});

test('parquet keys are <file>/<row> and the other columns land in images.meta', () => {
  const db = new Database(join(shared.dir, 'out-parquet/neardup.db'), { readonly: true });
  try {
    const got = db.prepare("SELECT key, meta, format, container, offset, status FROM images WHERE key LIKE 'train-%' ORDER BY key").all() as
      { key: string; meta: string | null; format: string | null; container: string | null; offset: number | null; status: string }[];
    const ok = got.filter((r) => r.status === 'ok');
    assert.equal(ok.length, names.length);
    for (const r of ok) assert.match(r.key, /^train-0000[01]\.parquet\/\d{6}$/);
    const row4 = got.find((r) => r.key === 'train-00000.parquet/000004')!;
    assert.equal(row4.format, 'parquet');
    assert.equal(row4.offset, 4);
    assert.equal(row4.container, `${shared.dir}/train-00000.parquet#image`);
    // Row 4 of the first file is names[3] (a null row was inserted at 3): label 3, keep false → 0.
    assert.deepEqual(JSON.parse(row4.meta!), { label: 3, name: names[3], keep: 0 });
    const second = got.find((r) => r.key === 'train-00001.parquet/000002')!;
    assert.deepEqual(JSON.parse(second.meta!), { label: 102, name: names[shared.half + 2] });
  } finally {
    db.close();
  }
});

test('a second run over the same parquet shards keeps every key and decoded image', async () => {
  const snapshot = () => {
    const db = new Database(join(shared.dir, 'out-parquet/neardup.db'), { readonly: true });
    try {
      return db.prepare('SELECT id, key, hash, status FROM images ORDER BY id').all();
    } finally {
      db.close();
    }
  };
  const before = snapshot();
  const again = await audit({ upstream: [`parquet:${shared.dir}/train-{00000..00002}.parquet`], downstream: ['fixtures/downstream'], out: join(shared.dir, 'out-parquet') });
  assert.equal(again.summary.counts.upstreamOk, names.length);
  assert.deepEqual(snapshot(), before);
});

test('a null image row and a file that is not parquet are recorded as errors and the run goes on', () => {
  const { viaParquet } = shared;
  const files = viaParquet.summary.errors.files;
  const nullRow = files.find((f) => f.path.endsWith('train-00000.parquet/000003'));
  assert.ok(nullRow, JSON.stringify(files));
  assert.equal(nullRow.reason, 'row 3 has no image bytes in column image');
  const corrupt = files.find((f) => f.path.endsWith('train-00002.parquet'));
  assert.ok(corrupt, JSON.stringify(files));
  assert.match(corrupt.reason, /^unreadable parquet file: /);
  assert.equal(viaParquet.summary.counts.upstream, names.length + 2);
});

test('image column: auto-detected, ambiguous without #<column>, chosen with it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-parquet-col-'));
  try {
    const two = join(dir, 'two.parquet');
    writeImageParquet(two, names.slice(0, 3).map((f, i) => ({ image: image(f), thumb: image(names[i + 10]!), caption: `c${i}` })), { column: 'img' });
    assert.throws(() => parseSource(`parquet:${two}`, '--upstream'), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /2 image-like columns \(img, thumb\)/);
      assert.match(e.message, /#<column>/);
      return true;
    });
    const viaThumb = await listAll(`parquet:${two}#thumb`);
    assert.deepEqual(viaThumb.files.map((f) => [f.key, f.bytes, f.container, f.meta]), names.slice(0, 3).map((_, i) =>
      [`two.parquet/${String(i).padStart(6, '0')}`, image(names[i + 10]!).length, `${two}#thumb`, { caption: `c${i}` }]));
    assert.throws(() => parseSource(`parquet:${two}#caption`), /neither binary data nor/);
    assert.throws(() => parseSource(`parquet:${two}#nope`), /has no column "nope"/);

    // A struct column beside a string column is the single candidate.
    const hf = join(dir, 'sub', 'hf.parquet');
    mkdirSync(join(dir, 'sub'));
    writeImageParquet(hf, [{ image: image(names[0]!), text: 'a' }], { struct: true });
    assert.equal(parseSource(`parquet:${hf}`).parquet!.column, 'image');
    // A glob names files under the folder before the wildcard; keys keep the sub-folder.
    const globbed = await listAll(`parquet:${dir}/**/*.parquet#image`);
    assert.deepEqual(globbed.files.map((f) => f.key), ['sub/hf.parquet/000000']);
    assert.match(globbed.errors[0]?.error ?? '', /two\.parquet|has no column/);

    assert.throws(() => parseSource(`parquet:${dir}/missing-{0..1}.parquet`), /Expected existing parquet file\(s\) .* but received/);
    assert.throws(() => parseSource(`parquet:${dir}`), /is not a file: for a folder write parquet:.*\/\*\.parquet/);
    writeFileSync(join(dir, 'bad.parquet'), 'not parquet');
    assert.throws(() => parseSource(`parquet:${join(dir, 'bad.parquet')}`), (e: Error) => e instanceof ConfigError && /Expected readable parquet file\(s\)/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a parquet file damaged after its footer was written: only the damaged row group is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-parquet-bad-'));
  try {
    const file = join(dir, 'd.parquet');
    writeImageParquet(file, names.slice(0, 12).map((f) => ({ image: image(f) })), { rowGroupSize: 3 });
    const metadata = readParquetMetadataSync(file);
    // Overwrite the image pages of the third row group with garbage, footer intact.
    const chunk = metadata.row_groups[2]!.columns[0]!.meta_data!;
    const bytes = readFileSync(file);
    const start = Number(chunk.dictionary_page_offset || chunk.data_page_offset);
    bytes.fill(0xee, start, start + Number(chunk.total_compressed_size));
    writeFileSync(file, bytes);
    const listed = await listAll(`parquet:${file}`);
    assert.deepEqual(listed.files.map((f) => f.offset), [0, 1, 2, 3, 4, 5, 9, 10, 11], 'only the damaged row group is lost');
    assert.equal(listed.errors.length, 1, 'one error for the file');
    assert.equal(listed.errors[0]!.key, 'd.parquet');
    assert.match(listed.errors[0]!.error, /^unreadable parquet file: 3 rows from row 6 cannot be read/);
    // The decoder names the damage for a row of that group, and serves the rows around it.
    clearParquetCache();
    const ref = (row: number) => ({ path: join(dir, 'd.parquet', String(row)), container: `${file}#image`, offset: row, format: 'parquet' as const });
    assert.match(String(await readParquetImage(ref(7))), /^cannot read parquet file: /);
    assert.deepEqual(await readParquetImage(ref(1)), image(names[1]!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readParquetImage: consecutive rows read concurrently come back exact, windows stay bounded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-parquet-read-'));
  try {
    const file = join(dir, 'many.parquet');
    const count = 600;
    const data = Array.from({ length: count }, (_, i) => Buffer.concat([image(names[i % names.length]!), Buffer.from(`#${i}`)]));
    writeImageParquet(file, data.map((b, i) => ({ image: i === 123 ? null : b })), { struct: true, rowGroupSize: 50, pageSize: 64 * 1024 });
    const metadata = readParquetMetadataSync(file);
    assert.equal(metadata.row_groups.length, 12);
    const plan = planWindows(metadata, 'image');
    assert.deepEqual(plan, [{ start: 0, end: 250 }, { start: 250, end: 500 }, { start: 500, end: 600 }], 'row groups merge up to 256 rows');
    clearParquetCache();
    const ref = (row: number) => ({ path: join(dir, 'many.parquet', String(row)), container: `${file}#image`, offset: row, format: 'parquet' as const });
    let peak = 0;
    // Pages of 128 rows, 4 decodes in flight at once, as the embed stage does.
    for (let start = 0; start < count; start += 128) {
      const page = Array.from({ length: Math.min(128, count - start) }, (_, i) => start + i);
      let next = 0;
      const got = new Map<number, Buffer | string>();
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < page.length) {
          const row = page[next++]!;
          got.set(row, await readParquetImage(ref(row)));
          peak = Math.max(peak, cachedParquetWindows());
        }
      }));
      for (const row of page) {
        if (row === 123) assert.equal(got.get(row), 'row 123 has no image bytes in column image');
        else assert.ok(Buffer.isBuffer(got.get(row)) && (got.get(row) as Buffer).equals(data[row]!), `row ${row}`);
      }
    }
    assert.ok(peak <= 3, `at most 3 windows cached, saw ${peak}`);
    assert.match(String(await readParquetImage(ref(600))), /past the end/);

    // A row group bigger than the byte budget is split into windows that still cover every row.
    const split = planWindows(metadata, 'image', { rows: 256, bytes: 100_000 });
    assert.ok(split.length > 12);
    assert.equal(split[0]!.start, 0);
    for (let i = 1; i < split.length; i++) assert.equal(split[i]!.start, split[i - 1]!.end);
    assert.equal(split.at(-1)!.end, count);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
