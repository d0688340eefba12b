import type { Catalog } from './catalog.js';
import { bestViewOf } from '../embed/vectors.js';

/**
 * Human review decisions (the reviews table, schema v5): what a reviewer said about a pair in
 * report.html's review view. Keyed by both images' content hashes, see schema.ts.
 */

export const REVIEW_DECISIONS = Object.freeze(['accept', 'reject'] as const);
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

/** One decision to record: the pair by its content hashes, and the paths the reviewer saw. */
export interface ReviewRow { upstreamHash: string; downstreamHash: string; decision: ReviewDecision; upstream: string; downstream: string }

const ph = (n: number) => Array.from({ length: n }, () => '?').join(',');

/**
 * Content hash of each usable image at these paths in these sources (the paths as matches.csv
 * prints them). A path catalogued twice (one folder named by two specs) is the same file, so any
 * of its rows will do. images.path has no index: the paths go into a temporary table and the
 * images are scanned once, not once per path.
 */
export function hashesByPath(catalog: Catalog, sourceIds: number[], paths: string[]): Map<string, string> {
  const found = new Map<string, string>();
  if (paths.length === 0) return found;
  catalog.db.exec('CREATE TEMP TABLE IF NOT EXISTS wanted_paths (path TEXT PRIMARY KEY) WITHOUT ROWID; DELETE FROM wanted_paths');
  const put = catalog.db.prepare('INSERT OR IGNORE INTO wanted_paths(path) VALUES (?)');
  catalog.db.transaction(() => { for (const p of paths) put.run(p); })();
  const rows = catalog.db.prepare(`SELECT i.path, i.hash FROM images i JOIN wanted_paths w ON w.path = i.path
    WHERE i.status = 'ok' AND i.hash IS NOT NULL AND i.source_id IN (${ph(sourceIds.length)})`).all(...sourceIds) as { path: string; hash: string }[];
  catalog.db.exec('DELETE FROM wanted_paths');
  for (const r of rows) found.set(r.path, r.hash);
  return found;
}

/** Record decisions in one transaction; a new decision on a pair replaces the old one. */
export function recordReviews(catalog: Catalog, rows: ReviewRow[], at = new Date().toISOString()): void {
  const put = catalog.db.prepare(`INSERT INTO reviews(upstream_hash, downstream_hash, decision, upstream, downstream, decided_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT(upstream_hash, downstream_hash) DO UPDATE SET decision = excluded.decision, upstream = excluded.upstream, downstream = excluded.downstream, decided_at = excluded.decided_at`);
  catalog.db.transaction(() => {
    for (const r of rows) put.run(r.upstreamHash, r.downstreamHash, r.decision, r.upstream, r.downstream, at);
  }).immediate();
}

/** An accepted pair that is not a stored candidate of this model (another model did not retrieve it, say). */
export interface AcceptedOutsider {
  upstreamId: number; upstream: string; downstreamId: number; downstream: string; downstreamSourceId: number;
  upstreamMeta: string | null; downstreamMeta: string | null;
  /** Best cosine over the downstream views, from this model's embeddings; 0 and view 0 when either is missing. */
  score: number; view: number;
}

/**
 * Accepted pairs between these sides with no candidate row for this model: a human said the
 * upstream image copies the downstream one, so it is removed whether or not the model found it.
 * The reviews drive the query (CROSS JOIN fixes SQLite's join order; the unary + keeps the
 * source and status terms off the index, so each image is found by its hash): left to the
 * planner it walked every (upstream, downstream) pair of the two sources and looked each up
 * in the reviews, 10 s of a 5,000 × 5,000 audit with no review at all.
 */
export function acceptedOutsiders(catalog: Catalog, modelId: string, upIds: number[], downIds: number[]): AcceptedOutsider[] {
  const rows = catalog.db.prepare(`
    SELECT u.id AS upstreamId, u.path AS upstream, d.id AS downstreamId, d.path AS downstream, d.source_id AS downstreamSourceId,
           u.meta AS upstreamMeta, d.meta AS downstreamMeta, eu.views AS upViews, eu.vectors AS upVectors, ed.views AS downViews, ed.vectors AS downVectors
    FROM reviews r CROSS JOIN images u ON u.hash = r.upstream_hash CROSS JOIN images d ON d.hash = r.downstream_hash
    LEFT JOIN embeddings eu ON eu.hash = u.hash AND eu.model_id = @modelId
    LEFT JOIN embeddings ed ON ed.hash = d.hash AND ed.model_id = @modelId
    WHERE r.decision = 'accept' AND +u.status = 'ok' AND +d.status = 'ok'
      AND +u.source_id IN (${upIds.map((_, i) => `@u${i}`).join(',')}) AND +d.source_id IN (${downIds.map((_, i) => `@d${i}`).join(',')})
      AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.model_id = @modelId AND m.upstream_id = u.id AND m.downstream_id = d.id)`)
    .all({ modelId, ...Object.fromEntries(upIds.map((id, i) => [`u${i}`, id])), ...Object.fromEntries(downIds.map((id, i) => [`d${i}`, id])) }) as
    (Omit<AcceptedOutsider, 'score' | 'view'> & { upViews: number | null; upVectors: Buffer | null; downViews: number | null; downVectors: Buffer | null })[];
  return rows.map(({ upViews, upVectors, downViews, downVectors, ...r }) => ({ ...r, ...bestView(upViews, upVectors, downViews, downVectors) }));
}

const floats = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** The best cosine of the upstream image (its view 0) against the downstream image's views. */
function bestView(upViews: number | null, up: Buffer | null, downViews: number | null, down: Buffer | null): { score: number; view: number } {
  if (!up || !down || !upViews || !downViews) return { score: 0, view: 0 };
  const u = floats(up);
  const best = bestViewOf(floats(down), u.subarray(0, u.length / upViews));
  return Number.isFinite(best.score) ? best : { score: 0, view: 0 };
}
