import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import { hamming } from '../../src/eval/dhash.js';
import {
  bestByUpstream, bestRecallAtPrecision, dhashRows, dhashScore, falseMatchRate, operatingPoint, precisionAt,
  precisionTarget, recallAt, recallByFamily, thresholdForPrecision, type CandidateRow, type GroundTruth,
} from '../../src/eval/metrics.js';

// Four planted copies of two originals (A, B) in two families, and three distractors.
const gt: GroundTruth = {
  truth: new Map([
    ['c1', { downstream: 'A', family: 'crop50' }],
    ['c2', { downstream: 'B', family: 'crop50' }],
    ['m1', { downstream: 'A', family: 'mirror' }],
    ['m2', { downstream: 'B', family: 'mirror' }],
  ]),
  distractors: ['x1', 'x2', 'x3'],
};

const row = (upstream: string, downstream: string, score: number): CandidateRow => ({ upstream, downstream, score });

// Best per upstream: c1→A .95 ✓, m1→A .90 ✓, x1→B .85 ✗, c2→B .80 ✓, m2→A .70 ✗ (its original B is second), x2→A .40 ✗; x3 none.
const rows: CandidateRow[] = [
  row('c1', 'A', 0.95), row('c1', 'B', 0.5),
  row('m1', 'A', 0.9),
  row('x1', 'B', 0.85),
  row('c2', 'B', 0.8), row('c2', 'A', 0.3),
  row('m2', 'B', 0.6), row('m2', 'A', 0.7),
  row('x2', 'A', 0.4),
];

test('bestByUpstream keeps the top score, ties going to the smaller downstream name', () => {
  const best = bestByUpstream([row('u', 'B', 0.5), row('u', 'A', 0.5), row('u', 'C', 0.4), row('v', 'C', 0.2)]);
  assert.deepEqual(best.get('u'), { downstream: 'A', score: 0.5 });
  assert.deepEqual(best.get('v'), { downstream: 'C', score: 0.2 });
});

test('recall counts a copy only when its top candidate is its original at or above the threshold', () => {
  assert.equal(recallAt(rows, gt, 0.8), 3 / 4);
  assert.equal(recallAt(rows, gt, 0.81), 2 / 4);
  assert.equal(recallAt(rows, gt, 0), 3 / 4, 'm2 is never found: its best candidate is the wrong original');
  assert.deepEqual(recallByFamily(rows, gt, 0.8), [
    { family: 'crop50', copies: 2, found: 2, recall: 1 },
    { family: 'mirror', copies: 2, found: 1, recall: 0.5 },
  ]);
});

test('precision is top-1 over every upstream image whose best candidate reaches the threshold', () => {
  assert.equal(precisionAt(rows, gt, 0.9), 1);
  assert.equal(precisionAt(rows, gt, 0.85), 2 / 3);
  assert.equal(precisionAt(rows, gt, 0.8), 3 / 4);
  assert.equal(precisionAt(rows, gt, 0.7), 3 / 5, 'a copy matched to the wrong original is a false match');
  assert.equal(precisionAt(rows, gt, 0.99), null, 'nothing predicted: precision undefined');
});

test('false-match rate is per distractor, including distractors without any candidate', () => {
  assert.equal(falseMatchRate(rows, gt, 0.85), 1 / 3);
  assert.equal(falseMatchRate(rows, gt, 0.3), 2 / 3);
  assert.equal(falseMatchRate(rows, gt, 0.9), 0);
  assert.equal(falseMatchRate(rows, { ...gt, distractors: [] }, 0), 0);
});

test('thresholdForPrecision returns the lowest candidate score reaching the target', () => {
  assert.equal(thresholdForPrecision(rows, gt, 1), 0.9);
  assert.equal(thresholdForPrecision(rows, gt, 0.75), 0.8);
  assert.equal(thresholdForPrecision(rows, gt, 0.6), 0.7);
  assert.equal(thresholdForPrecision(rows, gt, 0.5), 0.4);
});

test('thresholdForPrecision: unreachable targets, no rows and ties', () => {
  assert.equal(thresholdForPrecision([row('x1', 'A', 0.9)], gt, 0.5), null, 'only a false match');
  assert.equal(thresholdForPrecision([], gt, 0.99), null);
  // Tied scores are predicted together: precision at 0.9 is 1/2, never the 1/1 of half the tie.
  const tied = [row('c1', 'A', 0.9), row('x1', 'A', 0.9), row('c2', 'B', 0.5)];
  assert.equal(thresholdForPrecision(tied, gt, 0.99), null);
  assert.equal(thresholdForPrecision(tied, gt, 0.6), 0.5);
});

test('thresholdForPrecision rejects targets outside (0, 1]', () => {
  for (const p of [0, -0.1, 1.01, Number.NaN]) assert.throws(() => thresholdForPrecision(rows, gt, p), ConfigError);
});

test('precisionTarget and bestRecallAtPrecision give the operating point at that threshold', () => {
  const t = precisionTarget(rows, gt, 0.75);
  assert.equal(t.threshold, 0.8);
  assert.equal(t.point?.recall, 3 / 4);
  assert.equal(t.point?.precision, 3 / 4);
  assert.equal(bestRecallAtPrecision(rows, gt, 0.99), 2 / 4);
  assert.equal(bestRecallAtPrecision([row('x1', 'A', 0.9)], gt), 0);
  assert.deepEqual(precisionTarget([], gt, 0.9), { target: 0.9, threshold: null, point: null });
});

test('operatingPoint with an empty truth does not divide by zero', () => {
  const p = operatingPoint([row('x1', 'A', 0.9)], { truth: new Map(), distractors: ['x1'] }, 0.5);
  assert.deepEqual([p.recall, p.precision, p.falseMatchRate, p.families], [0, 0, 1, []]);
});

test('dhashRows finds the nearest hash by brute force, scored 1 - hamming/64', () => {
  const down = new Map([['A', 0xffff_0000_ffff_0000n], ['B', 0x0123_4567_89ab_cdefn], ['C', 0n]]);
  const up = new Map([['u1', 0xffff_0000_ffff_0001n], ['u2', 0x0123_4567_89ab_cdeen ^ (1n << 63n)], ['u3', 0xffff_ffff_ffff_ffffn]]);
  const got = new Map(dhashRows(up, down).map((r) => [r.upstream, r]));
  assert.deepEqual(got.get('u1'), { upstream: 'u1', downstream: 'A', score: dhashScore(1) });
  assert.deepEqual(got.get('u2'), { upstream: 'u2', downstream: 'B', score: dhashScore(hamming(up.get('u2')!, down.get('B')!)) });
  assert.equal(hamming(up.get('u2')!, down.get('B')!), 2);
  assert.equal(got.get('u3')?.downstream, 'A', 'A and B are both 32 bits away (the tie goes to A), C 64');
  assert.equal(got.get('u3')?.score, 0.5);
  assert.deepEqual(dhashRows(up, new Map()), []);
});
