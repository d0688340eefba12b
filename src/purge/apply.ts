import { copyFileSync, existsSync, mkdirSync, realpathSync, renameSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Catalog } from '../state/catalog.js';
import type { CandidateView } from '../state/queries.js';

export const PURGE_ACTIONS = Object.freeze(['move', 'delete'] as const);
export type PurgeAction = (typeof PURGE_ACTIONS)[number];

export interface ApplyResult { planned: number; done: number; failed: number; alreadyDone: number }

const inside = (root: string, p: string) => p.startsWith(root.endsWith(sep) ? root : root + sep);

/** Real path of a file's folder joined with its name: a symlinked file stays the link itself. */
function realLocation(path: string): string {
  return join(realpathSync(dirname(path)), path.slice(dirname(path).length + 1));
}

/**
 * Journal then act: all operations are written to the catalog (status planned) in one
 * transaction before the first file is touched, each one is marked done right after it happens,
 * and a rerun finishes the planned ones. Files outside the upstream roots are refused.
 */
export function applyPurge(catalog: Catalog, removed: CandidateView[], action: PurgeAction, to: string | undefined, upstreamIds: number[]): ApplyResult {
  if (action === 'move' && !to) throw new ConfigError('purge --apply move needs --to <dir>: the folder that receives the removed files (their relative paths are kept)', 'E_CONFIG');
  const roots = catalog.sources(upstreamIds).map((s) => ({ id: s.id, root: realpathSync(s.root) }));
  const keyOf = catalog.db.prepare('SELECT source_id, key FROM images WHERE id = ?');
  const plan = catalog.db.prepare(`INSERT INTO purge_ops(image_id, action, path, dest, status) VALUES (?, ?, ?, ?, 'planned')
    ON CONFLICT(image_id) DO UPDATE SET action = excluded.action, path = excluded.path, dest = excluded.dest, status = 'planned', error = NULL
    WHERE purge_ops.status IN ('undone', 'failed')`);
  const destRoot = to ? resolve(to) : undefined;
  catalog.db.transaction(() => {
    for (const r of removed) {
      const img = keyOf.get(r.upstreamId) as { source_id: number; key: string };
      const dest = destRoot ? join(destRoot, `source-${img.source_id}`, img.key) : null;
      plan.run(r.upstreamId, action, r.upstream, dest);
    }
  }).immediate();
  return executePlanned(catalog, roots.map((r) => r.root), destRoot);
}

function executePlanned(catalog: Catalog, roots: string[], destRoot: string | undefined): ApplyResult {
  const ops = catalog.db.prepare("SELECT id, action, path, dest FROM purge_ops WHERE status = 'planned' ORDER BY id").all() as { id: number; action: PurgeAction; path: string; dest: string | null }[];
  const mark = catalog.db.prepare('UPDATE purge_ops SET status = ?, error = ? WHERE id = ?');
  const result: ApplyResult = { planned: ops.length, done: 0, failed: 0, alreadyDone: 0 };
  for (const op of ops) {
    const error = safetyError(op.path, op.dest, roots, destRoot);
    if (error) {
      mark.run('failed', error, op.id);
      result.failed++;
      continue;
    }
    try {
      if (!existsSync(op.path)) {
        // Killed after the file moved but before the journal said so: the move happened.
        if (op.action === 'delete' || (op.dest && existsSync(op.dest))) {
          mark.run('done', null, op.id);
          result.alreadyDone++;
          continue;
        }
        throw new Error('file no longer exists and was not moved by neardup');
      }
      if (op.action === 'delete') unlinkSync(op.path);
      else moveFile(op.path, op.dest!);
      mark.run('done', null, op.id);
      result.done++;
    } catch (e) {
      mark.run('failed', (e as Error).message, op.id);
      result.failed++;
    }
  }
  return result;
}

function safetyError(path: string, dest: string | null, roots: string[], destRoot: string | undefined): string | undefined {
  if (!existsSync(path)) return undefined;
  const real = realLocation(path);
  if (!roots.some((r) => inside(r, real))) return `refused: ${path} is outside the upstream source roots`;
  if (dest && destRoot && !inside(destRoot, resolve(dest))) return `refused: destination ${dest} is outside --to`;
  return undefined;
}

function moveFile(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    copyFileSync(from, to);
    unlinkSync(from);
  }
}

/** Roll back moves (deletions cannot be undone): done moves go back, newest first. */
export function undoPurge(catalog: Catalog): { restored: number; failed: number; deletions: number } {
  const ops = catalog.db.prepare("SELECT id, action, path, dest FROM purge_ops WHERE status IN ('done', 'planned') ORDER BY id DESC").all() as { id: number; action: PurgeAction; path: string; dest: string | null }[];
  const mark = catalog.db.prepare('UPDATE purge_ops SET status = ?, error = ? WHERE id = ?');
  let restored = 0;
  let failed = 0;
  let deletions = 0;
  for (const op of ops) {
    if (op.action === 'delete') {
      deletions++;
      continue;
    }
    try {
      if (op.dest && existsSync(op.dest) && !existsSync(op.path)) {
        moveFile(op.dest, op.path);
        restored++;
      }
      mark.run('undone', null, op.id);
    } catch (e) {
      mark.run('failed', `undo: ${(e as Error).message}`, op.id);
      failed++;
    }
  }
  return { restored, failed, deletions };
}

