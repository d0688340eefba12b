import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { printedScore } from '../util/order.js';
import type { Catalog } from '../state/catalog.js';
import { errorRows, errorsByReason, metaCounts, sourceCounts, type CandidateView } from '../state/queries.js';
import { thumbnailDataUri } from '../scan/decode.js';
import { scoreText, viewName, writeFileAtomic, type PurgeResult, type PurgeSelection } from '../purge/outputs.js';
import { viewIndex } from '../embed/views.js';
import { writeCsvFile } from './csv.js';
import { renderReport, DEFAULT_MAX_PAIRS, type ReportPair } from './html.js';
import { overlayDataUri } from './overlay.js';
import { writeCertificate } from '../certificate/build.js';
import type { Certificate } from '../certificate/types.js';
import { writeReviewFiles, type ReviewSection } from './review.js';
import { estimatePrecision, type PrecisionEstimate } from '../estimate/precision.js';

export interface ReportMeta {
  version: string;
  model: { id: string; name: string; sha256: string; runtime: string };
  threshold: number;
  floor: number;
  k: number;
  /** Decided by the verify stage's score (threshold on it) or by cosine alone. */
  verify: boolean;
  timings: Record<string, number>;
  catalog: string;
}

/** The machine-readable summary of a run (summary.json). */
export interface Summary {
  neardup: string;
  model: ReportMeta['model'];
  threshold: number;
  floor: number;
  /** Candidates per upstream image. */
  k: number;
  /** What the threshold applies to: 'verified' (the verify stage's alignment score) or 'cosine' (`--verify off`). */
  decidedBy: 'verified' | 'cosine';
  counts: { upstream: number; upstreamOk: number; downstream: number; downstreamOk: number; errors: number; candidates: number; matches: number; exactDuplicates: number; removed: number; kept: number };
  sources: { role: string; source: string; root: string; images: number; ok: number; errors: number; pending: number }[];
  perDownstream: { source: string; images: number; contaminated: number; matches: number }[];
  /** Present when downstream images carry a label or class (see labelOf): images and contaminated images per label, sorted by label. */
  contamination_by_label?: LabelContamination[];
  errors: { byReason: { reason: string; count: number; examples: string[] }[]; files: { path: string; source: string; reason: string }[]; filesOmitted: number };
  /** Pairs among the candidates whose decision is a reviewer's (purge --decisions): accepted (matches) and rejected. */
  review?: { accepted: number; rejected: number };
  /**
   * The run's precision estimated from its own control alignments (src/estimate/): null when it
   * cannot be estimated (decided by cosine, or verified before control alignments existed).
   */
  estimate?: PrecisionEstimate | null;
  timings: Record<string, number>;
  catalog: string;
}

const MAX_ERROR_FILES = 1000;

export type LabelValue = string | number;
export interface LabelContamination { label: LabelValue; images: number; contaminated: number }

/** images.meta text as an object; anything that is not a JSON object gives undefined. */
export function parseMeta(text: string | null | undefined): Record<string, string | number> | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string | number>) : undefined;
  } catch {
    return undefined;
  }
}

/** The label an image is counted under: label_name, class, label, then CIFAR-100's fine label (name first). */
export function labelOf(meta: Record<string, unknown> | undefined): LabelValue | undefined {
  if (!meta) return undefined;
  for (const k of ['label_name', 'class', 'label', 'fine_label_name', 'fine_label']) {
    const v = meta[k];
    if ((typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v))) return v;
  }
  return undefined;
}

