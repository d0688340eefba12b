import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Catalog } from '../state/catalog.js';
import { candidates, okPaths, removals, type CandidateView } from '../state/queries.js';
import { writeCsvFile } from '../report/csv.js';
import { viewName } from '../embed/views.js';

export interface PurgeSelection { modelId: string; upstreamIds: number[]; downstreamIds: number[] }
export interface PurgeResult { kept: number; removed: number; candidates: CandidateView[]; removedRows: CandidateView[] }

/**
 * A path on one line of keep.txt. Paths holding a newline, a carriage return or a leading quote
 * cannot stand raw on a line, so they are written as a JSON string (as git quotes odd paths).
 */
export function keepLine(path: string): string {
  return /[\n\r]/.test(path) || path.startsWith('"') ? JSON.stringify(path) : path;
}

/** removed.csv: each removed upstream image with its best match; decided_by says whether a reviewer accepted it. */
export const REMOVED_HEADER = ['upstream', 'downstream', 'score', 'view', 'reason', 'decided_by'] as const;

export { viewName } from '../embed/views.js';
export const scoreText = (s: number) => s.toFixed(6);

export function writeFileAtomic(path: string, data: string): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/**
 * Plan the purge: keep.txt (usable upstream images with no decided match) and removed.csv (each
 * removed image with its best match and reason). Reviewers' decisions are already applied by
 * candidates(): an accepted pair removes its upstream image whatever its score, a rejected one
 * never does. Non-destructive: files are only listed.
 */
export async function writePurgePlan(catalog: Catalog, sel: PurgeSelection, outDir: string): Promise<PurgeResult> {
  mkdirSync(outDir, { recursive: true });
  const all = candidates(catalog, sel.modelId, sel.upstreamIds, sel.downstreamIds);
  const removedRows = removals(all);
  const removedIds = new Set(removedRows.map((r) => r.upstreamId));
  const kept = await writeKeepList(join(outDir, 'keep.txt'), catalog, sel.upstreamIds, removedIds);
  await writeCsvFile(join(outDir, 'removed.csv'), REMOVED_HEADER,
    removedRows.map((r) => [r.upstream, r.downstream, scoreText(r.score), viewName(r.view), r.reason, r.decidedBy]));
  return { kept, removed: removedRows.length, candidates: all, removedRows };
}

/** keep.txt, streamed: a corpus of millions of kept paths is never held in memory. */
async function writeKeepList(path: string, catalog: Catalog, upstreamIds: number[], removedIds: Set<number>): Promise<number> {
  const fh = await open(`${path}.tmp`, 'w');
  let kept = 0;
  try {
    let chunk: string[] = [];
    for (const { id, path: p } of okPaths(catalog, upstreamIds)) {
      if (removedIds.has(id)) continue;
      chunk.push(keepLine(p));
      kept++;
      if (chunk.length === 5000) {
        await fh.write(`${chunk.join('\n')}\n`);
        chunk = [];
      }
    }
    if (chunk.length > 0) await fh.write(`${chunk.join('\n')}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  renameSync(`${path}.tmp`, path);
  return kept;
}
