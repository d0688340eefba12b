import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { reasonFor } from '../match/run.js';
import { printedScore } from '../util/order.js';
import type { Catalog } from '../state/catalog.js';
import { errorRows, errorsByReason, sourceCounts, type CandidateView } from '../state/queries.js';
import { thumbnailDataUri } from '../scan/decode.js';
import { scoreText, viewName, writeFileAtomic, type PurgeResult, type PurgeSelection } from '../purge/outputs.js';
import { writeCsvFile } from './csv.js';
import { renderReport, DEFAULT_MAX_PAIRS, type ReportPair } from './html.js';

export interface ReportMeta {
  version: string;
  model: { id: string; name: string; sha256: string; runtime: string };
  threshold: number;
  floor: number;
  timings: Record<string, number>;
  catalog: string;
}

/** The machine-readable summary of a run (summary.json). */
export interface Summary {
  neardup: string;
  model: ReportMeta['model'];
  threshold: number;
  floor: number;
  counts: { upstream: number; upstreamOk: number; downstream: number; downstreamOk: number; errors: number; candidates: number; matches: number; exactDuplicates: number; removed: number; kept: number };
  sources: { role: string; source: string; root: string; images: number; ok: number; errors: number; pending: number }[];
  perDownstream: { source: string; images: number; contaminated: number; matches: number }[];
  errors: { byReason: { reason: string; count: number; examples: string[] }[]; files: { path: string; source: string; reason: string }[]; filesOmitted: number };
  timings: Record<string, number>;
  catalog: string;
}

const MAX_ERROR_FILES = 1000;

export function buildSummary(catalog: Catalog, sel: PurgeSelection, purge: PurgeResult, meta: ReportMeta): Summary {
  const up = sourceCounts(catalog, sel.upstreamIds);
  const down = sourceCounts(catalog, sel.downstreamIds);
  const errors = errorRows(catalog, [...sel.upstreamIds, ...sel.downstreamIds]);
  const matches = purge.candidates.filter((c) => c.decision === 'match');
  const sum = (xs: { images?: number; ok?: number }[], k: 'images' | 'ok') => xs.reduce((a, x) => a + (x[k] ?? 0), 0);
  return {
    neardup: meta.version,
    model: meta.model,
    threshold: meta.threshold,
    floor: meta.floor,
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
    errors: {
      byReason: errorsByReason(errors),
      files: errors.slice(0, MAX_ERROR_FILES).map((e) => ({ path: e.path, source: e.source, reason: e.error })),
      filesOmitted: Math.max(0, errors.length - MAX_ERROR_FILES),
    },
    timings: meta.timings,
    catalog: meta.catalog,
  };
}

/** A decided match as the HTML report shows it. */
export interface PairRow { upstream: string; downstream: string; downstreamSource: string; score: number; view: number; kind: 'exact' | 'embedding' }

/**
 * report.html: thumbnails are made here, from the files the pairs name. Scores are taken as
 * printed in the CSVs (6 decimals) so that a report rebuilt from CSVs (merge) is the same page.
 */
export async function renderReportFile(outDir: string, summary: Summary, pairs: PairRow[], candidateScores: number[]): Promise<void> {
  const limit = pLimit(4);
  const shown = await Promise.all(pairs.slice(0, DEFAULT_MAX_PAIRS).map((m) => limit(async (): Promise<ReportPair> => ({
    upstream: m.upstream, downstream: m.downstream, downstreamSource: m.downstreamSource, score: printedScore(m.score), view: viewName(m.view),
    reason: reasonFor(m.kind, printedScore(m.score), m.view, summary.threshold),
    upstreamThumb: await thumbnailDataUri(m.upstream), downstreamThumb: await thumbnailDataUri(m.downstream),
  }))));
  const c = summary.counts;
  const html = renderReport({
    title: 'neardup audit', generatedAt: new Date().toISOString(), modelId: summary.model.id, threshold: summary.threshold,
    counts: { upstream: c.upstream, downstream: c.downstream, matched: c.removed, kept: c.kept, errors: c.errors },
    perDownstream: summary.perDownstream,
    pairs: shown,
    candidateScores: candidateScores.map(printedScore),
    errorsByReason: summary.errors.byReason.map(({ reason, count }) => ({ reason, count })),
  });
  writeFileAtomic(join(outDir, 'report.html'), html);
}

/** matches.csv, candidates.csv, errors.csv, summary.json and report.html, each written atomically. */
export async function writeReport(catalog: Catalog, sel: PurgeSelection, purge: PurgeResult, meta: ReportMeta, outDir: string): Promise<Summary> {
  mkdirSync(outDir, { recursive: true });
  const matches = purge.candidates.filter((c) => c.decision === 'match');
  await writeCsvFile(join(outDir, 'matches.csv'), ['upstream', 'downstream', 'score', 'view'],
    matches.map((m) => [m.upstream, m.downstream, scoreText(m.score), viewName(m.view)]));
  await writeCsvFile(join(outDir, 'candidates.csv'), ['upstream', 'downstream', 'score', 'view', 'kind', 'decision'],
    purge.candidates.map((c) => [c.upstream, c.downstream, scoreText(c.score), viewName(c.view), c.kind, c.decision]));
  const errors = errorRows(catalog, [...sel.upstreamIds, ...sel.downstreamIds]);
  await writeCsvFile(join(outDir, 'errors.csv'), ['path', 'role', 'source', 'reason'], errors.map((e) => [e.path, e.role, e.source, e.error]));
  const summary = buildSummary(catalog, sel, purge, meta);
  writeFileAtomic(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const sourceNames = new Map(catalog.sources([...sel.downstreamIds]).map((src) => [src.id, src.spec]));
  await renderReportFile(outDir, summary, matches.map((m) => ({ ...m, downstreamSource: sourceNames.get(m.downstreamSourceId) ?? '' })), purge.candidates.map((c) => c.score));
  return summary;
}
