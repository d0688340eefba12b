/**
 * The verify stage: every candidate pair the match stage retrieves is checked by alignment
 * (aligner.ts) before anything is decided. Its score is an independent second test — whether
 * the downstream image, zoomed, rotated and shifted, reproduces the upstream image's structure —
 * so its false matches multiply the embedder's instead of adding to them. The catalog keeps the
 * score and the alignment with each candidate: a new threshold re-decides without re-verifying.
 */
import { Worker } from 'node:worker_threads';
import pLimit from 'p-limit';
import { decodeImage } from '../scan/decode.js';
import type { Catalog, MatchRow, UnverifiedPair, VerifiedPair } from '../state/catalog.js';
import type { Progress } from '../util/progress-types.js';
import { cropBox, dihedralOf, isCropView, resizeBox, uniformBorderBox, viewName, type Box } from '../embed/views.js';
import { bestViewOf } from '../embed/vectors.js';
import type { ImagePlane } from '../embed/run.js';
import { lumaInView, type Aligner } from './aligner.js';
import { describeAffine, GEOMETRY, VERIFIER_ID, type Alignment } from './geometry.js';
import { lumaOfRgb } from './luma.js';
import type { VerifyJob } from './thread.js';
import { CONTROL_RATE, controlViews, isControlSample } from './control.js';

/** How candidates are decided: by the verified score (default) or, with `--verify off`, by cosine alone. */
export interface DecisionRule { verify: boolean; threshold: number }