/** Numbers first, in numeric order, then strings in code-unit order (as byPath compares). */
const byLabel = (a: LabelValue, b: LabelValue): number =>
  typeof a !== typeof b ? (typeof a === 'number' ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;

/** Downstream images per label, from (meta text, count) groups. */
export function imagesByLabel(groups: { meta: string; count: number }[]): Map<LabelValue, number> {
  const images = new Map<LabelValue, number>();
  for (const g of groups) {
    const label = labelOf(parseMeta(g.meta));
    if (label !== undefined) images.set(label, (images.get(label) ?? 0) + g.count);
  }
  return images;
}

/**
 * contamination_by_label: for every label, its downstream images and how many of them have at
 * least one match. `contaminatedMetas` holds the meta text of each distinct matched downstream
 * image. Undefined when no downstream image carries a label.
 */
export function labelTable(images: Map<LabelValue, number>, contaminatedMetas: Iterable<string | null | undefined>): LabelContamination[] | undefined {
  if (images.size === 0) return undefined;
  const contaminated = new Map<LabelValue, number>();
  for (const text of contaminatedMetas) {
    const label = labelOf(parseMeta(text));
    if (label !== undefined) contaminated.set(label, (contaminated.get(label) ?? 0) + 1);
  }
  return [...images.keys()].sort(byLabel).map((label) => ({ label, images: images.get(label)!, contaminated: contaminated.get(label) ?? 0 }));
}

export function buildSummary(catalog: Catalog, sel: PurgeSelection, purge: PurgeResult, meta: ReportMeta): Summary {
  const up = sourceCounts(catalog, sel.upstreamIds);
  const down = sourceCounts(catalog, sel.downstreamIds);
  const errors = errorRows(catalog, [...sel.upstreamIds, ...sel.downstreamIds]);
  const matches = purge.candidates.filter((c) => c.decision === 'match');
  const sum = (xs: { images?: number; ok?: number }[], k: 'images' | 'ok') => xs.reduce((a, x) => a + (x[k] ?? 0), 0);
  const contaminatedMetas = new Map(matches.map((m) => [m.downstreamId, m.downstreamMeta])).values();
  const byLabelRows = labelTable(imagesByLabel(metaCounts(catalog, sel.downstreamIds)), contaminatedMetas);
  return {
    neardup: meta.version,
    model: meta.model,
    threshold: meta.threshold,
    floor: meta.floor,
    k: meta.k,
    decidedBy: meta.verify ? 'verified' : 'cosine',
    counts: {
      upstream: sum(up, 'images'), upstreamOk: sum(up, 'ok'), downstream: sum(down, 'images'), downstreamOk: sum(down, 'ok'),
      errors: errors.length, candidates: purge.candidates.length, matches: matches.length,
      exactDuplicates: matches.filter((m) => m.kind === 'exact').length, removed: purge.removed, kept: purge.kept,
    },
    sources: [...up, ...down].map((c) => ({ role: c.source.role, source: c.source.spec, root: c.source.root, images: c.images, ok: c.ok, errors: c.errors, pending: c.pending })),
    perDownstream: down.map((c) => {
      const hits = matches.filter((m) => m.downstreamSourceId === c.source.id);
      return { source: c.source.spec, images: c.images, contaminated: new Set(hits.map((m) => m.downstreamId)).size, matches: hits.length };
    }),
    ...(byLabelRows ? { contamination_by_label: byLabelRows } : {}),
    errors: {
      byReason: errorsByReason(errors),
      files: errors.slice(0, MAX_ERROR_FILES).map((e) => ({ path: e.path, source: e.source, reason: e.error })),
      filesOmitted: Math.max(0, errors.length - MAX_ERROR_FILES),
    },
    review: reviewCounts(purge.candidates),
    estimate: meta.verify ? estimatePrecision(purge.candidates, meta.threshold) ?? null : null,
    timings: meta.timings,
    catalog: meta.catalog,
  };
}

/** How many of the candidates a reviewer accepted and rejected. */
export function reviewCounts(all: readonly Pick<CandidateView, 'decidedBy' | 'decision'>[]): NonNullable<Summary['review']> {
  let accepted = 0;
  let rejected = 0;
  for (const c of all) {
    if (c.decidedBy !== 'human') continue;
    if (c.decision === 'match') accepted++;
    else rejected++;
  }
  return { accepted, rejected };
}

/** A decided match as the HTML report shows it. */
export interface PairRow {
  upstream: string; downstream: string; downstreamSource: string; score: number; view: number; kind: 'exact' | 'embedding';
  reason: string;
  /** The verified score and the transform found (absent: not verified). */
  verifyScore?: number | null; transform?: Transform | null;
  /** Each side's meta as printed in the CSVs (JSON text, empty or absent when none). */
  upstreamMeta?: string | null; downstreamMeta?: string | null;
  /** Whose decision this is (absent: the model's). */
  decidedBy?: 'human' | 'model';
}

/**
 * report.html: thumbnails, and for verified pairs the aligned overlay (overlay.ts), are made
 * here from the files the pairs name. Scores and transforms are taken as printed in the CSVs
 * (the transform's rounding is the catalog's own) so that a report rebuilt from CSVs (merge) is
 * the same page.
 */
export async function renderReportFile(outDir: string, summary: Summary, pairs: PairRow[], candidateScores: number[], review?: ReviewSection, certificate?: Certificate): Promise<void> {
  const limit = pLimit(4);
  const verified = (x: number | null | undefined) => (x === null || x === undefined ? undefined : Number(x.toFixed(3)));
  const shown = await Promise.all(pairs.slice(0, DEFAULT_MAX_PAIRS).map((m) => limit(async (): Promise<ReportPair> => ({
    upstream: m.upstream, downstream: m.downstream, downstreamSource: m.downstreamSource, score: printedScore(m.score), view: viewName(m.view),
    reason: m.reason, verifyScore: verified(m.verifyScore),
    upstreamThumb: await thumbnailDataUri(m.upstream), downstreamThumb: await thumbnailDataUri(m.downstream),
    overlay: m.transform ? await overlayDataUri(m.upstream, m.downstream, m.view, m.transform) : undefined,
    upstreamMeta: parseMeta(m.upstreamMeta), downstreamMeta: parseMeta(m.downstreamMeta), decidedBy: m.decidedBy,
  }))));
  const c = summary.counts;
  const html = renderReport({
    title: 'neardup audit', generatedAt: new Date().toISOString(), modelId: summary.model.id, threshold: summary.threshold,
    counts: { upstream: c.upstream, downstream: c.downstream, matched: c.removed, kept: c.kept, errors: c.errors },
    perDownstream: summary.perDownstream,
    contaminationByLabel: summary.contamination_by_label,
    pairs: shown,
    candidateScores: candidateScores.map(printedScore),
    errorsByReason: summary.errors.byReason.map(({ reason, count }) => ({ reason, count })),
    review,
    certificate,
  });
  writeFileAtomic(join(outDir, 'report.html'), html);
}

/**
 * CSV headers. `score` is the cosine; `verify_score` and the transform (zoom, angle in degrees,
 * shift as shares of the upstream side, overlap as a share of the upstream image) are the verify
 * stage's, empty when a pair was not verified; `view` is the downstream view that aligned (or
 * that the embedding matched). The meta columns (compact JSON, empty when none) come last.
 */
export const MATCHES_HEADER = ['upstream', 'downstream', 'score', 'view', 'verify_score', 'zoom', 'angle', 'shift_x', 'shift_y', 'overlap', 'reason', 'upstream_meta', 'downstream_meta', 'decided_by'] as const;
export const CANDIDATES_HEADER = ['upstream', 'downstream', 'score', 'view', 'kind', 'decision', 'verify_score', 'zoom', 'angle', 'shift_x', 'shift_y', 'overlap', 'reason', 'upstream_meta', 'downstream_meta', 'decided_by'] as const;

/** The transform columns of a verified pair, as the CSVs print them. */
export interface Transform { zoom: number; angle: number; shiftX: number; shiftY: number; overlap: number }

export function transformOf(alignment: string | null): Transform | null {
  if (!alignment) return null;
  const a = JSON.parse(alignment) as Partial<Transform> & { error?: string };
  if (a.error || a.zoom === undefined) return null;
  return { zoom: a.zoom, angle: a.angle!, shiftX: a.shiftX!, shiftY: a.shiftY!, overlap: a.overlap! };
}

const optional = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? '' : x.toFixed(digits));

