/**
 * Validation of the run's precision estimate (src/estimate/) against the suite's answer key: at
 * several thresholds, the precision the audit estimates from its control alignments, without
 * labels, beside the precision measured over the same matched pairs with them.
 */
import { basename } from 'node:path';
import { estimatePrecision } from '../estimate/precision.js';
import { decideCandidate } from '../verify/run.js';
import { Catalog } from '../state/catalog.js';
import { candidates, type CandidateView } from '../state/queries.js';
import type { Suite } from './suite.js';

export interface EstimateCheck {
  threshold: number;
  /** Matched pairs at this threshold. */
  matches: number;
  estimated: number | null;
  interval: [number, number] | null;
  /** Share of matched pairs whose downstream image is the upstream copy's original. */
  measured: number | null;
  controls: { verified: number; sampled: number; failed: number; passed: number };
}

/** Thresholds the estimate is checked at: the decision's own and a spread below it, down to where look-alikes pass often. */
export const checkThresholds = (threshold: number): number[] =>
  [...new Set([0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, threshold, 0.7].map((t) => Math.round(t * 1000) / 1000))].sort((a, b) => a - b);

export function checkEstimates(db: string, modelId: string, suite: Suite, thresholds: number[]): EstimateCheck[] {
  const catalog = Catalog.open(db, { readonly: true });
  try {
    const ids = (role: string) => catalog.sources().filter((s) => s.role === role).map((s) => s.id);
    const views = candidates(catalog, modelId, ids('upstream'), ids('downstream'));
    return thresholds.map((t) => checkAt(views, suite, t));
  } finally {
    catalog.close();
  }
}

function checkAt(views: CandidateView[], suite: Suite, threshold: number): EstimateCheck {
  const rule = { verify: true, threshold };
  const decided = views.map((v) => ({ ...v, decidedBy: 'model' as const, decision: decideCandidate(v.kind, v.score, v.verifyScore, rule) }));
  const matched = decided.filter((v) => v.decision === 'match');
  const correct = matched.filter((v) => suite.truth.get(basename(v.upstream))?.downstream === basename(v.downstream)).length;
  const e = estimatePrecision(decided, threshold);
  return {
    threshold, matches: matched.length, estimated: e?.precision ?? null, interval: e?.interval ?? null,
    measured: matched.length === 0 ? null : correct / matched.length,
    controls: e?.controls ?? { verified: 0, sampled: 0, failed: 0, passed: 0 },
  };
}
