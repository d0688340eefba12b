/**
 * Broken and hostile upstream files through the real CLI: each must end as a processed image, a
 * per-file error with a precise reason (summary.json, errors.csv, the catalog), or be left out,
 * and the run must complete with every good file processed. Real sharp, model, SQLite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { parseCsv } from '../../src/report/csv.js';
import { makeHostileCorpus, type HostileCase } from '../../scripts/make-hostile.js';
import { parseKeepTxt, readSummary, removeDir, runCli, tmpDir, type CliResult, type Summary } from '../helpers/cli.js';
import { copyDir, FIXTURE_DOWNSTREAM, FIXTURE_UPSTREAM, imagesUnder } from '../helpers/corpus.js';

let root = '';

before(async () => {
  root = await tmpDir('neardup-bad-');
});

after(async () => {
  await removeDir(root);
});

interface ErrorCsvRow { path: string; role: string; source: string; reason: string }

function errorsCsv(out: string): ErrorCsvRow[] {
  const [header, ...rows] = parseCsv(readFileSync(join(out, 'errors.csv'), 'utf8'));
  assert.deepEqual(header, ['path', 'role', 'source', 'reason']);
  return rows.map(([path, role, source, reason]) => ({ path: path!, role: role!, source: source!, reason: reason! }));
}

interface ImageRowLite { key: string; path: string; status: string; error: string | null }

function upstreamImages(out: string): ImageRowLite[] {
  const db = new Database(join(out, 'neardup.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT i.key, i.path, i.status, i.error FROM images i JOIN sources s ON s.id = i.source_id
      WHERE s.role = 'upstream' ORDER BY i.key`).all() as ImageRowLite[];
  } finally {
    db.close();
  }
}

describe('broken files next to good ones', () => {
  let up = '';
  let out = '';
  let run: CliResult;
  let summary: Summary;
  /** name → what its reason must say. */
  const broken = new Map<string, RegExp>();

  before(async () => {
    up = join(root, 'upstream');
    out = join(root, 'out');
    await copyDir(FIXTURE_UPSTREAM, up);
    // Truncated JPEGs: incompressible content cut at several points, so image data really is missing.
    const noise = Buffer.from(Array.from({ length: 96 * 96 * 3 }, (_, i) => (i * 2654435761) >>> 24));
    const jpeg = await sharp(noise, { raw: { width: 96, height: 96, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
    for (const [name, fraction] of [['truncated.jpg', 0.5], ['truncated-early.jpg', 0.3], ['more/truncated-late.jpg', 0.8]] as const) {
      await writeFile(join(up, name), jpeg.subarray(0, Math.floor(jpeg.length * fraction)));
      broken.set(name, /truncated|corrupt/i);
    }
    await writeFile(join(up, 'empty.jpg'), Buffer.alloc(0));
    broken.set('empty.jpg', /empty/i);
    await writeFile(join(up, 'readme.png'), 'This is a text file with a .png name.\n');
    broken.set('readme.png', /not an image/i);
    run = await runCli(['audit', '--upstream', up, '--downstream', FIXTURE_DOWNSTREAM, '--out', out, '-q']);
    summary = readSummary(out);
  });

  test('the run completes with exit 0', () => {
    assert.equal(run.code, 0, run.stderr);
  });

  test('every good file is processed', () => {
    const good = imagesUnder(FIXTURE_UPSTREAM).length;
    assert.equal(summary.counts.upstreamOk, good);
    assert.equal(summary.counts.upstream, good + broken.size);
    assert.equal(summary.counts.errors, broken.size);
    assert.equal(summary.counts.kept + summary.counts.removed, good);
    const rows = upstreamImages(out);
    assert.deepEqual(rows.filter((r) => r.status === 'ok').map((r) => r.key).sort(), imagesUnder(FIXTURE_UPSTREAM));
  });

  test('summary.json errors.files lists each broken file with a precise reason', () => {
    const wrong: string[] = [];
    for (const [name, reason] of broken) {
      const entry = summary.errors.files.find((f) => f.path === join(up, name));
      if (!entry) wrong.push(`${name}: missing from errors.files`);
      else if (!reason.test(entry.reason)) wrong.push(`${name}: reason ${JSON.stringify(entry.reason)} does not match ${reason}`);
      else assert.equal(entry.source, up);
    }
    assert.deepEqual(wrong, []);
    assert.equal(summary.errors.files.length, broken.size);
    assert.equal(summary.errors.filesOmitted, 0);
    assert.equal(summary.errors.byReason.reduce((a, g) => a + g.count, 0), broken.size);
  });

  test('errors.csv lists the same files and reasons', () => {
    const rows = errorsCsv(out);
    assert.deepEqual(rows.map((r) => r.path).sort(), [...broken.keys()].map((n) => join(up, n)).sort());
    for (const r of rows) {
      assert.equal(r.role, 'upstream');
      assert.equal(r.source, up);
      assert.equal(r.reason, summary.errors.files.find((f) => f.path === r.path)?.reason, r.path);
    }
  });
});

describe('the hostile corpus', () => {
  let up = '';
  let out = '';
  let run: CliResult;
  let cases: HostileCase[] = [];
  let rows: ImageRowLite[] = [];
  let summary: Summary;
  /** An unreadable file whose name holds a comma, quotes and a newline: it must reach errors.csv intact. */
  const ODD_BROKEN = 'bad, "odd"\nname.jpg';

  before(async () => {
    up = join(root, 'hostile');
    out = join(root, 'hostile-out');
    cases = await makeHostileCorpus(up);
    await writeFile(join(up, ODD_BROKEN), 'not an image either\n');
    cases.push({ name: ODD_BROKEN, kind: 'text-with-odd-name', expect: 'error' });
    run = await runCli(['audit', '--upstream', up, '--downstream', FIXTURE_DOWNSTREAM, '--out', out, '-q'], { timeoutMs: 90_000 });
    rows = upstreamImages(out);
    summary = readSummary(out);
  });

  const rowOf = (c: HostileCase) => rows.find((r) => r.key === c.name);

  /** What the reason of an 'error' case must mention, by kind. */
  const REASONS: Record<string, RegExp> = {
    'truncated-jpeg': /truncated|corrupt/i,
    'truncated-png': /truncated|corrupt/i,
    'zero-byte': /empty/i,
    'text-as-jpg': /not an image/i,
    'html-as-png': /not an image|html/i,
    'png-bomb-30000x30000': /too large|pixel/i,
    'svg-external-url': /svg/i,
    'svg-local-file': /svg/i,
    'unreadable-mode-000': /permission|EACCES/i,
    'text-with-odd-name': /not an image/i,
  };

  test('no crash: exit 0', () => {
    assert.equal(run.code, 0, run.stderr);
    assert.ok(cases.length >= 30);
  });

  test("every 'error' case is recorded as an error with a precise reason", () => {
    const wrong: string[] = [];
    for (const c of cases.filter((x) => x.expect === 'error')) {
      const row = rowOf(c);
      const want = REASONS[c.kind] ?? /\S/;
      if (!row) wrong.push(`${c.kind} ${JSON.stringify(c.name)}: not in the catalog`);
      else if (row.status !== 'error') wrong.push(`${c.kind} ${JSON.stringify(c.name)}: status ${row.status}`);
      else if (!want.test(row.error ?? '')) wrong.push(`${c.kind} ${JSON.stringify(c.name)}: reason ${JSON.stringify(row.error)} does not match ${want}`);
      else if (!summary.errors.files.some((f) => f.path === join(up, c.name) && f.reason === row.error)) wrong.push(`${c.kind}: not in summary.json errors.files`);
    }
    assert.deepEqual(wrong, [], `cases that differ from their expectation:\n${wrong.join('\n')}`);
  });

  test("every 'ok' case is decoded and processed (status ok)", () => {
    const wrong: string[] = [];
    for (const c of cases.filter((x) => x.expect === 'ok')) {
      const row = rowOf(c);
      if (!row) wrong.push(`${c.kind} ${JSON.stringify(c.name)}: not in the catalog`);
      else if (row.status !== 'ok') wrong.push(`${c.kind} ${JSON.stringify(c.name)}: status ${row.status} (${row.error})`);
    }
    assert.deepEqual(wrong, [], `cases that differ from their expectation:\n${wrong.join('\n')}`);
  });

  test("every 'skipped' case is absent, or an error that names the symlink or loop", () => {
    const wrong: string[] = [];
    for (const c of cases.filter((x) => x.expect === 'skipped')) {
      const row = rowOf(c);
      if (row && !(row.status === 'error' && /symlink|loop/i.test(row.error ?? ''))) {
        wrong.push(`${c.kind} ${JSON.stringify(c.name)}: status ${row.status} (${row.error})`);
      }
    }
    assert.deepEqual(wrong, [], `cases that differ from their expectation:\n${wrong.join('\n')}`);
    // Nothing outside the corpus root was read through the escaping link.
    assert.deepEqual(rows.filter((r) => !r.path.startsWith(`${up}/`)).map((r) => r.path), []);
    assert.ok(!rows.some((r) => r.status === 'ok' && r.key === 'escape.png'));
  });

  test('nothing unexpected is in the catalog and nothing is left pending', () => {
    const names = new Set(cases.map((c) => c.name));
    assert.deepEqual(rows.filter((r) => !names.has(r.key)).map((r) => r.key), []);
    assert.deepEqual(rows.filter((r) => r.status === 'pending').map((r) => r.key), []);
    assert.equal(summary.counts.upstreamOk, rows.filter((r) => r.status === 'ok').length);
  });

  test('errors.csv round-trips a path with a comma, quotes and a newline', () => {
    const csv = errorsCsv(out);
    const odd = join(up, ODD_BROKEN);
    const row = csv.find((r) => r.path === odd);
    assert.ok(row, `errors.csv holds ${JSON.stringify(odd)}; paths: ${JSON.stringify(csv.map((r) => r.path))}`);
    assert.equal(row.role, 'upstream');
    assert.match(row.reason, /not an image/i);
    // Every error row parses back to an existing catalog path, none split across records.
    const errorPaths = rows.filter((r) => r.status === 'error').map((r) => r.path).sort();
    assert.deepEqual(csv.map((r) => r.path).sort(), errorPaths);
  });

  test('keep.txt and removed.csv round-trip the odd names of ok images', () => {
    const keep = parseKeepTxt(readFileSync(join(out, 'keep.txt'), 'utf8'));
    const [header, ...removedRows] = parseCsv(readFileSync(join(out, 'removed.csv'), 'utf8'));
    assert.equal(header?.[0], 'upstream');
    const planned = new Set([...keep, ...removedRows.map((r) => r[0]!)]);
    for (const kind of ['name-space', 'name-comma', 'name-quotes', 'name-newline']) {
      const c = cases.find((x) => x.kind === kind)!;
      assert.ok(planned.has(join(up, c.name)), `${kind}: ${JSON.stringify(join(up, c.name))} is in keep.txt or removed.csv`);
    }
    const okPaths = rows.filter((r) => r.status === 'ok').map((r) => r.path).sort();
    assert.deepEqual([...planned].sort(), okPaths, 'keep.txt + removed.csv = the ok upstream images, exactly');
  });
});
