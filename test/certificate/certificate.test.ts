/**
 * The contamination certificate end to end: a real `neardup audit` (sharp, the shipped model,
 * HNSW, SQLite) on copies of the fixtures, then certificate.json checked against summary.json and
 * removed.csv, and `neardup certificate --check` against the data unchanged, with one image
 * rewritten, one removed, one added, one turned unusable, listed in another order, and after a
 * shard merge. Nothing is mocked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseCsv } from '../../src/report/csv.js';
import { fingerprintOf, sourceFingerprint } from '../../src/certificate/fingerprint.js';
import { renderCertificateHtml } from '../../src/certificate/html.js';
import type { Certificate } from '../../src/certificate/types.js';
import type { CertificateCheck } from '../../src/certificate/check.js';
import { VERIFIER_ID } from '../../src/verify/geometry.js';
import { VERSION } from '../../src/version.js';
import { EXIT } from '../../src/errors.js';
import { readSummary, removeDir, runCli, tmpDir } from '../helpers/cli.js';
import { copyDir, FIXTURE_DOWNSTREAM, FIXTURE_UPSTREAM } from '../helpers/corpus.js';

let dir = '';
let up = '';
let down = '';
let out = '';
let cert: Certificate;

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const csvRows = (path: string): Record<string, string>[] => {
  const [header, ...rows] = parseCsv(readFileSync(path, 'utf8'));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
};

/** `neardup certificate --check` with --json: the exit code and the parsed check. */
async function check(certificate: string, ...extra: string[]): Promise<{ code: number; result: CertificateCheck; stderr: string }> {
  const r = await runCli(['certificate', '--check', certificate, '--json', ...extra]);
  assert.ok(r.stdout.startsWith('{'), `JSON on stdout (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, result: JSON.parse(r.stdout) as CertificateCheck, stderr: r.stderr };
}
const downstreamSource = (r: CertificateCheck) => r.sides.find((s) => s.side === 'downstream')!.sources[0]!;

/** Replace a file for the duration of fn, then put the original bytes back. */
async function withReplaced(path: string, bytes: Buffer, fn: () => Promise<void>): Promise<void> {
  const original = readFileSync(path);
  writeFileSync(path, bytes);
  try {
    await fn();
  } finally {
    writeFileSync(path, original);
  }
}

/** The fingerprint's definition, computed here independently of src/certificate: sorted by UTF-8 key, sha1 of the bytes. */
function expectedOkDigest(folder: string): string {
  const keys = readdirSync(folder).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const lines = keys.map((k) => `${JSON.stringify(k)}\t${createHash('sha1').update(readFileSync(join(folder, k))).digest('hex')}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}

before(async () => {
  dir = await tmpDir('neardup-certificate-');
  up = join(dir, 'up');
  down = join(dir, 'down');
  out = join(dir, 'out');
  await copyDir(FIXTURE_UPSTREAM, up);
  await copyDir(FIXTURE_DOWNSTREAM, down);
  const r = await runCli(['audit', '--upstream', up, '--downstream', down, '--out', out, '-q']);
  assert.equal(r.code, 0, r.stderr);
  cert = readJson<Certificate>(join(out, 'certificate.json'));
});

after(async () => {
  await removeDir(dir);
});

describe('certificate.json written by audit', () => {
  test('counts agree with summary.json, removed.csv and matches.csv', () => {
    const summary = readSummary(out);
    const set = cert.downstream.sets[0]!;
    assert.equal(cert.downstream.sets.length, 1);
    assert.equal(set.source, down);
    assert.equal(set.images, summary.perDownstream[0]!.images);
    assert.equal(set.images, 16);
    assert.equal(set.contaminated.images, summary.perDownstream[0]!.contaminated);
    const matched = new Set(csvRows(join(out, 'matches.csv')).map((m) => m.downstream));
    assert.equal(set.contaminated.images, matched.size);
    assert.ok(set.contaminated.images >= 10, `the fixtures plant copies of most test images (${set.contaminated.images})`);
    assert.equal(set.share, set.contaminated.images / set.ok);
    const removed = csvRows(join(out, 'removed.csv'));
    assert.equal(cert.upstream.removed, removed.length);
    assert.equal(cert.upstream.removed, summary.counts.removed);
    assert.equal(cert.upstream.images, summary.counts.upstream);
    // No reviewer has decided anything yet: every decision is the model's.
    assert.deepEqual([set.contaminated.byHuman, set.contaminated.byModel], [0, set.contaminated.images]);
    assert.deepEqual([cert.upstream.removedByHuman, cert.upstream.removedByModel], [0, removed.length]);
    assert.equal(set.contaminated.byteIdentical, summary.counts.exactDuplicates > 0 ? 1 : 0);
  });

  test('names the model, its weights, the rule, the verifier and the version as summary.json does', () => {
    const summary = readSummary(out);
    assert.equal(cert.format, 'neardup-certificate/1');
    assert.deepEqual(cert.model, { id: summary.model.id, name: summary.model.name, sha256: summary.model.sha256 });
    assert.match(cert.model.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual([cert.decision.threshold, cert.decision.floor, cert.decision.k, cert.decision.decidedBy], [summary.threshold, summary.floor, summary.k, summary.decidedBy]);
    assert.equal(cert.decision.verifier, VERIFIER_ID);
    assert.equal(cert.neardup, VERSION);
    assert.equal(cert.command.name, 'audit');
    assert.ok(!Number.isNaN(Date.parse(cert.createdAt)));
    assert.equal(cert.complete, true);
  });

  test("applies the run's precision interval to the share, or says why there is none", () => {
    const summary = readSummary(out) as { estimate?: { interval: [number, number] | null } | null };
    const set = cert.downstream.sets[0]!;
    if (summary.estimate?.interval) {
      const [lo, hi] = summary.estimate.interval;
      assert.deepEqual(cert.estimate!.interval, [lo, hi]);
      assert.deepEqual(set.shareInterval, [set.share * lo, set.share * hi]);
    } else {
      assert.equal(set.shareInterval, null);
      assert.ok(cert.estimateNote.length > 0);
    }
  });

  test('fingerprints the data as defined: SHA-256 over sorted (key, sha1 of bytes) lines', () => {
    const fp = cert.downstream.sets[0]!.fingerprint!;
    assert.equal(fp.ok.images, 16);
    assert.equal(fp.ok.sha256, expectedOkDigest(down));
    assert.equal(fp.errors.images, 0);
    assert.equal(cert.upstream.sources[0]!.fingerprint!.ok.images, 73);
  });

  test('report.html carries the printable certificate section', () => {
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<section class="certificate">/);
    assert.match(html, /@media print/);
    assert.ok(html.includes(cert.downstream.sets[0]!.fingerprint!.sha256.slice(0, 12)), 'abbreviated fingerprint shown');
    assert.ok(html.includes(cert.model.id));
  });
});

describe('neardup certificate --check', () => {
  test('passes on the unchanged data (exit 0), from another working directory too', async () => {
    const { code, result } = await check(join(out, 'certificate.json'));
    assert.equal(code, EXIT.ok);
    assert.equal(result.same, true);
    assert.ok(result.sides.every((s) => s.same && s.expected === s.actual));
    const text = await runCli(['certificate', '--check', join(out, 'certificate.json')], { cwd: dir });
    assert.equal(text.code, EXIT.ok, text.stderr);
    assert.match(text.stdout, /the data is the same/);
  });

  test('detects one downstream image rewritten with other pixels and names it (exit 12)', async () => {
    const path = join(down, 'test_03.png');
    const negated = await sharp(readFileSync(path)).negate({ alpha: false }).png().toBuffer();
    await withReplaced(path, negated, async () => {
      const { code, result } = await check(join(out, 'certificate.json'));
      assert.equal(code, EXIT.dataChanged);
      assert.equal(result.same, false);
      const src = downstreamSource(result);
      assert.equal(src.same, false);
      assert.deepEqual(src.differences, { added: 0, removed: 0, changed: 1, firstAdded: [], firstRemoved: [], firstChanged: ['test_03.png'] });
      assert.equal(result.sides.find((s) => s.side === 'upstream')!.same, true, 'the upstream side did not change');
      const text = await runCli(['certificate', '--check', join(out, 'certificate.json')]);
      assert.equal(text.code, EXIT.dataChanged);
      assert.match(text.stdout, /1 changed: "test_03\.png"/);
    });
    assert.equal((await check(join(out, 'certificate.json'))).code, EXIT.ok, 'the original bytes back: the same again');
  });

  test('detects one image removed and one added', async () => {
    const gone = join(down, 'test_07.png');
    renameSync(gone, join(dir, 'test_07.png'));
    try {
      const { code, result } = await check(join(out, 'certificate.json'));
      assert.equal(code, EXIT.dataChanged);
      assert.deepEqual(downstreamSource(result).differences?.firstRemoved, ['test_07.png']);
      assert.equal(downstreamSource(result).actual.ok, 15);
    } finally {
      renameSync(join(dir, 'test_07.png'), gone);
    }
    const added = join(down, 'new_image.png');
    writeFileSync(added, await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3a7' } }).png().toBuffer());
    try {
      const { code, result } = await check(join(out, 'certificate.json'));
      assert.equal(code, EXIT.dataChanged);
      assert.deepEqual(downstreamSource(result).differences, { added: 1, removed: 0, changed: 0, firstAdded: ['new_image.png'], firstRemoved: [], firstChanged: [] });
    } finally {
      renameSync(added, join(dir, 'new_image.png'));
    }
  });

  test('an image turned unusable changes the fingerprint too (ok → error), and without a catalog the check still says differs', async () => {
    const path = join(down, 'test_11.png');
    await withReplaced(path, Buffer.from('not an image any more'), async () => {
      const { code, result } = await check(join(out, 'certificate.json'));
      assert.equal(code, EXIT.dataChanged);
      const src = downstreamSource(result);
      assert.deepEqual([src.actual.ok, src.actual.errors], [15, 1]);
      assert.deepEqual(src.differences?.firstChanged, ['test_11.png']);
      const blind = await check(join(out, 'certificate.json'), '--db', join(dir, 'no-such.db'));
      assert.equal(blind.code, EXIT.dataChanged);
      assert.equal(downstreamSource(blind.result).differences, null);
      assert.match(downstreamSource(blind.result).note ?? '', /keys cannot be named/);
    });
  });

  test('the fingerprint does not depend on listing order: a shuffled file list of the same files checks the same', async () => {
    const names = readdirSync(down).filter((n) => n.endsWith('.png')).reverse();
    const list = join(down, 'shuffled.txt');
    writeFileSync(list, `${[...names.slice(5), ...names.slice(0, 5)].join('\n')}\n`);
    try {
      const { code, result } = await check(join(out, 'certificate.json'), '--downstream', `list:${list}`, '--upstream', up);
      assert.equal(code, EXIT.ok, JSON.stringify(downstreamSource(result)));
      assert.equal(downstreamSource(result).given, true);
    } finally {
      renameSync(list, join(dir, 'shuffled.txt'));
    }
    const entries = names.map((key, i) => ({ key, status: (i === 3 ? 'error' : 'ok') as 'ok' | 'error', hash: i === 3 ? null : `h${i}` }));
    const shuffled = [...entries].sort(() => Math.random() - 0.5);
    assert.deepEqual(fingerprintOf(shuffled), fingerprintOf(entries));
    const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    assert.deepEqual(fingerprintOf(entries), sourceFingerprint(sorted.filter((e) => e.status === 'ok').map((e) => ({ key: e.key, hash: e.hash! })), sorted.filter((e) => e.status === 'error').map((e) => e.key)));
  });

  test('refuses a missing certificate, a file that is not one, and a source count that does not match (exit 2)', async () => {
    assert.equal((await runCli(['certificate'])).code, EXIT.config);
    assert.equal((await runCli(['certificate', '--check', join(dir, 'nothing.json')])).code, EXIT.config);
    writeFileSync(join(dir, 'other.json'), '{"format":"something-else"}');
    const wrong = await runCli(['certificate', '--check', join(dir, 'other.json')]);
    assert.equal(wrong.code, EXIT.config);
    assert.match(wrong.stderr, /certificate\.format/);
    const twice = await runCli(['certificate', '--check', join(out, 'certificate.json'), '--downstream', down, '--downstream', down]);
    assert.equal(twice.code, EXIT.config);
    assert.match(twice.stderr, /1 downstream source/);
    assert.match((await runCli(['certificate', '--help'])).stdout, /--check <file>/);
  });
});

describe('merged shards', () => {
  test('merge writes a certificate whose report section equals the unsharded one, and its per-shard upstream fingerprints check', async () => {
    const shards = [0, 1].map((i) => join(dir, `shard-${i}`));
    for (const [i, o] of shards.entries()) {
      const r = await runCli(['audit', '--upstream', up, '--downstream', down, '--out', o, '--shard', `${i}/2`, '-q']);
      assert.equal(r.code, 0, r.stderr);
    }
    const merged = join(dir, 'merged');
    const m = await runCli(['merge', ...shards, '--out', merged, '-q']);
    assert.equal(m.code, 0, m.stderr);
    const mc = readJson<Certificate>(join(merged, 'certificate.json'));
    assert.deepEqual(mc.upstream.sources[0]!.shards!.map((s) => s.shard), ['0/2', '1/2']);
    assert.equal(mc.upstream.images, cert.upstream.images);
    assert.equal(mc.upstream.removed, cert.upstream.removed);
    assert.deepEqual(mc.downstream.sets[0]!.contaminated, cert.downstream.sets[0]!.contaminated);
    assert.equal(renderCertificateHtml(mc), renderCertificateHtml(cert));
    const { code, result } = await check(join(merged, 'certificate.json'));
    assert.equal(code, EXIT.ok, JSON.stringify(result.sides));
    assert.equal(result.sides.find((s) => s.side === 'upstream')!.sources.length, 2, 'one check per shard');
  });
});

describe('purge rewrites the certificate', () => {
  test('a plan at another threshold: counts follow it', async () => {
    const before = cert.downstream.sets[0]!.contaminated.images;
    const r = await runCli(['purge', '--out', out, '--threshold', '0.9', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const c = readJson<Certificate>(join(out, 'certificate.json'));
    assert.equal(c.command.name, 'purge');
    assert.equal(c.decision.threshold, 0.9);
    assert.equal(c.upstream.removed, csvRows(join(out, 'removed.csv')).length);
    assert.ok(c.downstream.sets[0]!.contaminated.images < before, `fewer contaminated at 0.9 (${c.downstream.sets[0]!.contaminated.images} vs ${before})`);
    assert.equal(c.downstream.sets[0]!.fingerprint!.sha256, cert.downstream.sets[0]!.fingerprint!.sha256, 'same data, same fingerprint');
  });

  test("a reviewer's decisions are counted apart from the model's", async () => {
    const matches = csvRows(join(out, 'matches.csv'));
    const accepted = matches[0]!;
    // Reject every match of another downstream image: it is no longer contaminated.
    const rejectedImage = matches.find((m) => m.downstream !== accepted.downstream)!.downstream;
    const rejected = matches.filter((m) => m.downstream === rejectedImage && m.upstream !== accepted.upstream);
    const lines = ['upstream,downstream,decision', `${accepted.upstream},${accepted.downstream},accept`, ...rejected.map((m) => `${m.upstream},${m.downstream},reject`)];
    writeFileSync(join(dir, 'decisions.csv'), `${lines.join('\n')}\n`);
    const r = await runCli(['purge', '--out', out, '--decisions', join(dir, 'decisions.csv'), '-q']);
    assert.equal(r.code, 0, r.stderr);
    const c = readJson<Certificate>(join(out, 'certificate.json'));
    const set = c.downstream.sets[0]!;
    assert.equal(set.contaminated.byHuman, 1, 'the accepted pair');
    assert.equal(set.contaminated.images, cert.downstream.sets[0]!.contaminated.images - 1, 'the rejected image is no longer contaminated');
    assert.equal(set.contaminated.byModel, set.contaminated.images - 1);
    const removed = csvRows(join(out, 'removed.csv'));
    assert.equal(c.upstream.removedByHuman, removed.filter((x) => x.decided_by === 'human').length);
    assert.equal(c.upstream.removedByHuman + c.upstream.removedByModel, removed.length);
    assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<section class="certificate">/);
  });
});

test('the report section escapes source names and says when there is no estimate', () => {
  const set = { ...cert.downstream.sets[0]!, source: '<img src=x onerror=alert(1)>&"', shareInterval: null };
  const html = renderCertificateHtml({ ...cert, estimate: null, estimateNote: 'no precision estimate in this run', downstream: { ...cert.downstream, sets: [set] } });
  assert.ok(!html.includes('<img src=x'), 'the hostile name is escaped');
  assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;&amp;&quot;'));
  assert.match(html, /Precision estimate: none\. no precision estimate in this run\./);
  assert.match(html, /<td class="num">—<\/td>/, 'no interval shown as a dash');
});
