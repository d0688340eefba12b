import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { audit } from '../../src/audit/run.js';
import { expandBraces, tarMembers } from '../../src/sources/archives.js';
import { parseCsv } from '../../src/report/csv.js';
import { cifar10Batch, writeTar } from '../helpers/archives.js';

const rows = (file: string) => parseCsv(readFileSync(file, 'utf8')).slice(1);

test('brace ranges expand with their zero padding', () => {
  assert.deepEqual(expandBraces('s-{008..011}.tar'), ['s-008.tar', 's-009.tar', 's-010.tar', 's-011.tar']);
  assert.deepEqual(expandBraces('plain.tar'), ['plain.tar']);
});

test('an audit over tar shards finds the same matches as over the extracted folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-tar-'));
  const files = readdirSync('fixtures/upstream').filter((f) => /\.(png|jpg)$/.test(f)).sort();
  const half = Math.ceil(files.length / 2);
  const shard = (names: string[]) => names.flatMap((f) => [
    { name: f, data: readFileSync(join('fixtures/upstream', f)) },
    { name: f.replace(/\.\w+$/, '.json'), data: Buffer.from('{"caption":"not an image"}') },
  ]);
  writeTar(join(dir, 'shard-00000.tar'), shard(files.slice(0, half)));
  writeTar(join(dir, 'shard-00001.tar'), shard(files.slice(half)));
  const members = [];
  for await (const m of tarMembers(join(dir, 'shard-00000.tar'))) members.push(m.name);
  assert.equal(members.length, half * 2);

  const viaTar = await audit({ upstream: [`tar:${dir}/shard-{00000..00001}.tar`], downstream: ['fixtures/downstream'], out: join(dir, 'out-tar') });
  const flat = join(dir, 'flat');
  mkdirSync(flat);
  for (const f of files) writeFileSync(join(flat, f), readFileSync(join('fixtures/upstream', f)));
  const viaFolder = await audit({ upstream: [flat], downstream: ['fixtures/downstream'], out: join(dir, 'out-flat') });

  assert.equal(viaTar.summary.counts.upstreamOk, files.length, 'only image members are catalogued');
  const strip = (p: string) => p.replace(/^.*\/(shard-0000[01]\.tar|flat)\//, '');
  const tarMatches = rows(join(dir, 'out-tar/matches.csv')).map(([u, d, s, v]) => [strip(u!), d, s, v]);
  const flatMatches = rows(join(dir, 'out-flat/matches.csv')).map(([u, d, s, v]) => [strip(u!), d, s, v]);
  assert.ok(tarMatches.length > 0);
  assert.deepEqual(tarMatches.sort(), flatMatches.sort());
  assert.match(rows(join(dir, 'out-tar/matches.csv'))[0]![0]!, /shard-0000[01]\.tar\/img_\d+\.(png|jpg)$/, 'keys are <shard>/<member>');
  assert.equal(viaFolder.summary.counts.upstreamOk, files.length);
  rmSync(dir, { recursive: true, force: true });
});

test('CIFAR-10 binary batches: keys are test/<index> and exact copies are found', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-cifar-'));
  const originals = readdirSync('fixtures/downstream').sort();
  const images = await Promise.all(originals.map(async (f, i) => ({
    label: i % 10,
    rgb: await sharp(join('fixtures/downstream', f)).resize(32, 32, { fit: 'fill' }).removeAlpha().raw().toBuffer(),
  })));
  mkdirSync(join(dir, 'cifar-10-batches-bin'));
  writeFileSync(join(dir, 'cifar-10-batches-bin/test_batch.bin'), cifar10Batch(images));
  mkdirSync(join(dir, 'up'));
  // Upstream: PNG exports of records 3 and 7 (identical pixels) and one truncated batch-unrelated file.
  for (const i of [3, 7]) await sharp(images[i]!.rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(dir, 'up', `copy-${i}.png`));
  const r = await audit({ upstream: [join(dir, 'up')], downstream: [`cifar10:${join(dir, 'cifar-10-batches-bin')}`], out: join(dir, 'out') });
  assert.equal(r.summary.counts.downstreamOk, originals.length);
  const matches = rows(join(dir, 'out/matches.csv'));
  const pairs = matches.map(([u, d, s]) => [u!.replace(/^.*\//, ''), d!.replace(/^.*cifar-10-batches-bin\//, ''), s]);
  assert.deepEqual(pairs.filter(([, , s]) => s === '1.000000').sort(), [['copy-3.png', 'test/000003', '1.000000'], ['copy-7.png', 'test/000007', '1.000000']]);
  rmSync(dir, { recursive: true, force: true });
});

test('tar shards written by GNU tar (gnu and pax formats, long names) list the same members and bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-gnutar-'));
  const src = join(dir, 'src');
  const long = `${'deep-folder-name/'.repeat(8)}image-with-a-name-longer-than-one-hundred-bytes.png`;
  const files: Record<string, Buffer> = {
    '000001.jpg': await sharp({ create: { width: 20, height: 10, channels: 3, background: '#c33' } }).jpeg().toBuffer(),
    [long]: await sharp({ create: { width: 7, height: 9, channels: 3, background: '#3c3' } }).png().toBuffer(),
    'empty.txt': Buffer.alloc(0),
  };
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(src, name, '..'), { recursive: true });
    writeFileSync(join(src, name), data);
  }
  for (const format of ['gnu', 'pax']) {
    const tar = join(dir, `${format}.tar`);
    const r = spawnSync('tar', [`--format=${format}`, '-cf', tar, '-C', src, ...Object.keys(files)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const seen: Record<string, Buffer> = {};
    for await (const m of tarMembers(tar)) seen[m.name] = readFileSync(tar).subarray(m.offset, m.offset + m.size);
    assert.deepEqual(Object.keys(seen).sort(), Object.keys(files).sort(), `${format}: member names`);
    for (const [name, data] of Object.entries(files)) assert.ok(seen[name]!.equals(data), `${format}: bytes of ${name}`);
  }
  rmSync(dir, { recursive: true, force: true });
});
