import { createHash } from 'node:crypto';
import type { Catalog, MatchRow } from '../state/catalog.js';
import { searchOne, type DownstreamIndex } from '../index/hnsw.js';
import { VIEWS } from '../embed/views.js';
import type { Progress } from '../util/progress-types.js';

export interface MatchOptions {
  modelId: string;
  upstreamSourceIds: number[];
  downstreamSourceIds: number[];
  /** Cosine at or above which a candidate is a match. */
  threshold: number;
  /** Candidates at or above this are kept (and shown in candidates.csv) even when below threshold. */
  floor: number;
  /** Downstream images considered per upstream query. */
  k: number;
  /** Upstream queries committed per transaction. */
  pageSize: number;
}

export interface MatchResult { queried: number; candidates: number; matches: number; exact: number; resumedFrom: number }

export const decide = (score: number, threshold: number): MatchRow['decision'] => (score >= threshold ? 'match' : 'below-threshold');

export function reasonFor(kind: MatchRow['kind'], score: number, view: number, threshold: number): string {
  if (kind === 'exact') return 'exact duplicate: byte-identical image data';
  const rel = score >= threshold ? '≥' : '<';
  return `cosine ${score.toFixed(4)} ${rel} threshold ${threshold} (view ${VIEWS[view] ?? view})`;
}

/** Everything that changes which candidates exist; the threshold only changes decisions. */
function fingerprintOf(o: MatchOptions, index: DownstreamIndex): string {
  return createHash('sha1').update(JSON.stringify([o.modelId, o.upstreamSourceIds, o.downstreamSourceIds, o.floor, o.k, index.fingerprint])).digest('hex');
}

/**
 * Query every upstream image against the downstream index. Upstream embeddings stream from the
 * catalog a page at a time (memory grows with the downstream side only); each page's candidates
 * and the resume point commit together, so a killed match resumes without redoing or doubling.
 */
export function runMatch(catalog: Catalog, index: DownstreamIndex, o: MatchOptions, progress: Progress): MatchResult {
  const fingerprint = fingerprintOf(o, index);
  let state = catalog.matchState(o.modelId);
  if (!state || state.fingerprint !== fingerprint) {
    catalog.resetMatches(o.modelId, fingerprint);
    state = catalog.matchState(o.modelId)!;
  }
  const result: MatchResult = { queried: 0, candidates: 0, matches: 0, exact: 0, resumedFrom: state.last_upstream_id };
  if (!state.done) {
    let afterId = state.last_upstream_id;
    if (afterId === 0) {
      const exact = catalog.exactPairs(o.upstreamSourceIds, o.downstreamSourceIds).map((p): MatchRow => ({
        ...p, score: 1, view: 0, kind: 'exact', decision: 'match', reason: reasonFor('exact', 1, 0, o.threshold),
      }));
      catalog.commitMatches(o.modelId, exact, 0, false);
    }
    for (;;) {
      const page = catalog.embeddingsPage(o.upstreamSourceIds, o.modelId, afterId, o.pageSize);
      if (page.length === 0) break;
      const rows: MatchRow[] = [];
      for (const u of page) {
        const query = u.vectors.subarray(0, index.dims);
        for (const hit of searchOne(index, query, o.k, o.floor)) {
          rows.push({
            upstreamId: u.id, downstreamId: hit.downstreamId, score: hit.score, view: hit.view, kind: 'embedding',
            decision: decide(hit.score, o.threshold), reason: reasonFor('embedding', hit.score, hit.view, o.threshold),
          });
        }
      }
      afterId = page[page.length - 1]!.id;
      catalog.commitMatches(o.modelId, rows.filter((r) => !isExactAlready(catalog, o.modelId, r)), afterId, false);
      result.queried += page.length;
      progress.tick(page.length);
    }
    catalog.commitMatches(o.modelId, [], afterId, true);
  }
  applyThreshold(catalog, o.modelId, o.threshold);
  const counts = catalog.db.prepare(`SELECT COUNT(*) AS candidates, SUM(decision = 'match') AS matches, SUM(kind = 'exact') AS exact FROM matches WHERE model_id = ?`)
    .get(o.modelId) as { candidates: number; matches: number | null; exact: number | null };
  return { ...result, candidates: counts.candidates, matches: counts.matches ?? 0, exact: counts.exact ?? 0 };
}

function isExactAlready(catalog: Catalog, modelId: string, r: MatchRow): boolean {
  return !!catalog.db.prepare("SELECT 1 FROM matches WHERE model_id = ? AND upstream_id = ? AND downstream_id = ? AND kind = 'exact'").get(modelId, r.upstreamId, r.downstreamId);
}

/** Re-decide every stored candidate at a new threshold: no model or index work, and no rows in memory. */
export function applyThreshold(catalog: Catalog, modelId: string, threshold: number): void {
  catalog.db.function('neardup_reason', { deterministic: true }, (score, view, t) => reasonFor('embedding', score as number, view as number, t as number));
  catalog.db.prepare(`UPDATE matches SET decision = CASE WHEN score >= @threshold THEN 'match' ELSE 'below-threshold' END,
    reason = neardup_reason(score, view, @threshold) WHERE model_id = @modelId AND kind = 'embedding'`).run({ threshold, modelId });
}
