import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveOptions, type KeepPolicy, type RawOptions } from '../config/options.js';
import { ConfigError } from '../errors.js';
import { runEmbed } from '../embed/run.js';
import { buildIndex, searchOne, type DownstreamIndex } from '../ann/hnsw.js';
import { keepLine, scoreText, writeFileAtomic } from '../purge/outputs.js';
import { writeCsvFile } from '../report/csv.js';
import { parseSource } from '../sources/list.js';
import type { Catalog } from '../state/catalog.js';
import { errorRows, errorsByReason } from '../state/queries.js';
import { SILENT, type Progress } from '../util/progress-types.js';
import { byPath } from '../util/order.js';
import { listSources, openSession } from '../audit/session.js';
import { createAligner } from '../verify/aligner.js';
import { ensurePlanes, PairVerifier } from '../verify/run.js';

export interface DedupMember { id: number; path: string; score: number }
export interface DedupGroup { keeper: DedupMember; duplicates: DedupMember[] }
export interface DedupResult { images: number; groups: DedupGroup[]; removed: number; kept: number; errors: number; threshold: number; outDir: string }

interface Candidate { id: number; path: string; hash: string; pixels: number; bytes: number }

/** Keep-policy order: the image a group keeps comes first. */
const ORDER: Record<KeepPolicy, (a: Candidate, b: Candidate) => number> = {
  largest: (a, b) => b.pixels - a.pixels || b.bytes - a.bytes || cmp(a.path, b.path),
  'largest-file': (a, b) => b.bytes - a.bytes || cmp(a.path, b.path),
  first: (a, b) => cmp(a.path, b.path),
};
const cmp = byPath;

function candidatesOf(catalog: Catalog, sourceIds: number[]): Candidate[] {
  return catalog.db.prepare(`SELECT id, path, hash, width * height AS pixels, bytes FROM images
    WHERE source_id IN (${sourceIds.map(() => '?').join(',')}) AND status = 'ok'`).all(...sourceIds) as Candidate[];
}

/**
 * Star grouping: walk images in keep-policy order; each image not yet grouped becomes a keeper
 * and takes every ungrouped image at or above the threshold *to itself*. Every duplicate is
 * thus directly similar to its keeper, so no chain A~B~C can join unrelated A and C.
 */
export function groupDuplicates(images: Candidate[], neighbours: (c: Candidate) => { id: number; score: number }[], policy: KeepPolicy): DedupGroup[] {
  const sorted = [...images].sort(ORDER[policy]);
  const byId = new Map(images.map((c) => [c.id, c]));
  const byHash = new Map<string, Candidate[]>();
  for (const c of sorted) byHash.set(c.hash, [...(byHash.get(c.hash) ?? []), c]);
  const grouped = new Set<number>();
  const groups: DedupGroup[] = [];
  for (const keeper of sorted) {
    if (grouped.has(keeper.id)) continue;
    grouped.add(keeper.id);
    const members = new Map<number, number>();
    for (const twin of byHash.get(keeper.hash)!) if (twin.id !== keeper.id && !grouped.has(twin.id)) members.set(twin.id, 1);
    for (const n of neighbours(keeper)) if (n.id !== keeper.id && !grouped.has(n.id) && !members.has(n.id)) members.set(n.id, n.score);
    if (members.size === 0) continue;
    for (const id of members.keys()) grouped.add(id);
    const duplicates = [...members].map(([id, score]) => ({ id, path: byId.get(id)!.path, score })).sort((a, b) => b.score - a.score || cmp(a.path, b.path));
    groups.push({ keeper: { id: keeper.id, path: keeper.path, score: 1 }, duplicates });
  }
  return groups;
}

