import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { keepLine, REMOVED_HEADER, writeFileAtomic } from '../purge/outputs.js';
import { errorsByReason } from '../state/queries.js';
import { byPath } from '../util/order.js';
import { parseCsv, writeCsvFile } from './csv.js';
import { mergeReviewFiles } from './review.js';
import { writeMergedCertificate } from '../certificate/merge.js';
import { combineEstimates } from '../estimate/precision.js';
import { CANDIDATES_HEADER, MATCHES_HEADER, labelTable, matchRecord, pairOfRecord, renderReportFile, reviewCounts, type Summary } from './write.js';

/**
 * `neardup merge`: combine the outputs of `audit --shard i/N` runs into exactly what one
 * unsharded run writes. Every shard saw the whole downstream side, so downstream counts come
 * from one shard and upstream ones are summed; every list is re-sorted with the shared order.
 */

const OUTPUTS = ['candidates.csv', 'keep.txt', 'removed.csv', 'errors.csv', 'summary.json'];

function readShard(dir: string) {
  for (const f of OUTPUTS) if (!existsSync(join(dir, f))) throw new ConfigError(`${dir} lacks ${f}: merge takes the --out folders of finished audit --shard runs`, 'E_CONFIG');
  const csv = (f: string) => parseCsv(readFileSync(join(dir, f), 'utf8')).slice(1);
  const keep = readFileSync(join(dir, 'keep.txt'), 'utf8').split('\n').filter(Boolean).map((l) => (l.startsWith('"') ? (JSON.parse(l) as string) : l));
  return { candidates: csv('candidates.csv'), keep, removed: csv('removed.csv'), errors: csv('errors.csv'), summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary };
}

const byScoreThenPaths = (a: string[], b: string[]) => Number(b[2]) - Number(a[2]) || byPath(a[0]!, b[0]!) || byPath(a[1]!, b[1]!);

