import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csvField, csvRow, parseCsv, writeCsvFile } from '../../src/report/csv.js';
import { ConfigError } from '../../src/errors.js';

const NASTY = [
  'plain',
  'a,b',
  'say "hi"',
  '"',
  '""',
  'line1\r\nline2',
  'line1\nline2',
  'cr\ronly',
  '  leading',
  'trailing ',
  '\ttab',
  'ünïcødé 画像 🐈',
  '',
  'x,"y"\n,z',
];

test('csvField quotes only when needed and doubles quotes', () => {
  const rows: [Parameters<typeof csvField>[0], string][] = [
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['a\nb', '"a\nb"'],
    ['a\rb', '"a\rb"'],
    [' lead', '" lead"'],
    ['trail ', '"trail "'],
    [42, '42'],
    [0.5, '0.5'],
    [null, ''],
    [undefined, ''],
    ['', ''],
  ];
  for (const [input, expected] of rows) assert.equal(csvField(input), expected, JSON.stringify(input));
});

test('csvRow ends with a newline and keeps a lone empty field visible', () => {
  assert.equal(csvRow(['a', 1, null]), 'a,1,\n');
  assert.equal(csvRow(['']), '""\n');
  assert.deepEqual(parseCsv(csvRow([''])), [['']]);
});

test('nasty strings round-trip, one per row and all in one row', () => {
  const doc = NASTY.map((s) => csvRow([s, 'k'])).join('') + csvRow(NASTY);
  const parsed = parseCsv(doc);
  assert.deepEqual(parsed.slice(0, NASTY.length), NASTY.map((s) => [s, 'k']));
  assert.deepEqual(parsed[NASTY.length], NASTY);
  assert.equal(parsed.length, NASTY.length + 1);
});

test('parseCsv reads a multi-row document with CRLF, quoted newlines and a BOM', () => {
  const text = '\uFEFFid,name,score\r\n1,"a, b",0.9\r\n2,"multi\r\nline ""q""",0.8\r\n3,,\r\n';
  assert.deepEqual(parseCsv(text), [
    ['id', 'name', 'score'],
    ['1', 'a, b', '0.9'],
    ['2', 'multi\r\nline "q"', '0.8'],
    ['3', '', ''],
  ]);
});

test('parseCsv handles documents without a final newline and empty input', () => {
  assert.deepEqual(parseCsv(''), []);
  assert.deepEqual(parseCsv('a,b'), [['a', 'b']]);
  assert.deepEqual(parseCsv('a,\n"b"'), [['a', ''], ['b']]);
  assert.deepEqual(parseCsv('a\r\rb'), [['a'], [''], ['b']]);
});

test('parseCsv rejects malformed quoting with a line number', () => {
  assert.throws(() => parseCsv('a\n"open\nfield'), (e: unknown) =>
    e instanceof ConfigError && e.code === 'E_CSV' && /line 2/.test(e.message));
  assert.throws(() => parseCsv('"x"y,z'), /after closing quote on line 1/);
});

test('writeCsvFile writes header and rows atomically, leaving no temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'neardup-csv-'));
  try {
    const path = join(dir, 'pairs.csv');
    const rows = NASTY.map((s, i): (string | number)[] => [i, s]);
    await writeCsvFile(path, ['i', 'name'], rows);
    const parsed = parseCsv(await readFile(path, 'utf8'));
    assert.deepEqual(parsed, [['i', 'name'], ...rows.map(([i, s]) => [String(i), s])]);
    assert.deepEqual(await readdir(dir), ['pairs.csv']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('writeCsvFile streams async rows in chunks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'neardup-csv-'));
  try {
    const path = join(dir, 'big.csv');
    async function* gen(): AsyncGenerator<(string | number)[]> {
      for (let i = 0; i < 5000; i++) yield [i, `name ${i}, with comma`];
    }
    await writeCsvFile(path, ['i', 'name'], gen());
    const parsed = parseCsv(await readFile(path, 'utf8'));
    assert.equal(parsed.length, 5001);
    assert.deepEqual(parsed[5000], ['4999', 'name 4999, with comma']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('writeCsvFile keeps the old file and removes the temp file when a row is bad', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'neardup-csv-'));
  try {
    const path = join(dir, 'out.csv');
    await writeCsvFile(path, ['a'], [['old']]);
    await assert.rejects(writeCsvFile(path, ['a', 'b'], [['1', '2'], ['short']]), /rows\[1\]\.length/);
    assert.equal(await readFile(path, 'utf8'), 'a\nold\n');
    assert.deepEqual(await readdir(dir), ['out.csv']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
