/**
 * Metrics of the recall@P99 suite, as pure functions of scored candidate rows and the suite's
 * ground truth. Only each upstream image's top candidate counts (top-1 decisions), because that
 * is what a purge acts on: a copy "found" under the wrong original is still a false match.
 */
import { invalidOption } from '../errors.js';

/** One scored (upstream, downstream) pair; names are the suite's file names. */
export interface CandidateRow {
  upstream: string;
  downstream: string;
  score: number;
}

/** What a planted copy is a copy of. */
export interface PlantedCopy {
  downstream: string;
  family: string;
}

/** The answer key: planted copies by upstream name, and the upstream images that copy nothing. */
export interface GroundTruth {
  truth: ReadonlyMap<string, PlantedCopy>;
  distractors: readonly string[];
}

/** Recall of one transformation family at one threshold. */
export interface FamilyRecall {
  family: string;
  copies: number;
  found: number;
  recall: number;
}

/** Everything measured at one threshold. */
export interface OperatingPoint {
  threshold: number;
  /** Upstream images whose best candidate scores at or above the threshold. */
  predicted: number;
  /** Of those, planted copies whose best candidate is their original. */
  correct: number;
  /** correct / predicted; null when nothing is predicted (precision is undefined there). */
  precision: number | null;
  /** Planted copies found / planted copies. */
  recall: number;
  /** Distractors whose best candidate reaches the threshold / distractors. */
  falseMatchRate: number;
  families: FamilyRecall[];
}

/** The operating point chosen for a precision target; `threshold` null when none reaches it. */
export interface PrecisionTarget {
  target: number;
  threshold: number | null;
  /** Metrics at `threshold`; null when no threshold reaches the target. */
  point: OperatingPoint | null;
}

type Best = Map<string, { downstream: string; score: number }>;

/**
 * The top candidate of each upstream image. Ties go to the smaller downstream name, the same
 * order candidates.csv uses, so a rerun never flips a decision.
 */
export function bestByUpstream(rows: Iterable<CandidateRow>): Best {
  const best: Best = new Map();
  for (const r of rows) {
    const b = best.get(r.upstream);
    if (!b || r.score > b.score || (r.score === b.score && r.downstream < b.downstream)) {
      best.set(r.upstream, { downstream: r.downstream, score: r.score });
    }
  }
  return best;
}

const isCorrect = (gt: GroundTruth, upstream: string, downstream: string): boolean =>
  gt.truth.get(upstream)?.downstream === downstream;

function familyRecalls(best: Best, gt: GroundTruth, threshold: number): FamilyRecall[] {
  const byFamily = new Map<string, FamilyRecall>();
  for (const [upstream, planted] of gt.truth) {
    const row = byFamily.get(planted.family) ?? { family: planted.family, copies: 0, found: 0, recall: 0 };
    const b = best.get(upstream);
    row.copies++;
    if (b && b.score >= threshold && b.downstream === planted.downstream) row.found++;
    byFamily.set(planted.family, row);
  }
  return [...byFamily.values()].map((r) => ({ ...r, recall: r.found / r.copies }));
}

function pointFromBest(best: Best, gt: GroundTruth, threshold: number): OperatingPoint {
  let predicted = 0;
  let correct = 0;
  for (const [upstream, b] of best) {
    if (b.score < threshold) continue;
    predicted++;
    if (isCorrect(gt, upstream, b.downstream)) correct++;
  }
  const distractors = new Set(gt.distractors);
  let falseMatches = 0;
  for (const d of distractors) if ((best.get(d)?.score ?? -Infinity) >= threshold) falseMatches++;
  return {
    threshold, predicted, correct,
    precision: predicted === 0 ? null : correct / predicted,
    recall: gt.truth.size === 0 ? 0 : correct / gt.truth.size,
    falseMatchRate: distractors.size === 0 ? 0 : falseMatches / distractors.size,
    families: familyRecalls(best, gt, threshold),
  };
}

/** Recall, precision, false-match rate and per-family recall at one threshold (score >= threshold). */
export function operatingPoint(rows: Iterable<CandidateRow>, gt: GroundTruth, threshold: number): OperatingPoint {
  return pointFromBest(bestByUpstream(rows), gt, threshold);
}

/** Recall per transformation family at a threshold, in the order families first appear in the truth. */
export function recallByFamily(rows: Iterable<CandidateRow>, gt: GroundTruth, threshold: number): FamilyRecall[] {
  return familyRecalls(bestByUpstream(rows), gt, threshold);
}