export async function mergeShards(dirs: string[], out: string): Promise<Summary> {
  if (dirs.length === 0) throw new ConfigError('merge needs at least one shard output folder', 'E_CONFIG');
  const shards = dirs.map(readShard);
  const first = shards[0]!.summary;
  for (const s of shards) {
    if (s.summary.model.id !== first.model.id || s.summary.threshold !== first.threshold) {
      throw new ConfigError(`Shards disagree on model or threshold (${s.summary.model.id} @ ${s.summary.threshold} vs ${first.model.id} @ ${first.threshold}): re-run them alike`, 'E_CONFIG');
    }
  }
  mkdirSync(out, { recursive: true });
  const candidates = shards.flatMap((s) => s.candidates).map(currentLayout).sort(byScoreThenPaths);
  const matches = candidates.filter((c) => c[5] === 'match');
  // Shards written before reviews existed lack removed.csv's decided_by: theirs were the model's.
  const removed = shards.flatMap((s) => s.removed).map((r) => (r.length < REMOVED_HEADER.length ? [...r, 'model'] : r)).sort((a, b) => byPath(a[0]!, b[0]!));
  const keep = shards.flatMap((s) => s.keep).sort(byPath);
  const roleRank = (role: string) => (role === 'downstream' ? 0 : 1);
  const sourceRank = new Map(first.sources.map((s, i) => [`${s.role}\0${s.source}`, i]));
  const errors = [...new Map(shards.flatMap((s) => s.errors).map((e) => [`${e[1]}\0${e[0]}`, e])).values()]
    .sort((a, b) => roleRank(a[1]!) - roleRank(b[1]!) || (sourceRank.get(`${a[1]}\0${a[2]}`)! - sourceRank.get(`${b[1]}\0${b[2]}`)!) || byPath(a[0]!, b[0]!));

  await writeCsvFile(join(out, 'candidates.csv'), CANDIDATES_HEADER, candidates);
  await writeCsvFile(join(out, 'matches.csv'), MATCHES_HEADER, matches.map(matchRecord));
  await writeCsvFile(join(out, 'removed.csv'), REMOVED_HEADER, removed);
  await writeCsvFile(join(out, 'errors.csv'), ['path', 'role', 'source', 'reason'], errors);
  writeFileAtomic(join(out, 'keep.txt'), keep.length ? `${keep.map(keepLine).join('\n')}\n` : '');

  const summary = mergedSummary(shards.map((s) => s.summary), { candidates, matches, removed, keep, errors });
  writeFileAtomic(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const certificate = writeMergedCertificate(dirs, out, summary, matches.map((c) => ({ downstream: c[1]!, decidedBy: c[15] === 'human' ? 'human' : 'model', kind: c[4] === 'exact' ? 'exact' : 'embedding' })), (p) => downstreamOf(summary, p));
  const pairs = matches.map(pairOfRecord);
  await renderReportFile(out, summary, pairs.map((p) => ({ ...p, downstreamSource: downstreamOf(summary, p.downstream) })), candidates.map((c) => Number(c[2])), mergeReviewFiles(dirs, out, summary.catalog), certificate);
  return summary;
}

/**
 * A shard's candidates.csv record in this version's columns: shards written before the meta
 * columns had 6, before the verify stage 8 (their verify columns and reason are left empty),
 * before reviews 15 (decided by the model).
 */
function currentLayout(c: string[]): string[] {
  if (c.length >= CANDIDATES_HEADER.length) return c;
  if (c.length === CANDIDATES_HEADER.length - 1) return [...c, 'model'];
  return [...c.slice(0, 6), '', '', '', '', '', '', '', c[6] ?? '', c[7] ?? '', 'model'];
}

function downstreamOf(summary: Summary, path: string): string {
  return summary.sources.find((s) => s.role === 'downstream' && (path.startsWith(`${s.root}/`) || s.root === '.'))?.source ?? '';
}

function mergedSummary(parts: Summary[], m: { candidates: string[][]; matches: string[][]; removed: string[][]; keep: string[]; errors: string[][] }): Summary {
  const first = parts[0]!;
  const sources = first.sources.map((s) => {
    if (s.role !== 'upstream') return s;
    const same = parts.map((p) => p.sources.find((x) => x.role === s.role && x.source === s.source)!);
    const sum = (k: 'images' | 'ok' | 'errors' | 'pending') => same.reduce((a, x) => a + x[k], 0);
    return { ...s, images: sum('images'), ok: sum('ok'), errors: sum('errors'), pending: sum('pending') };
  });
  const upstream = sources.filter((s) => s.role === 'upstream');
  const timings: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.timings)) timings[k] = Math.round(((timings[k] ?? 0) + v) * 1000) / 1000;
  const summary: Summary = {
    ...first,
    counts: {
      ...first.counts,
      upstream: upstream.reduce((a, s) => a + s.images, 0),
      upstreamOk: upstream.reduce((a, s) => a + s.ok, 0),
      errors: m.errors.length,
      candidates: m.candidates.length,
      matches: m.matches.length,
      exactDuplicates: m.matches.filter((c) => c[4] === 'exact').length,
      removed: m.removed.length,
      kept: m.keep.length,
    },
    sources,
    perDownstream: [],
    review: reviewCounts(m.candidates.map((c) => ({ decidedBy: c[15] === 'human' ? 'human' : 'model', decision: c[5] as 'match' }))),
    errors: {
      byReason: errorsByReason(m.errors.map(([path, role, source, error]) => ({ path: path!, role: role!, source: source!, error: error! }))),
      files: m.errors.slice(0, 1000).map(([path, , source, reason]) => ({ path: path!, source: source!, reason: reason! })),
      filesOmitted: Math.max(0, m.errors.length - 1000),
    },
    // Shards sampled controls alike, so the merged estimate is the one over their summed counts.
    // (a shard with nothing verified and nothing matched has none: it adds nothing).
    estimate: combineEstimates(parts.flatMap((p) => (p.estimate ? [p.estimate] : []))) ?? null,
    timings,
    catalog: parts.map((p) => p.catalog).join(', '),
  };
  summary.perDownstream = first.perDownstream.map((d) => {
    const hits = m.matches.filter((c) => downstreamOf(summary, c[1]!) === d.source);
    return { ...d, contaminated: new Set(hits.map((c) => c[1])).size, matches: hits.length };
  });
  // Every shard listed the whole downstream side: images per label come from one shard, the
  // contaminated ones from the merged matches (the downstream meta of each distinct image).
  if (first.contamination_by_label) {
    const images = new Map(first.contamination_by_label.map((r) => [r.label, r.images]));
    summary.contamination_by_label = labelTable(images, new Map(m.matches.map((c) => [c[1]!, c[CANDIDATES_HEADER.indexOf('downstream_meta')]])).values());
  }
  return summary;
}
