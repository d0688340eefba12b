import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { StateError } from '../errors.js';

/**
 * One writer per catalog. SQLite alone would serialise transactions, but two audits interleaving
 * stages over one catalog would still produce outputs neither asked for, so a run takes a lock
 * file beside the catalog. A lock left by a killed process (pid no longer alive) is taken over,
 * which is what makes `kill -9` followed by a rerun just work.
 */
export interface CatalogLock {
  release(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StateError(`Cannot create lock file ${path}: ${(error as Error).message}. Check that the catalog's folder is writable.`, 'E_LOCK', { cause: error });
  }
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Take the catalog lock, waiting up to waitMs for another live run to finish. */
export function acquireLock(catalogPath: string, waitMs: number): CatalogLock {
  const path = `${catalogPath}.lock`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryCreate(path)) break;
    const holder = readHolder(path);
    if (holder === undefined || holder === process.pid || !pidAlive(holder)) {
      // Stale: its owner died (or the file is half-written by an owner that died at once).
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StateError(
        `Catalog ${catalogPath} is in use by another neardup run (pid ${holder}). Wait for it to finish, pass --wait <seconds>, or use another --db.`,
        'E_LOCKED',
      );
    }
    sleep(200);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      if (readHolder(path) === process.pid) rmSync(path, { force: true });
    },
  };
}
