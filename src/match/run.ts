import { createHash } from 'node:crypto';
import type { Catalog, EmbeddedImage, MatchRow, VerifiedPair } from '../state/catalog.js';
import { searchOne, type DownstreamIndex, type Hit } from '../ann/hnsw.js';
import type { Progress } from '../util/progress-types.js';
import { decideCandidate, decisionOf, explain, insetFrameOf, verifyBacklog, type AlignmentRecord, type Candidate, type DecisionRule, type PairVerifier, type PlaneStore, type VerifyThread } from '../verify/run.js';
import type { VerifyJob } from '../verify/thread.js';
import { CROP_MARGIN, type Box } from '../embed/views.js';
import { INSET_MARGIN } from '../embed/inset.js';

export interface MatchOptions {
  modelId: string;
  upstreamSourceIds: number[];
  downstreamSourceIds: number[];
  /** How candidates are decided (verified score or cosine, and the threshold). */
  rule: DecisionRule;
  /** Candidates at or above this cosine are kept (and verified, and shown in candidates.csv). */
  floor: number;
  /** Downstream images considered per upstream query. */
  k: number;
  /** Upstream queries committed per transaction. */
  pageSize: number;
  /**
   * The verify stage, when on: candidates are verified as their page is matched when the upstream
   * plane is at hand in `store` (handed over by the embed stage), else in a pass after matching.
   */
  verify?: { verifier: PairVerifier; store: PlaneStore; size: number; thread?: VerifyThread };
}

/** A retrieved candidate and which of the upstream image's insets, if any, the verifier aligns it inside too. */
type MatchHit = Hit & Pick<Candidate, 'insetFrame'>;

export interface MatchResult { queried: number; candidates: number; matches: number; exact: number; resumedFrom: number; verified: number }

/** Everything that changes which candidates exist; the threshold and the verify rule only change decisions. */
function fingerprintOf(o: MatchOptions, index: DownstreamIndex): string {
  // CROP_MARGIN decides which views may bring a candidate in: candidates made under another margin are made again.
  // So does how an inset's hit is scored ('inset-hits-less-margin': its cosine less INSET_MARGIN).
  return createHash('sha1').update(JSON.stringify([o.modelId, o.upstreamSourceIds, o.downstreamSourceIds, o.floor, o.k, index.fingerprint, CROP_MARGIN, INSET_MARGIN, 'inset-hits-less-margin'])).digest('hex');
}