/** What the catalog keeps of an alignment (matches.alignment, JSON): enough to explain and to draw it. */
export interface AlignmentRecord {
  verifier: string;
  /** Dihedral view of the downstream image that aligned (see embed/views.ts). */
  view: number;
  /** Scale of the downstream image inside the upstream one (below 1: the copy shows it smaller). */
  zoom: number;
  /** Rotation in degrees (clockwise on screen). */
  angle: number;
  /** Where the downstream image's centre lands, relative to the upstream centre, as shares of its side. */
  shiftX: number;
  shiftY: number;
  /** Share of the upstream image covered by the aligned downstream image. */
  overlap: number;
  /** Correlation over that overlap (the score before the small-overlap penalty). */
  ncc: number;
  /** Upstream pixel → downstream pixel, on the size×size grid of the model input. */
  affine: number[];
  /** Set when the upstream image could not be read again to verify it. */
  error?: string;
  /** The control alignment's score (downstream mirrored, see control.ts), on sampled pairs only. */
  control?: number;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

export function alignmentRecord(a: Alignment, view: number): AlignmentRecord {
  const { zoom, angle, shiftX, shiftY } = describeAffine(a.affine);
  return {
    verifier: VERIFIER_ID, view, zoom: r3(zoom), angle: Math.round(angle * 10) / 10, shiftX: r3(shiftX), shiftY: r3(shiftY),
    overlap: r3(a.overlap), ncc: r3(a.ncc), affine: a.affine.map((v) => Math.round(v * 1e5) / 1e5),
  };
}

/** Exact pairs always match; otherwise the rule's score against its threshold (an unverified pair is not a match under verification). */
export function decideCandidate(kind: MatchRow['kind'], cosine: number, verifyScore: number | null, rule: DecisionRule): MatchRow['decision'] {
  if (kind === 'exact') return 'match';
  const score = rule.verify ? verifyScore : cosine;
  return score !== null && score >= rule.threshold ? 'match' : 'below-threshold';
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`;

/** A sentence a reviewer can check: what was aligned how, and against which threshold. */
export function explain(kind: MatchRow['kind'], cosine: number, embeddingView: number, verifyScore: number | null, alignment: AlignmentRecord | null, rule: DecisionRule): string {
  if (kind === 'exact') return 'exact duplicate: byte-identical image data';
  const cos = `cosine ${cosine.toFixed(4)}`;
  if (!rule.verify) return `${cos} ${cosine >= rule.threshold ? '≥' : '<'} threshold ${rule.threshold} (view ${viewName(embeddingView)})`;
  if (verifyScore === null || alignment === null) return `not verified yet (${cos})`;
  if (alignment.error) return `could not verify: ${alignment.error} (${cos})`;
  const how = [
    `zoom ${alignment.zoom.toFixed(2)}`,
    Math.abs(alignment.angle) >= 1 ? `rotated ${Math.round(alignment.angle)}°` : null,
    Math.abs(alignment.shiftX) >= 0.02 || Math.abs(alignment.shiftY) >= 0.02 ? `shifted (${signed(alignment.shiftX)}, ${signed(alignment.shiftY)})` : null,
    alignment.view !== 0 ? `view ${viewName(alignment.view)}` : null,
    `${Math.round(alignment.overlap * 100)}% overlap`,
  ].filter(Boolean).join(', ');
  const passed = verifyScore >= rule.threshold;
  return `${passed ? 'aligned' : 'not aligned'}: ${how}, correlation ${verifyScore.toFixed(2)} ${passed ? '≥' : '<'} ${rule.threshold} (${cos})`;
}

/**
 * Upstream planes handed over by the embed stage (in memory: upstream images are many, and each
 * is needed only until its candidates are verified) until matching takes them. Bounded: when
 * matching falls behind, the oldest are dropped, and those images are decoded again later.
 */
export class PlaneStore {
  private readonly planes = new Map<number, Uint8Array>();
  constructor(private readonly capacity = 50_000) {}

  put(planes: readonly ImagePlane[]): void {
    for (const p of planes) this.planes.set(p.id, p.luma);
    for (const id of this.planes.keys()) {
      if (this.planes.size <= this.capacity) break;
      this.planes.delete(id);
    }
  }

  /** The plane of image `id`, if at hand (kept until releaseUpTo passes it). */
  take(id: number): Uint8Array | undefined {
    return this.planes.get(id);
  }

  /** Let go of every plane of an image id up to `lastId` (matching has passed them). */
  releaseUpTo(lastId: number): void {
    for (const id of this.planes.keys()) if (id <= lastId) this.planes.delete(id);
  }
}

export interface VerifyStats { pairs: number; alignments: number; ms: number; decoded: number }

/**
 * A candidate as the verifier sees it: the downstream image, the view the embedding matched in
 * and, when retrieval just measured them, the cosines in that view and in the identity view.
 * `insetFrame`: which of the upstream image's insets to align inside too, if any (see insetFrameOf).
 */
export interface Candidate { downstreamId: number; view: number; score?: number; identityScore?: number; insetFrame?: number }

/**
 * Which of the upstream image's insets a candidate is aligned inside as well: the one whose
 * descriptor scores it highest, when that is at least as high as the whole image's (best over
 * the candidate's stored views); none otherwise. Elsewhere an inset is a part of the picture the
 * candidate does not resemble, or an edge inside a plain photo taken for a seam (embed/inset.ts
 * finds insets in ~20% of those), and the frame costs alignments without finding anything. Inline
 * matching and the backlog both decide by this one function on the same stored vectors, so a
 * resumed run verifies alike.
 */
export function insetFrameOf(downstream: Float32Array, whole: Float32Array, insets: readonly Float32Array[]): number | undefined {
  let frame: number | undefined;
  let best = bestViewOf(downstream, whole).score;
  insets.forEach((inset, k) => {
    const dot = bestViewOf(downstream, inset).score;
    if (dot >= best) [frame, best] = [k, dot];
  });
  return frame;
}

/**
 * Verifies upstream images against their candidates with one aligner. Each downstream image is
 * prepared once per view it is asked in and kept (most recently used first); each upstream image
 * is prepared once for all its candidates. Both the embedding's best view and the identity view
 * are tried: the best view alone loses copies whose embedding preferred a wrong view.
 */
export class PairVerifier {
  /** Per downstream image, its prepared form (the filtered plane: ~16 KB), most recently used last. */
  private readonly images: LruCache<number, unknown>;
  /** Per (image, view), the planes derived from it (~55 KB): only the most recent, for images asked again at once. */
  private readonly views = new LruCache<string, unknown>(256);
  private readonly hashes = new Map<number, string>();
  readonly stats: VerifyStats = { pairs: 0, alignments: 0, ms: 0, decoded: 0 };

  /** `imageEntries`: downstream images kept prepared (the default holds a 10,000-image test set, ~160 MB). */
  constructor(private readonly catalog: Catalog, private readonly aligner: Aligner, private readonly size: number, imageEntries = 10_000, private readonly controlRate = CONTROL_RATE) {
    this.images = new LruCache(imageEntries);
  }

  /**
   * Aligns the upstream image with each candidate, in its full frame and, when it has uniform
   * borders (a frame, padding, the canvas of a copy pasted smaller), again inside them, and
   * inside `insets[k]`, a picture the embed stage found pasted into it or tiled with it, for the
   * candidates marked `insetFrame` k: the coarse search
   * resamples about the centre, so a copy pasted off-centre is found only once its canvas is
   * cut away. The best alignment counts, mapped back to the full frame.
   */
  verify(upstreamId: number, luma: Uint8Array, candidates: readonly Candidate[], insets: readonly Box[] = []): VerifiedPair[] {
    const t0 = performance.now();
    const upHash = this.catalog.imageRef(upstreamId)?.hash ?? String(upstreamId);
    const found: (Found | undefined)[] = candidates.map(() => undefined);
    const controls: (number | undefined)[] = candidates.map(() => undefined);
    const missing = candidates.map(() => false);
    const sampled = candidates.map((c) => isControlSample(upHash, this.hashOf(c.downstreamId), this.controlRate));
    const top = topCandidate(candidates);
    const wanted = new Set(candidates.flatMap((c) => (c.insetFrame === undefined ? [] : [c.insetFrame])));
    for (const frame of upstreamFrames(luma, this.size, insets, wanted)) {
      this.aligner.setUpstream(frame.luma);
      candidates.forEach((c, i) => {
        if (frame.inset !== undefined && c.insetFrame !== frame.inset) return;
        const tried = viewsToTry(c);
        const best = this.bestAlignment(c.downstreamId, tried);
        if (best === undefined) return void (missing[i] = true);
        const keep = (f: Found) => void ((!found[i] || f.a.score > found[i]!.a.score) && (found[i] = f));
        keep({ ...best, frame: frame.box });
        if (frame.box === undefined && i === top && isCropView(c.view)) {
          const crop = this.downstream(c.downstreamId, c.view);
          if (crop !== undefined) keep({ a: this.align(crop), view: 0, frame: undefined, crop: cropBox(c.view, this.size) });
        }
        if (!sampled[i]) return;
        const control = this.bestAlignment(c.downstreamId, controlViews(tried));
        if (control !== undefined && control.a.score > (controls[i] ?? -Infinity)) controls[i] = control.a.score;
      });
    }
    const out = candidates.map((c, i) => {
      this.stats.pairs++;
      const f = found[i];
      if (missing[i] || f === undefined) return PairVerifier.unverifiable(upstreamId, c, 'the downstream image has no stored plane');
      const record = alignmentRecord(inDownstreamFrame(inFullFrame(f.a, f.frame, this.size), f.crop, this.size), f.view);
      if (controls[i] !== undefined) record.control = r3(controls[i]!);
      return { upstreamId, downstreamId: c.downstreamId, view: f.view, verifyScore: r3(f.a.score), alignment: JSON.stringify(record) };
    });
    this.stats.ms += performance.now() - t0;
    return out;
  }

  /** A pair that cannot be verified (its upstream image no longer decodes): score 0, with the reason. */
  static unverifiable(upstreamId: number, c: Candidate, error: string): VerifiedPair {
    const alignment: AlignmentRecord = { verifier: VERIFIER_ID, view: c.view, zoom: 0, angle: 0, shiftX: 0, shiftY: 0, overlap: 0, ncc: 0, affine: [], error };
    return { upstreamId, downstreamId: c.downstreamId, view: c.view, verifyScore: 0, alignment: JSON.stringify(alignment) };
  }

  /** The best alignment of the current upstream image with the downstream image over these views; undefined without a plane or views. */
  private bestAlignment(downstreamId: number, views: readonly number[]): { a: Alignment; view: number } | undefined {
    let best: { a: Alignment; view: number } | undefined;
    for (const view of views) {
      const down = this.downstream(downstreamId, view);
      if (down === undefined) return undefined;
      const a = this.align(down);
      if (!best || a.score > best.a.score) best = { a, view };
    }
    return best;
  }

  private align(down: unknown): Alignment {
    this.stats.alignments++;
    return this.aligner.verify(down);
  }

  /**
   * Downstream image `id` prepared in view `view`: a dihedral view of its prepared image, or a
   * crop view (embed/views.ts CROPS) resampled from its plane and prepared on its own, so that
   * the crop is as blurred as a copy cropped to it and enlarged.
   */
  private downstream(id: number, view: number): unknown {
    const key = `${id}:${view}`;
    const prepared = this.views.get(key);
    if (prepared !== undefined) return prepared;
    if (isCropView(view)) {
      const luma = this.catalog.plane(this.hashOf(id), this.size);
      if (!luma) return undefined;
      const crop = this.aligner.prepareDownstream(resizeBox(luma, this.size, cropBox(view, this.size), 1));
      this.views.set(key, crop);
      return crop;
    }
    let image = this.images.get(id);
    if (image === undefined) {
      const luma = this.catalog.plane(this.hashOf(id), this.size);
      if (!luma) return undefined;
      image = this.aligner.prepareImage(luma);
      this.images.set(id, image);
    }
    const derived = this.aligner.prepareView(image, view);
    this.views.set(key, derived);
    return derived;
  }

  private hashOf(id: number): string {
    let h = this.hashes.get(id);
    if (h === undefined) {
      h = this.catalog.imageRef(id)?.hash ?? '';
      this.hashes.set(id, h);
    }
    return h;
  }
}

/** A map that forgets its least recently used entries beyond `capacity`. */
class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
  }
}

/**
 * The candidate with the highest cosine (the lowest downstream id among equals), the only one
 * aligned against the crop view it was retrieved through: at 300 × 10,000 that crop frame then
 * kept 1,026 of the 1,046 true pairs retrieved through a crop and 5,221 of 46,849 others.
 */
function topCandidate(candidates: readonly Candidate[]): number {
  let top = -1;
  candidates.forEach((c, i) => {
    const t = candidates[top];
    if (!t || (c.score ?? -Infinity) > (t.score ?? -Infinity) || (c.score === t.score && c.downstreamId < t.downstreamId)) top = i;
  });
  return top;
}

/** The embedding's best view, and the identity view unless the embedding ranked it far below (see GEOMETRY.identityGate). */
function viewsToTry(c: Candidate): number[] {
  const view = dihedralOf(c.view);
  if (view === 0) return [0];
  const gap = c.score !== undefined && c.identityScore !== undefined ? c.score - c.identityScore : 0;
  return gap > GEOMETRY.identityGate ? [view] : [view, 0];
}

/**
 * An alignment and where it was found: in the upstream image's full frame, inside its uniform
 * borders, or inside its inset (`frame`); against the whole downstream image or one of its crop
 * views (`crop`).
 */
interface Found { a: Alignment; view: number; frame: Box | undefined; crop?: Box }

/**
 * The upstream image as it is, inside its uniform borders when it has them, and inside each of
 * its insets that some candidate is to be aligned in (`inset`: which), each resized to the full
 * side. The others are not resampled: most candidates want none.
 */
function upstreamFrames(luma: Uint8Array, size: number, insets: readonly Box[], wanted: ReadonlySet<number>): { luma: Uint8Array; box: Box | undefined; inset?: number }[] {
  const border = uniformBorderBox(luma, size, 1);
  const inside = (box: Box, inset?: number) => ({ luma: resizeBox(luma, size, box, 1), box, inset });
  return [{ luma, box: undefined }, ...(border ? [inside(border)] : []), ...insets.flatMap((box, k) => (wanted.has(k) ? [inside(box, k)] : []))];
}

/**
 * An alignment found inside the box, restated for the full frame: the affine composed with the
 * box's resampling (resizeBox's pixel-centre map), the overlap rescaled to the full image. The
 * score stays: it measured the content, not the border.
 */
function inFullFrame(a: Alignment, box: Box | undefined, size: number): Alignment {
  if (box === undefined) return a;
  const sx = size / box.width, sy = size / box.height;
  const ox = (0.5 - box.left) * sx - 0.5, oy = (0.5 - box.top) * sy - 0.5;
  const [p, q, r, s, t, u] = a.affine;
  return {
    ...a,
    affine: [p * sx, q * sy, p * ox + q * oy + r, s * sx, t * sy, s * ox + t * oy + u],
    overlap: (a.overlap * box.width * box.height) / (size * size),
  };
}

/**
 * An alignment against a crop of the downstream image, restated for the whole image: the affine
 * followed by the crop's resampling back (resizeBox's pixel-centre map). Score and overlap stay
 * (the overlap is the upstream image's share, which the whole image covers at least as well).
 */
function inDownstreamFrame(a: Alignment, crop: Box | undefined, size: number): Alignment {
  if (crop === undefined) return a;
  const sx = crop.width / size, sy = crop.height / size;
  const ox = crop.left + 0.5 * sx - 0.5, oy = crop.top + 0.5 * sy - 0.5;
  const [p, q, r, s, t, u] = a.affine;
  return { ...a, affine: [p * sx, q * sx, r * sx + ox, s * sy, t * sy, u * sy + oy] };
}

/** The model-input luma of one catalogued image, decoded again (when it was not handed over). */
async function decodeLuma(catalog: Catalog, id: number, size: number): Promise<{ luma: Uint8Array } | { error: string }> {
  const ref = catalog.imageRef(id);
  if (!ref) return { error: `image ${id} is not in the catalog` };
  const r = await decodeImage(ref, { size });
  return r.ok ? { luma: lumaOfRgb(r.rgb!, size * size) } : { error: r.error };
}

/**
 * Store the luma plane of every ok image of these (downstream) sources that lacks one: catalogs
 * embedded before the verify stage existed, or sides imported from a prepared catalog.
 */
export async function ensurePlanes(catalog: Catalog, sourceIds: number[], size: number, concurrency: number, progress: Progress): Promise<number> {
  const limit = pLimit(concurrency);
  let afterId = 0;
  let stored = 0;
  for (;;) {
    const page = catalog.missingPlanes(sourceIds, size, afterId, 256);
    if (page.length === 0) return stored;
    if (afterId === 0) progress.start('planes (downstream luma for verification)', undefined);
    afterId = page[page.length - 1]!.id;
    const decoded = await Promise.all(page.map((item) => limit(() => decodeImage(item, { size }).then((r) => ({ item, r })))));
    const rows = decoded.flatMap(({ item, r }) => (r.ok && item.hash ? [{ hash: item.hash, luma: lumaOfRgb(r.rgb!, size * size) }] : []));
    catalog.putPlanes(size, rows);
    stored += rows.length;
    progress.tick(page.length);
  }
}

/**
 * Verify every candidate of this model not verified by this verifier yet (a resumed run's
 * backlog, candidates made with `--verify off`, or by an older verifier), a page of upstream
 * images per transaction, so a kill loses at most one page. Upstream images are taken from
 * `store` when at hand, else decoded again.
 */
export async function verifyBacklog(catalog: Catalog, modelId: string, verifier: PairVerifier, store: PlaneStore | undefined, rule: DecisionRule, size: number, progress?: Progress): Promise<number> {
  let afterId = 0;
  let verified = 0;
  for (;;) {
    const pairs = catalog.unverifiedPairs(modelId, VERIFIER_ID, afterId, 128);
    if (pairs.length === 0) return verified;
    const results: VerifiedPair[] = [];
    for (const [upstreamId, group] of groupByUpstream(pairs)) {
      const held = store?.take(upstreamId);
      const got = held ? { luma: held } : await decodeLuma(catalog, upstreamId, size);
      if (!held) verifier.stats.decoded++;
      if ('error' in got) results.push(...group.map((c) => PairVerifier.unverifiable(upstreamId, c, got.error)));
      else {
        const insets = catalog.insetsOf(upstreamId, modelId);
        results.push(...verifier.verify(upstreamId, got.luma, asCandidates(catalog, modelId, upstreamId, group, insets.map((i) => i.vector)), insets.map((i) => i.box)));
      }
    }
    const cosines = new Map(pairs.map((q) => [`${q.upstreamId}:${q.downstreamId}`, q.score]));
    catalog.commitVerified(modelId, results, (p) => decisionOf(p, cosines.get(`${p.upstreamId}:${p.downstreamId}`)!, rule));
    afterId = pairs[pairs.length - 1]!.upstreamId;
    store?.releaseUpTo(afterId);
    verified += results.length;
    progress?.tick(results.length);
  }
}

/**
 * Stored candidates with what inline matching knew of them, from the stored descriptors: the
 * identity-view cosine (which views to try) and which inset to align inside, so the
 * backlog verifies as inline verification would.
 */
function asCandidates(catalog: Catalog, modelId: string, upstreamId: number, group: UnverifiedPair[], insets: readonly Float32Array[]): Candidate[] {
  const vectors = catalog.vectorsOf(upstreamId, modelId);
  const whole = insets.length > 0 ? vectors?.subarray(0, insets[0]!.length) : undefined;
  return group.map((c) => {
    const d = vectors && catalog.vectorsOf(c.downstreamId, modelId);
    if (!vectors || !d) return c;
    let dot = 0;
    for (let i = 0; i < vectors.length; i++) dot += vectors[i]! * d[i]!;
    return { ...c, identityScore: dot, insetFrame: whole ? insetFrameOf(d, whole, insets) : undefined };
  });
}

function groupByUpstream(pairs: UnverifiedPair[]): Map<number, UnverifiedPair[]> {
  const groups = new Map<number, UnverifiedPair[]>();
  for (const p of pairs) groups.set(p.upstreamId, [...(groups.get(p.upstreamId) ?? []), p]);
  return groups;
}

/** The decision and reason of a freshly verified candidate. */
export function decisionOf(p: VerifiedPair, cosine: number, rule: DecisionRule): { decision: MatchRow['decision']; reason: string } {
  const alignment = JSON.parse(p.alignment) as AlignmentRecord;
  return { decision: decideCandidate('embedding', cosine, p.verifyScore, rule), reason: explain('embedding', cosine, p.view, p.verifyScore, alignment, rule) };
}

/**
 * The verify stage on its own thread (thread.ts): jobs go out with the upstream planes, verified
 * pairs come back in order. Audits use it so that retrieval, decisions and commits (the main
 * thread) and alignment overlap instead of queueing on one thread.
 */
export class VerifyThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: VerifiedPair[][]) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;
  readonly stats = { pairs: 0, ms: 0 };

  constructor(db: string, size: number) {
    this.worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: { db, size } });
    this.worker.on('message', (m: { id: number; results?: VerifiedPair[][]; stats?: { pairs: number; ms: number }; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.error !== undefined) return p?.reject(new Error(`verify thread: ${m.error}`));
      this.stats.pairs += m.stats!.pairs;
      this.stats.ms += m.stats!.ms;
      p?.resolve(m.results!);
    });
    this.worker.on('error', (e) => {
      this.failure = new Error(`verify thread failed: ${e.message}`, { cause: e });
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    });
    this.worker.unref();
  }

  verify(jobs: VerifyJob[]): Promise<VerifiedPair[][]> {
    if (this.failure) return Promise.reject(this.failure);
    if (jobs.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, jobs });
    });
  }

  async close(): Promise<void> {
    this.worker.postMessage({ close: true });
    await this.worker.terminate();
  }
}