/** A candidates.csv record; matches.csv takes the same without kind and decision. */
export function candidateRecord(c: CandidateView): string[] {
  const t = transformOf(c.alignment);
  return [
    c.upstream, c.downstream, scoreText(c.score), viewName(c.view), c.kind, c.decision, optional(c.verifyScore, 3),
    optional(t?.zoom, 3), optional(t?.angle, 1), optional(t?.shiftX, 3), optional(t?.shiftY, 3), optional(t?.overlap, 3), c.reason,
    c.upstreamMeta ?? '', c.downstreamMeta ?? '', c.decidedBy,
  ];
}

/** matches.csv's record from a candidates.csv record (drops kind and decision). */
export const matchRecord = (candidate: readonly string[]): string[] => [...candidate.slice(0, 4), ...candidate.slice(6)];

/** A candidates.csv record as a report pair (merge rebuilds the report from CSVs). */
export function pairOfRecord(r: readonly string[]): Omit<PairRow, 'downstreamSource'> {
  const num = (i: number) => (r[i] === '' || r[i] === undefined ? null : Number(r[i]));
  const zoom = num(7);
  return {
    upstream: r[0]!, downstream: r[1]!, score: Number(r[2]), view: viewIndex(r[3]!), kind: r[4] as PairRow['kind'], reason: r[12] ?? '',
    verifyScore: num(6), transform: zoom === null ? null : { zoom, angle: num(8)!, shiftX: num(9)!, shiftY: num(10)!, overlap: num(11)! },
    upstreamMeta: r[13], downstreamMeta: r[14], decidedBy: r[15] === 'human' ? 'human' : 'model',
  };
}

/** matches.csv, candidates.csv, errors.csv, summary.json and report.html (with review-data.js and thumbs/ for its review view), each written atomically. */
export async function writeReport(catalog: Catalog, sel: PurgeSelection, purge: PurgeResult, meta: ReportMeta, outDir: string): Promise<Summary> {
  mkdirSync(outDir, { recursive: true });
  const matches = purge.candidates.filter((c) => c.decision === 'match');
  await writeCsvFile(join(outDir, 'matches.csv'), MATCHES_HEADER, matches.map((m) => matchRecord(candidateRecord(m))));
  await writeCsvFile(join(outDir, 'candidates.csv'), CANDIDATES_HEADER, purge.candidates.map(candidateRecord));
  const errors = errorRows(catalog, [...sel.upstreamIds, ...sel.downstreamIds]);
  await writeCsvFile(join(outDir, 'errors.csv'), ['path', 'role', 'source', 'reason'], errors.map((e) => [e.path, e.role, e.source, e.error]));
  const summary = buildSummary(catalog, sel, purge, meta);
  writeFileAtomic(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const certificate = writeCertificate(catalog, sel, purge, summary, outDir);
  const sourceNames = new Map(catalog.sources([...sel.downstreamIds]).map((src) => [src.id, src.spec]));
  const review = await writeReviewFiles(catalog, outDir, purge.candidates, { threshold: meta.threshold, verify: meta.verify, catalogPath: meta.catalog });
  await renderReportFile(outDir, summary, matches.map((m) => ({ ...m, transform: transformOf(m.alignment), downstreamSource: sourceNames.get(m.downstreamSourceId) ?? '' })), purge.candidates.map((c) => c.score), review, certificate);
  return summary;
}
