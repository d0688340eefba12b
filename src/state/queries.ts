import type { Catalog, SourceRow } from './catalog.js';
import { byPath, printedScore } from '../util/order.js';
import { acceptedOutsiders } from './reviews.js';

/** Read-side views of the catalog that the purge and report stages share. */

const ph = (n: number) => Array.from({ length: n }, () => '?').join(',');

export interface CandidateView {
  upstreamId: number; upstream: string; downstreamId: number; downstream: string; downstreamSourceId: number;
  score: number; view: number; kind: 'exact' | 'embedding';
  /**
   * What the outputs act on: 'match' (the upstream image is removed), 'below-threshold' (the
   * model's score fell short) or 'rejected' (a reviewer said it is not a copy, whatever the score).
   * A reviewer's decision overrides the model's; `decidedBy` says whose this is.
   */
  decision: 'match' | 'below-threshold' | 'rejected';
  /** Who decided: 'human' (a decision recorded with purge --decisions) or 'model' (the threshold). */
  decidedBy: 'human' | 'model';
  /** The model's own decision at the current threshold, kept when a reviewer overrode it. */
  modelDecision: 'match' | 'below-threshold';
  /** Why: the model's reason, prefixed with "accepted by reviewer" / "rejected by reviewer" when a human decided. */
  reason: string;
  /** The verify stage's score and alignment (JSON, see verify/run.ts AlignmentRecord); null when not verified. */
  verifyScore: number | null; alignment: string | null;
  /** images.meta of each side: compact JSON text, null when the source said nothing. */
  upstreamMeta: string | null; downstreamMeta: string | null;
}

/**
 * Every stored candidate between these sides, best first, ties broken by path for stable output,
 * with the reviewers' decisions applied (see reviews.ts); pairs a reviewer accepted that this
 * model never retrieved are included too, as matches.
 */
export function candidates(catalog: Catalog, modelId: string, upIds: number[], downIds: number[]): CandidateView[] {
  const stored = catalog.db.prepare(`
    SELECT m.upstream_id AS upstreamId, u.path AS upstream, m.downstream_id AS downstreamId, d.path AS downstream,
           d.source_id AS downstreamSourceId, m.score, m.view, m.kind, m.decision AS modelDecision,
           CASE r.decision WHEN 'accept' THEN 'match' WHEN 'reject' THEN 'rejected' ELSE m.decision END AS decision,
           CASE WHEN r.decision IS NULL THEN 'model' ELSE 'human' END AS decidedBy,
           CASE r.decision WHEN 'accept' THEN 'accepted by reviewer (model: ' || m.reason || ')'
                           WHEN 'reject' THEN 'rejected by reviewer (model: ' || m.reason || ')' ELSE m.reason END AS reason,
           m.verify_score AS verifyScore, m.alignment, u.meta AS upstreamMeta, d.meta AS downstreamMeta
    FROM matches m JOIN images u ON u.id = m.upstream_id JOIN images d ON d.id = m.downstream_id
    LEFT JOIN reviews r ON r.upstream_hash = u.hash AND r.downstream_hash = d.hash
    WHERE m.model_id = ? AND u.status = 'ok' AND d.status = 'ok' AND u.source_id IN (${ph(upIds.length)}) AND d.source_id IN (${ph(downIds.length)})
    ORDER BY ROUND(m.score, 6) DESC, u.path, d.path`).all(modelId, ...upIds, ...downIds) as CandidateView[];
  const extra = acceptedOutsiders(catalog, modelId, upIds, downIds).map((o): CandidateView => ({
    ...o, kind: 'embedding', decision: 'match', decidedBy: 'human', modelDecision: 'below-threshold', verifyScore: null, alignment: null,
    reason: `accepted by reviewer (model: not a candidate of ${modelId}, cosine ${o.score.toFixed(4)})`,
  }));
  return extra.length === 0 ? stored : [...stored, ...extra].sort(byCandidateOrder);
}

/** The SQL order of candidates(): printed score descending, then upstream and downstream path. */
const byCandidateOrder = (a: CandidateView, b: CandidateView): number =>
  printedScore(b.score) - printedScore(a.score) || byPath(a.upstream, b.upstream) || byPath(a.downstream, b.downstream);

/** Decided matches reduced to one row per upstream image: its best match (what removed.csv lists). */
export function removals(all: CandidateView[]): CandidateView[] {
  const best = new Map<number, CandidateView>();
  for (const c of all) if (c.decision === 'match' && !best.has(c.upstreamId)) best.set(c.upstreamId, c);
  return [...best.values()].sort((a, b) => byPath(a.upstream, b.upstream));
}

/** Paths of usable upstream images, in path order, a page at a time (for keep.txt). */
export function* okPaths(catalog: Catalog, sourceIds: number[]): Generator<{ id: number; path: string }> {
  const stmt = catalog.db.prepare(`SELECT id, path FROM images WHERE source_id IN (${ph(sourceIds.length)}) AND status = 'ok' AND path > ? ORDER BY path LIMIT 5000`);
  let after = '';
  for (;;) {
    const rows = stmt.all(...sourceIds, after) as { id: number; path: string }[];
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1]!.path;
  }
}

export interface SourceCounts { source: SourceRow; images: number; ok: number; errors: number; pending: number }

export function sourceCounts(catalog: Catalog, ids: number[]): SourceCounts[] {
  return catalog.sources(ids).map((source) => {
    const c = catalog.db.prepare(`SELECT COUNT(*) AS images, SUM(status = 'ok') AS ok, SUM(status = 'error') AS errors, SUM(status = 'pending') AS pending
      FROM images WHERE source_id = ?`).get(source.id) as { images: number; ok: number | null; errors: number | null; pending: number | null };
    return { source, images: c.images, ok: c.ok ?? 0, errors: c.errors ?? 0, pending: c.pending ?? 0 };
  });
}

/** How many images of these sources carry each distinct images.meta text (NULL metas left out). */
export function metaCounts(catalog: Catalog, ids: number[]): { meta: string; count: number }[] {
  return catalog.db.prepare(`SELECT meta, COUNT(*) AS count FROM images WHERE source_id IN (${ph(ids.length)}) AND meta IS NOT NULL GROUP BY meta`)
    .all(...ids) as { meta: string; count: number }[];
}

export interface ErrorRow { path: string; source: string; role: string; error: string }

export function errorRows(catalog: Catalog, ids: number[]): ErrorRow[] {
  return catalog.db.prepare(`SELECT i.path, s.spec AS source, s.role, i.error FROM images i JOIN sources s ON s.id = i.source_id
    WHERE i.source_id IN (${ph(ids.length)}) AND i.status = 'error' ORDER BY s.role = 'upstream', s.id, i.path`).all(...ids) as ErrorRow[];
}

/** Group reasons: details after the first parenthesis or colon vary per file, the kind does not. */
export function reasonKind(error: string): string {
  return error.replace(/\s*\(.*$/s, '').replace(/:\s.*$/s, '').trim();
}

export function errorsByReason(rows: ErrorRow[]): { reason: string; count: number; examples: string[] }[] {
  const groups = new Map<string, { reason: string; count: number; examples: string[] }>();
  for (const r of rows) {
    const kind = reasonKind(r.error);
    const g = groups.get(kind) ?? { reason: kind, count: 0, examples: [] };
    g.count++;
    if (g.examples.length < 5) g.examples.push(r.path);
    groups.set(kind, g);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
}