/** Share of all planted copies whose top candidate is their original at or above the threshold. */
export function recallAt(rows: Iterable<CandidateRow>, gt: GroundTruth, threshold: number): number {
  return operatingPoint(rows, gt, threshold).recall;
}

/** Top-1 precision over every upstream image whose best candidate reaches the threshold; null if none does. */
export function precisionAt(rows: Iterable<CandidateRow>, gt: GroundTruth, threshold: number): number | null {
  return operatingPoint(rows, gt, threshold).precision;
}

/** Share of distractors (upstream images that copy nothing) whose best candidate reaches the threshold. */
export function falseMatchRate(rows: Iterable<CandidateRow>, gt: GroundTruth, threshold: number): number {
  return operatingPoint(rows, gt, threshold).falseMatchRate;
}

function checkTarget(p: number): void {
  if (!(typeof p === 'number' && p > 0 && p <= 1)) throw invalidOption('precision target', 'a number in (0, 1]', p);
}

function lowestThreshold(best: Best, gt: GroundTruth, p: number): number | null {
  const sorted = [...best].sort((a, b) => b[1].score - a[1].score);
  let correct = 0;
  let found: number | null = null;
  for (let i = 0; i < sorted.length; i++) {
    const [upstream, b] = sorted[i];
    if (isCorrect(gt, upstream, b.downstream)) correct++;
    // Precision is only defined at a distinct score: every image tied with it is predicted too.
    if (i + 1 < sorted.length && sorted[i + 1][1].score === b.score) continue;
    if (correct / (i + 1) >= p) found = b.score;
  }
  return found;
}

/**
 * The lowest threshold, among the best-candidate scores, at which top-1 precision is at least
 * `p`. Recall only falls as the threshold rises, so this is also the threshold of the best
 * recall reachable at that precision.
 *
 * @returns null when no threshold reaches `p` (including when there are no candidates).
 * @throws ConfigError when `p` is not in (0, 1].
 */
export function thresholdForPrecision(rows: Iterable<CandidateRow>, gt: GroundTruth, p: number): number | null {
  checkTarget(p);
  return lowestThreshold(bestByUpstream(rows), gt, p);
}

/** The operating point at {@link thresholdForPrecision}; `point` null when `p` is out of reach. */
export function precisionTarget(rows: Iterable<CandidateRow>, gt: GroundTruth, p: number): PrecisionTarget {
  checkTarget(p);
  const best = bestByUpstream(rows);
  const threshold = lowestThreshold(best, gt, p);
  return { target: p, threshold, point: threshold === null ? null : pointFromBest(best, gt, threshold) };
}

/** Best recall reachable with precision >= p (0.99 by default); 0 when p is out of reach. */
export function bestRecallAtPrecision(rows: Iterable<CandidateRow>, gt: GroundTruth, p = 0.99): number {
  return precisionTarget(rows, gt, p).point?.recall ?? 0;
}

/** dHash similarity on the model's scale: 1 for identical hashes, 0 when all 64 bits differ. */
export const dhashScore = (bits: number): number => 1 - bits / 64;

/** Bits set in a 32-bit integer (SWAR popcount). */
function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

const halves = (h: bigint): [number, number] => [Number(BigInt.asUintN(32, h >> 32n)), Number(BigInt.asUintN(32, h))];

/**
 * The dHash baseline's candidates by brute force: each upstream hash against every downstream
 * hash, keeping the best (fewest differing bits; ties to the smaller name). Plain dHash — no max
 * over the eight dihedral views — because it is the baseline the model has to beat.
 * Hashes are split into 32-bit halves: BigInt popcounts over ~10^6 pairs would take seconds.
 */
export function dhashRows(upstream: ReadonlyMap<string, bigint>, downstream: ReadonlyMap<string, bigint>): CandidateRow[] {
  const down = [...downstream].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, h]) => ({ name, h: halves(h) }));
  const rows: CandidateRow[] = [];
  for (const [name, hash] of upstream) {
    const [hi, lo] = halves(hash);
    let bestBits = 65;
    let bestName = '';
    for (const d of down) {
      const bits = popcount32(hi ^ d.h[0]) + popcount32(lo ^ d.h[1]);
      if (bits < bestBits) {
        bestBits = bits;
        bestName = d.name;
      }
    }
    if (bestName !== '') rows.push({ upstream: name, downstream: bestName, score: dhashScore(bestBits) });
  }
  return rows;
}
