/**
 * The run's own precision, estimated without labels. Every decided match is either a copy or a
 * pair that passed by chance; the second kind is what a researcher must bound. The verify stage
 * aligns a fixed sample of all candidate pairs a second time with the downstream image mirrored
 * (verify/control.ts): a copy cannot align through a reflection, yet the control pair comes from
 * the same run, the same cosine bands and the same kind of images as the real ones.
 *
 * Only controls of pairs that failed verification are counted: a copy of a left–right symmetric
 * image still aligns mirrored (measured: 29 of 30 passing controls at 200 originals were such
 * copies), and pairs that failed are, but for missed copies, the non-copies. Their controls' pass
 * rate p estimates how often a non-copy passes; the non-copies among the sampled pairs number
 * failed / (1 − p), so p · failed / (1 − p) of them are expected to have passed, scaled from the
 * sample to all verified pairs.
 */
/** What the estimate reads of a candidate (a CandidateView row fits). */
export interface EstimatedPair {
  kind: 'exact' | 'embedding';
  /** 'match' counts as flagged; anything else (below the threshold, rejected by a reviewer) does not. */
  decision: string;
  /** A reviewer's decision is known, not estimated (absent: the model's). */
  decidedBy?: 'human' | 'model';
  verifyScore: number | null;
  /** matches.alignment: JSON with an optional `control` score and `error`. */
  alignment: string | null;
}

export interface PrecisionEstimate {
  /** Estimated share of decided matches that are copies; null when nothing was decided a match, or no verified pair has a control alignment. */
  precision: number | null;
  /** Expected matches that are not copies. */
  falseMatches: number;
  /** 95% interval of the precision (sampling error of the control pairs only). */
  interval: [number, number] | null;
  /** Pairs decided a match, of which `exact` are byte-identical and `reviewed` accepted by a reviewer (neither is estimated). */
  matches: number;
  exact: number;
  reviewed: number;
  /** Verified pairs; those with a control alignment; of those, the ones that failed verification, and their controls at or above the threshold. */
  controls: { verified: number; sampled: number; failed: number; passed: number };
  threshold: number;
  method: string;
}

export const ESTIMATE_METHOD =
  'control alignments: a fixed sample of the verified candidate pairs aligned again with the downstream image mirrored (no copy aligns through a reflection); ' +
  'p = share of the controls of pairs that failed verification reaching the threshold; false matches = p/(1-p) x failed sampled pairs / share of pairs sampled; ' +
  '95% interval from the Poisson count of passing controls';

const controlOf = (alignment: string | null): number | undefined => {
  if (alignment === null) return undefined;
  const a = JSON.parse(alignment) as { control?: number; error?: string };
  return a.error === undefined ? a.control : undefined;
};

/** What the estimate is computed from; shards' counts add up (see {@link combineEstimates}). */
interface Counts { matches: number; exact: number; reviewed: number; verified: number; sampled: number; failed: number; passed: number }

/**
 * The estimate for pairs decided at `threshold` on the verified score; undefined when there is
 * nothing to estimate (no verified pair and no match). Its precision is null when matches rest
 * on verified pairs none of which carries a control alignment (verified by an older neardup).
 */
export function estimatePrecision(pairs: Iterable<EstimatedPair>, threshold: number): PrecisionEstimate | undefined {
  const n: Counts = { matches: 0, exact: 0, reviewed: 0, verified: 0, sampled: 0, failed: 0, passed: 0 };
  for (const p of pairs) {
    if (p.decision === 'match') n.matches++;
    if (p.decision === 'match' && p.decidedBy === 'human' && p.kind !== 'exact') n.reviewed++;
    if (p.kind === 'exact') {
      if (p.decision === 'match') n.exact++;
      continue;
    }
    if (p.verifyScore === null) continue;
    n.verified++;
    const control = controlOf(p.alignment);
    if (control === undefined) continue;
    n.sampled++;
    if (p.verifyScore >= threshold) continue;
    n.failed++;
    if (control >= threshold) n.passed++;
  }
  return n.verified === 0 && n.matches === 0 ? undefined : fromCounts(n, threshold);
}

/** One estimate over the union of runs at one threshold (shards of one audit): their counts add up. */
export function combineEstimates(parts: readonly PrecisionEstimate[]): PrecisionEstimate | undefined {
  if (parts.length === 0) return undefined;
  const n: Counts = { matches: 0, exact: 0, reviewed: 0, verified: 0, sampled: 0, failed: 0, passed: 0 };
  for (const e of parts) {
    n.matches += e.matches; n.exact += e.exact; n.reviewed += e.reviewed;
    n.verified += e.controls.verified; n.sampled += e.controls.sampled; n.failed += e.controls.failed; n.passed += e.controls.passed;
  }
  return fromCounts(n, parts[0]!.threshold);
}

function fromCounts(n: Counts, threshold: number): PrecisionEstimate {
  const { matches, exact, reviewed, verified, sampled, failed, passed } = n;
  const chance = matches - exact - reviewed;
  const expected = (passes: number) => (failed === 0 ? 0 : ((passes * failed) / Math.max(1, failed - passes)) * (verified / sampled));
  const falseMatches = Math.min(chance, expected(passed));
  const [lo, hi] = poissonInterval(passed).map((x) => Math.min(x, failed)) as [number, number];
  const precisionOf = (f: number) => round(matches === 0 ? 1 : 1 - Math.min(chance, f) / matches, 4);
  if (sampled === 0 && chance > 0) {
    return { precision: null, falseMatches: 0, interval: null, matches, exact, reviewed, controls: { verified, sampled, failed, passed }, threshold, method: ESTIMATE_METHOD };
  }
  return {
    precision: matches === 0 ? null : precisionOf(falseMatches),
    falseMatches: round(falseMatches, 2),
    interval: matches === 0 ? null : [precisionOf(expected(hi)), precisionOf(expected(lo))],
    matches, exact, reviewed, controls: { verified, sampled, failed, passed }, threshold, method: ESTIMATE_METHOD,
  };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Exact (Garwood) 95% interval of a Poisson mean given an observed count. */
export function poissonInterval(n: number, confidence = 0.95): [number, number] {
  const tail = (1 - confidence) / 2;
  const lo = n === 0 ? 0 : solveMean((m) => 1 - poissonCdf(n - 1, m), tail, n);
  const hi = solveMean((m) => poissonCdf(n, m), tail, n, true);
  return [lo, hi];
}

/** P(X ≤ n) for X ~ Poisson(mean), summed in log space (stable for large means). */
export function poissonCdf(n: number, mean: number): number {
  if (mean === 0) return 1;
  let logTerm = -mean;
  let sum = Math.exp(logTerm);
  for (let k = 1; k <= n; k++) {
    logTerm += Math.log(mean / k);
    sum += Math.exp(logTerm);
  }
  return Math.min(1, sum);
}

/** The mean where f(mean) = target, by bisection; f rises with the mean unless `falling`. */
function solveMean(f: (m: number) => number, target: number, n: number, falling = false): number {
  let a = 0;
  let b = n + 10 * Math.sqrt(n + 1) + 10;
  for (let i = 0; i < 100; i++) {
    const m = (a + b) / 2;
    const above = f(m) > target;
    if (above !== falling) b = m;
    else a = m;
  }
  return (a + b) / 2;
}