/**
 * Queries upstream images against the downstream index in upstream id order. Upstream embeddings
 * stream from the catalog a page at a time (memory grows with the downstream side only); each
 * page's candidates (exact pairs and embedding hits), their verification and the resume point
 * commit together, so a killed match resumes without redoing or doubling. `advance` can follow
 * the embed stage while it runs, up to the last id it committed; `finish` does the rest,
 * verifies what is left and decides.
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
    this.result = { queried: 0, candidates: 0, matches: 0, exact: 0, resumedFrom: state.last_upstream_id, verified: 0 };
  }

  /**
   * Pages matched but not committed yet: their verification is on the verify thread. They commit
   * in order (the resume point only moves with them), so a kill loses at most these pages.
   */
  private committing: Promise<void> = Promise.resolve();
  private uncommitted = 0;

  /** Match committed upstream images with ids up to `untilId`, at most `maxPages` pages. */
  advance(untilId: number, maxPages = Number.POSITIVE_INFINITY, progress?: Progress): void {
    for (let pages = 0; !this.done && pages < maxPages; pages++) {
      const page = this.catalog.embeddingsPage(this.o.upstreamSourceIds, this.o.modelId, this.afterId, this.o.pageSize, untilId);
      if (page.length === 0) break;
      const lastId = page[page.length - 1]!.id;
      const thread = this.o.verify?.thread;
      if (thread) this.dispatch(thread, page, lastId);
      else this.catalog.commitMatches(this.o.modelId, this.pageRows(page, lastId), lastId, false);
      this.o.verify?.store.releaseUpTo(lastId);
      this.afterId = lastId;
      this.result.queried += page.length;
      progress?.tick(page.length);
    }
  }

  /** Wait until at most `pages` matched pages are still being verified (back-pressure for the embed stage). */
  async settle(pages = 0): Promise<void> {
    while (this.uncommitted > pages) await this.committing;
  }

  /** A page's candidates now, their verification on the thread, and its commit when that is back, after the pages before it. */
  private dispatch(thread: VerifyThread, page: EmbeddedImage[], lastId: number): void {
    const { rows, hits } = this.retrieve(page, lastId);
    const insets = insetsOf(page);
    const jobs: VerifyJob[] = [];
    for (const [upstreamId, candidates] of hits) {
      const luma = this.o.verify!.store.take(upstreamId);
      // A copy: the plane is a view of its decode batch's buffer, which would be cloned whole.
      if (luma) jobs.push({ upstreamId, luma: luma.slice(), candidates, insets: insets.get(upstreamId) ?? [] });
    }
    const verified = thread.verify(jobs);
    verified.catch(() => undefined); // awaited in order below
    this.uncommitted++;
    this.committing = this.committing.then(async () => {
      const results = await verified;
      const byUpstream = new Map(jobs.map((j, i) => [j.upstreamId, results[i]!]));
      this.catalog.commitMatches(this.o.modelId, [...rows, ...this.candidateRows(hits, byUpstream)], lastId, false);
      this.uncommitted--;
    });
  }

  /** Match everything left, verify what is unverified, mark the match complete, and decide every candidate. */
  async finish(progress: Progress): Promise<MatchResult> {
    if (!this.done) {
      this.advance(Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY, progress);
      await this.settle(0);
      // Byte-identical copies need no embedding: also those whose pages the loop never saw.
      this.catalog.commitMatches(this.o.modelId, this.exactRows(this.afterId, Number.MAX_SAFE_INTEGER), this.afterId, true);
      this.done = true;
    }
    if (this.o.verify) {
      const { verifier, store, size } = this.o.verify;
      this.result.verified += await verifyBacklog(this.catalog, this.o.modelId, verifier, store, this.o.rule, size, progress);
    }
    applyThreshold(this.catalog, this.o.modelId, this.o.rule);
    const counts = this.catalog.db.prepare(`SELECT COUNT(*) AS candidates, SUM(decision = 'match') AS matches, SUM(kind = 'exact') AS exact FROM matches WHERE model_id = ?`)
      .get(this.o.modelId) as { candidates: number; matches: number | null; exact: number | null };
    return { ...this.result, candidates: counts.candidates, matches: counts.matches ?? 0, exact: counts.exact ?? 0 };
  }

  private exactRows(afterId: number, untilId: number): MatchRow[] {
    return this.catalog.exactPairs(this.o.upstreamSourceIds, this.o.downstreamSourceIds, afterId, untilId).map((p): MatchRow => ({
      ...p, score: 1, view: 0, kind: 'exact', decision: 'match', reason: explain('exact', 1, 0, null, null, this.o.rule), verifyScore: null, alignment: null,
    }));
  }

  /** Exact pairs of the page's id range, and each upstream image's embedding hits that are not exact pairs. */
  private retrieve(page: EmbeddedImage[], lastId: number): { rows: MatchRow[]; hits: Map<number, MatchHit[]> } {
    const rows = this.exactRows(this.afterId, lastId);
    const exact = new Set(rows.map((r) => `${r.upstreamId}:${r.downstreamId}`));
    const hits = new Map<number, MatchHit[]>();
    for (const u of page) {
      const found = this.search(u).filter((h) => !exact.has(`${u.id}:${h.downstreamId}`));
      if (found.length > 0) hits.set(u.id, found);
    }
    return { rows, hits };
  }

  /**
   * The image's hits, and those of the pictures found pasted into it or tiled with it, whose
   * cosine counts INSET_MARGIN less: per downstream image the best, at most k per descriptor, each
   * marked with the inset the verifier aligns it inside too, if any.
   */
  private search(u: EmbeddedImage): MatchHit[] {
    const wholeVector = u.vectors.subarray(0, this.index.dims);
    const whole = searchOne(this.index, wholeVector, this.o.k, this.o.floor);
    if (u.insets.length === 0) return whole;
    const best = new Map(whole.map((h) => [h.downstreamId, h]));
    for (const { vector } of u.insets) {
      for (const found of searchOne(this.index, vector, this.o.k, this.o.floor + INSET_MARGIN)) {
        const h = { ...found, score: found.score - INSET_MARGIN, identityScore: found.identityScore - INSET_MARGIN };
        if (h.score > (best.get(h.downstreamId)?.score ?? -Infinity)) best.set(h.downstreamId, h);
      }
    }
    const insetVectors = u.insets.map((i) => i.vector);
    return [...best.values()]
      .sort((a, b) => b.score - a.score || a.downstreamId - b.downstreamId)
      .map((h) => ({ ...h, insetFrame: insetFrameOf(this.index.vectors.get(h.downstreamId)!, wholeVector, insetVectors) }));
  }

  /** The page's rows, verified in this thread when the upstream plane is at hand. */
  private pageRows(page: EmbeddedImage[], lastId: number): MatchRow[] {
    const { rows, hits } = this.retrieve(page, lastId);
    const insets = insetsOf(page);
    const verified = new Map<number, VerifiedPair[]>();
    for (const [upstreamId, candidates] of hits) {
      const luma = this.o.verify?.store.take(upstreamId);
      if (luma) verified.set(upstreamId, this.o.verify!.verifier.verify(upstreamId, luma, candidates, insets.get(upstreamId)));
    }
    return [...rows, ...this.candidateRows(hits, verified)];
  }

  /** Candidate rows with their verification where there is one (else left for the backlog pass), decided. */
  private candidateRows(hits: Map<number, MatchHit[]>, verified: Map<number, VerifiedPair[]>): MatchRow[] {
    const rows: MatchRow[] = [];
    for (const [upstreamId, found] of hits) {
      const results = verified.get(upstreamId);
      if (results) this.result.verified += results.length;
      found.forEach((hit, i) => {
        const v = results?.[i];
        const decided = v
          ? decisionOf(v, hit.score, this.o.rule)
          : { decision: decideCandidate('embedding', hit.score, null, this.o.rule), reason: explain('embedding', hit.score, hit.view, null, null, this.o.rule) };
        rows.push({
          upstreamId, downstreamId: hit.downstreamId, score: hit.score, view: v?.view ?? hit.view, kind: 'embedding',
          ...decided, verifyScore: v?.verifyScore ?? null, alignment: v?.alignment ?? null,
        });
      });
    }
    return rows;
  }
}

/** Where each image of a page has its insets, for the verifier. */
const insetsOf = (page: EmbeddedImage[]): Map<number, Box[]> => new Map(page.flatMap((u) => (u.insets.length ? [[u.id, u.insets.map((i) => i.box)] as const] : [])));

/** Re-decide every stored candidate under a rule: no model, index or alignment work, and no rows in memory. */
export function applyThreshold(catalog: Catalog, modelId: string, rule: DecisionRule): void {
  catalog.db.function('neardup_reason', { deterministic: true }, (score, view, verifyScore, alignment) =>
    explain('embedding', score as number, view as number, verifyScore as number | null, alignment === null ? null : (JSON.parse(alignment as string) as AlignmentRecord), rule));
  const scoreColumn = rule.verify ? 'verify_score' : 'score';
  catalog.db.prepare(`UPDATE matches SET decision = CASE WHEN ${scoreColumn} >= @threshold THEN 'match' ELSE 'below-threshold' END,
    reason = neardup_reason(score, view, verify_score, alignment) WHERE model_id = @modelId AND kind = 'embedding'`).run({ threshold: rule.threshold, modelId });
}