async function writeDedupOutputs(catalog: Catalog, sourceIds: number[], images: Candidate[], groups: DedupGroup[], threshold: number, verified: boolean, outDir: string) {
  mkdirSync(outDir, { recursive: true });
  const removedIds = new Set(groups.flatMap((g) => g.duplicates.map((d) => d.id)));
  const rows = groups.flatMap((g, i) => [[i + 1, g.keeper.path, 'keep', scoreText(1)], ...g.duplicates.map((d) => [i + 1, d.path, 'duplicate', scoreText(d.score)])]);
  await writeCsvFile(join(outDir, 'groups.csv'), ['group', 'path', 'role', 'score'], rows);
  await writeCsvFile(join(outDir, 'removed.csv'), ['path', 'keeper', 'score'], groups.flatMap((g) => g.duplicates.map((d) => [d.path, g.keeper.path, scoreText(d.score)])));
  const kept = images.filter((c) => !removedIds.has(c.id)).map((c) => c.path).sort(cmp);
  writeFileAtomic(join(outDir, 'keep.txt'), kept.length ? `${kept.map(keepLine).join('\n')}\n` : '');
  const errors = errorRows(catalog, sourceIds);
  await writeCsvFile(join(outDir, 'errors.csv'), ['path', 'role', 'source', 'reason'], errors.map((e) => [e.path, e.role, e.source, e.error]));
  const summary = { threshold, decidedBy: verified ? 'verified' : 'cosine', images: images.length, groups: groups.length, removed: removedIds.size, kept: kept.length, errors: { count: errors.length, byReason: errorsByReason(errors) } };
  writeFileAtomic(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return { removed: removedIds.size, kept: kept.length, errors: errors.length };
}

/** Neighbours by cosine alone (`--verify off`): those at or above the threshold. */
function neighboursFrom(index: DownstreamIndex, k: number, threshold: number) {
  return (c: Candidate) => {
    const v = index.vectors.get(c.id);
    return v ? searchOne(index, v.subarray(0, index.dims), k + 1, threshold).map((h) => ({ id: h.downstreamId, score: h.score })) : [];
  };
}

/**
 * Neighbours through the verify stage, as in an audit: every neighbour above the cosine floor is
 * aligned with the keeper, and its verified score decides. The keeper is the image set once;
 * its neighbours are the prepared (and cached) side.
 */
function verifiedNeighboursFrom(catalog: Catalog, index: DownstreamIndex, verifier: PairVerifier, k: number, floor: number, threshold: number, size: number) {
  return (c: Candidate) => {
    const v = index.vectors.get(c.id);
    const luma = catalog.plane(c.hash, size);
    if (!v || !luma) return [];
    const hits = searchOne(index, v.subarray(0, index.dims), k + 1, floor).filter((h) => h.downstreamId !== c.id);
    return verifier.verify(c.id, luma, hits.map((h) => ({ downstreamId: h.downstreamId, view: 0 })))
      .filter((p) => p.verifyScore >= threshold).map((p) => ({ id: p.downstreamId, score: p.verifyScore }));
  };
}

/** Near-duplicate groups within one dataset, one keeper per group by the keep policy. */
export async function dedup(raw: RawOptions, hooks: { progress?: Progress } = {}): Promise<DedupResult> {
  const options = resolveOptions(raw, { out: true });
  if (options.sources.length === 0) throw new ConfigError('dedup needs at least one source folder, file list or glob', 'E_CONFIG');
  for (const spec of options.sources) parseSource(spec, 'source');
  const p = hooks.progress ?? SILENT;
  const s = openSession(options);
  try {
    const ids = await listSources(s.catalog, 'dataset', options.sources, options.followLinks, p);
    const size = s.model.card.input.size;
    p.start('embed', undefined);
    // With verification every image's plane is kept: a keeper and its neighbours come in any order.
    await runEmbed(s.catalog, s.model, await s.runtime(), { sourceIds: ids, views: 1, batchSize: options.batchSize, concurrency: options.concurrency, planes: s.rule.verify ? 'catalog' : undefined }, p);
    p.done();
    const index = buildIndex(s.catalog, { sourceIds: ids, modelId: s.model.id, views: 1, dims: s.model.card.output.dims, path: `${options.db}.${s.model.card.name}.dedup.hnsw` }, p);
    const images = candidatesOf(s.catalog, ids);
    if (s.rule.verify) await ensurePlanes(s.catalog, ids, size, options.concurrency, p);
    const neighbours = s.rule.verify
      ? verifiedNeighboursFrom(s.catalog, index, new PairVerifier(s.catalog, createAligner(), size), s.k, s.floor, s.threshold, size)
      : neighboursFrom(index, s.k, s.threshold);
    const groups = groupDuplicates(images, neighbours, options.keep);
    const written = await writeDedupOutputs(s.catalog, ids, images, groups, s.threshold, s.rule.verify, options.out);
    return { images: images.length, groups, ...written, threshold: s.threshold, outDir: options.out };
  } finally {
    await s.close();
  }
}
