import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reviewSelection } from '../../src/report/review.js';
import type { CandidateView } from '../../src/state/queries.js';

const pair = (i: number, verifyScore: number, o: Partial<CandidateView> = {}): CandidateView => ({
  upstreamId: i, upstream: `u/${i}.png`, downstreamId: 1000 + i, downstream: `d/${i}.png`, downstreamSourceId: 2,
  score: 0.7, view: 0, kind: 'embedding', decision: verifyScore >= 0.6 ? 'match' : 'below-threshold', decidedBy: 'model',
  modelDecision: verifyScore >= 0.6 ? 'match' : 'below-threshold', reason: '', verifyScore, alignment: null, upstreamMeta: null, downstreamMeta: null, ...o,
});

test('the review keeps every match and every reviewed pair, and only the best near misses beyond its limit', () => {
  const all = [
    ...Array.from({ length: 5 }, (_, i) => pair(i, 0.9 - i * 0.01)),
    ...Array.from({ length: 20 }, (_, i) => pair(100 + i, 0.59 - i * 0.005)),
    pair(200, 0.1, { decidedBy: 'human', decision: 'rejected' }),
    pair(300, 0.2),
  ];
  const shown = reviewSelection(all, { threshold: 0.6, verify: true, margin: 0.15 }, 10);
  assert.equal(shown.filter((c) => c.decision === 'match').length, 5);
  assert.ok(shown.some((c) => c.upstreamId === 200), 'a reviewed pair is always shown');
  assert.ok(!shown.some((c) => c.upstreamId === 300), 'below the near-miss band');
  const near = shown.filter((c) => c.decision === 'below-threshold');
  assert.deepEqual(near.map((c) => c.upstreamId), [100, 101, 102, 103], 'the best near misses fill the limit');
  assert.equal(shown.omitted, 16);
  assert.equal(reviewSelection(all, { threshold: 0.6, verify: true, margin: 0.15 }).omitted, 0);
});
