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
 * Queries upstream images against the downstream index in upstream id order. Upstream embeddings
 * stream from the catalog a page at a time (memory grows with the downstream side only); each
 * page's candidates (exact pairs and embedding hits) and the resume point commit together, so a
 * killed match resumes without redoing or doubling. `advance` can follow the embed stage while it
 * runs, up to the last id it committed; `finish` does the rest and decides at the threshold.
 */
export class MatchCursor {
  private afterId: number;
  private done: boolean;
  private readonly result: MatchResult;

  constructor(private readonly catalog: Catalog, private readonly index: DownstreamIndex, private readonly o: MatchOptions) {
    const fingerprint = fingerprintOf(o, index);
    let state = catalog.matchState(o.modelId);
    if (!state || state.fingerprint !== fingerprint) {
      catalog.resetMatches(o.modelId, fingerprint);
      state = catalog.matchState(o.modelId)!;
    }
    this.afterId = state.last_upstream_id;
    this.done = state.done === 1;
    this.result = { queried: 0, candidates: 0, matches: 0, exact: 0, resumedFrom: state.last_upstream_id };
  }

  /** Match committed upstream images with ids up to `untilId`, at most `maxPages` pages. */
  advance(untilId: number, maxPages = Number.POSITIVE_INFINITY, progress?: Progress): void {
    for (let pages = 0; !this.done && pages < maxPages; pages++) {
      const page = this.catalog.embeddingsPage(this.o.upstreamSourceIds, this.o.modelId, this.afterId, this.o.pageSize, untilId);
      if (page.length === 0) break;
      const lastId = page[page.length - 1]!.id;
      this.catalog.commitMatches(this.o.modelId, this.pageRows(page, lastId), lastId, false);
      this.afterId = lastId;
      this.result.queried += page.length;
      progress?.tick(page.length);
    }
  }

  /** Match everything left, mark the match complete, and decide every candidate at the threshold. */
  finish(progress: Progress): MatchResult {
    if (!this.done) {
      this.advance(Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY, progress);
      // Byte-identical copies need no embedding: also those whose pages the loop never saw.
      this.catalog.commitMatches(this.o.modelId, this.exactRows(this.afterId, Number.MAX_SAFE_INTEGER), this.afterId, true);
      this.done = true;
    }
    applyThreshold(this.catalog, this.o.modelId, this.o.threshold);
    const counts = this.catalog.db.prepare(`SELECT COUNT(*) AS candidates, SUM(decision = 'match') AS matches, SUM(kind = 'exact') AS exact FROM matches WHERE model_id = ?`)
      .get(this.o.modelId) as { candidates: number; matches: number | null; exact: number | null };
    return { ...this.result, candidates: counts.candidates, matches: counts.matches ?? 0, exact: counts.exact ?? 0 };
  }

  private exactRows(afterId: number, untilId: number): MatchRow[] {
    return this.catalog.exactPairs(this.o.upstreamSourceIds, this.o.downstreamSourceIds, afterId, untilId).map((p): MatchRow => ({
      ...p, score: 1, view: 0, kind: 'exact', decision: 'match', reason: reasonFor('exact', 1, 0, this.o.threshold),
    }));
  }

  /** Exact pairs of the page's id range, then embedding hits for pairs not already exact. */
  private pageRows(page: { id: number; vectors: Float32Array }[], lastId: number): MatchRow[] {
    const rows = this.exactRows(this.afterId, lastId);
    const exact = new Set(rows.map((r) => `${r.upstreamId}:${r.downstreamId}`));
    for (const u of page) {
      for (const hit of searchOne(this.index, u.vectors.subarray(0, this.index.dims), this.o.k, this.o.floor)) {
        if (exact.has(`${u.id}:${hit.downstreamId}`)) continue;
        rows.push({
          upstreamId: u.id, downstreamId: hit.downstreamId, score: hit.score, view: hit.view, kind: 'embedding',
          decision: decide(hit.score, this.o.threshold), reason: reasonFor('embedding', hit.score, hit.view, this.o.threshold),
        });
      }
    }
    return rows;
  }
}

/** Re-decide every stored candidate at a new threshold: no model or index work, and no rows in memory. */
export function applyThreshold(catalog: Catalog, modelId: string, threshold: number): void {
  catalog.db.function('neardup_reason', { deterministic: true }, (score, view, t) => reasonFor('embedding', score as number, view as number, t as number));
  catalog.db.prepare(`UPDATE matches SET decision = CASE WHEN score >= @threshold THEN 'match' ELSE 'below-threshold' END,
    reason = neardup_reason(score, view, @threshold) WHERE model_id = @modelId AND kind = 'embedding'`).run({ threshold, modelId });
}
