import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { combineEstimates, estimatePrecision, poissonInterval, type EstimatedPair } from '../../src/estimate/precision.js';
import { CONTROL_RATE, controlViews, isControlSample } from '../../src/verify/control.js';
import { checkEstimates } from '../../src/eval/estimate-check.js';
import { buildSuite } from '../../src/eval/suite.js';
import { audit } from '../../src/audit/run.js';
import { REPO_ROOT } from '../helpers/cli.js';

const pair = (verifyScore: number | null, control?: number, o: Partial<EstimatedPair> = {}): EstimatedPair => ({
  kind: 'embedding', decision: verifyScore !== null && verifyScore >= 0.6 ? 'match' : 'below-threshold', verifyScore,
  alignment: verifyScore === null ? null : JSON.stringify(control === undefined ? { zoom: 1 } : { zoom: 1, control }), ...o,
});

describe('control sample', () => {
  it('takes about CONTROL_RATE of pairs, the same ones every time (drawn from the content hashes)', () => {
    const sha1 = (x: number) => createHash('sha1').update(String(x)).digest('hex');
    let taken = 0;
    for (let u = 1; u <= 200; u++) for (let d = 1; d <= 100; d++) if (isControlSample(sha1(u), sha1(1000 + d))) taken++;
    assert.ok(Math.abs(taken / 20_000 - CONTROL_RATE) < 0.02, `sampled ${taken} of 20,000`);
    assert.equal(isControlSample(sha1(17), sha1(4)), isControlSample(sha1(17), sha1(4)));
    assert.equal(isControlSample(sha1(1), sha1(2), 0), false);
  });

  it('mirrors the verified views and never repeats one of them', () => {
    assert.deepEqual(controlViews([0]), [4]);
    assert.deepEqual(controlViews([1, 0]), [5, 4]);
    assert.deepEqual(controlViews([4, 0]), [], 'a pair tried as it is and mirrored has no control');
  });
});

describe('estimatePrecision', () => {
  it('scales the failed pairs’ passing controls to all verified pairs', () => {
    // 100 verified pairs, half sampled: 10 matches (their controls pass: symmetric copies, not counted),
    // 40 failed sampled pairs of which 4 pass their control: p = 0.1, 4·40/36 ≈ 4.44 chance passes per sample, ×2.
    const pairs = [
      ...Array.from({ length: 10 }, () => pair(0.9, 0.9)),
      ...Array.from({ length: 4 }, () => pair(0.2, 0.7)),
      ...Array.from({ length: 36 }, () => pair(0.2, 0.1)),
      ...Array.from({ length: 50 }, () => pair(0.2)),
    ];
    const e = estimatePrecision(pairs, 0.6)!;
    assert.deepEqual(e.controls, { verified: 100, sampled: 50, failed: 40, passed: 4 });
    assert.equal(e.matches, 10);
    assert.equal(e.falseMatches, 8.89);
    assert.equal(e.precision, 0.1111);
    assert.ok(e.interval![0] <= e.precision! && e.precision! <= e.interval![1]);
  });

  it('counts byte-identical and reviewer-accepted matches as known, and gives no precision without controls', () => {
    const pairs = [pair(0.9, 0.1), pair(0.2, 0.1), { ...pair(null), kind: 'exact' as const, decision: 'match' }, pair(0.3, 0.1, { decision: 'match', decidedBy: 'human' })];
    const e = estimatePrecision(pairs, 0.6)!;
    assert.equal(e.matches, 3);
    assert.equal(e.exact, 1);
    assert.equal(e.reviewed, 1);
    assert.equal(e.falseMatches, 0);
    assert.equal(e.precision, 1);
    const uncontrolled = estimatePrecision([pair(0.9), pair(0.1)], 0.6)!;
    assert.equal(uncontrolled.precision, null, 'a match among pairs verified without controls cannot be estimated');
    assert.equal(estimatePrecision([{ ...pair(null), kind: 'exact', decision: 'match' }], 0.6)!.precision, 1, 'byte-identical matches need no estimate');
    assert.equal(estimatePrecision([], 0.6), undefined);
  });

  it('combines shards as the estimate over their union', () => {
    const a = [pair(0.9, 0.1), pair(0.1, 0.7), pair(0.1, 0.2), pair(0.2)];
    const b = [pair(0.8, 0.3), pair(0.3, 0.65), pair(0.1, 0.1), pair(0.1, 0.1)];
    assert.deepEqual(combineEstimates([estimatePrecision(a, 0.6)!, estimatePrecision(b, 0.6)!]), estimatePrecision([...a, ...b], 0.6));
  });

  it('gives the exact Poisson interval', () => {
    const close = (x: number, y: number) => Math.abs(x - y) < 1e-3;
    assert.ok(close(poissonInterval(0)[1], 3.689));
    const [lo, hi] = poissonInterval(4);
    assert.ok(close(lo, 1.090) && close(hi, 10.242), `${lo} ${hi}`);
  });
});

const PHOTOS = join(REPO_ROOT, '..', 'shared', 'data', 'tiny-imagenet', 'val');
const DISTRACTORS = join(REPO_ROOT, '..', 'shared', 'data', 'tiny-imagenet', 'train');

describe('the estimate on a real suite', { skip: existsSync(PHOTOS) ? false : `skipped: ${PHOTOS} is absent (the shared Tiny-ImageNet photos)` }, () => {
  it('is within 0.05 of the precision measured with the answer key, at thresholds from loose to strict', async () => {
    const work = await mkdtemp(join(tmpdir(), 'neardup-estimate-'));
    try {
      const suite = await buildSuite(PHOTOS, { originals: 30, distractors: 1500, distractorsFrom: DISTRACTORS, seed: 5, workDir: work });
      const db = join(work, 'neardup.db');
      const r = await audit({ upstream: [suite.upstreamDir], downstream: [suite.downstreamDir], out: join(work, 'out'), db, quiet: true });
      assert.ok(r.summary.estimate, 'the audit printed no estimate');
      const checks = checkEstimates(db, r.summary.model.id, suite, [0.35, 0.45, 0.55, r.summary.threshold]);
      for (const c of checks) {
        assert.ok(c.measured !== null && c.estimated !== null, `nothing matched at ${c.threshold}`);
        assert.ok(Math.abs(c.estimated - c.measured) <= 0.05, `at ${c.threshold}: estimated ${c.estimated}, measured ${c.measured.toFixed(4)}`);
      }
      assert.ok(checks[0]!.measured! < 0.99, `the loosest threshold should let look-alikes through (measured ${checks[0]!.measured})`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
