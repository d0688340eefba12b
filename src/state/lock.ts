import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { StateError } from '../errors.js';

/**
 * One writer per catalog. SQLite alone would serialise transactions, but two audits interleaving
 * stages over one catalog would still produce outputs neither asked for, so a run takes a lock
 * file beside the catalog. A lock left by a killed process (pid no longer alive) is taken over,
 * which is what makes `kill -9` followed by a rerun just work. The file names the host too: a
 * holder on another machine (shared storage) cannot be checked, so it is refused unless the caller
 * holds a lease that proves the holder is gone (a queue worker that was handed the shard's job).
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

interface Holder { pid: number; host: string }
const HOST = hostname();

function readHolder(path: string): Holder | undefined {
  try {
    const [pid, host] = readFileSync(path, 'utf8').split('\n');
    const n = Number.parseInt(pid ?? '', 10);
    return Number.isFinite(n) ? { pid: n, host: host || HOST } : undefined;
  } catch {
    return undefined;
  }
}

const isMine = (h: Holder | undefined) => h?.pid === process.pid && h.host === HOST;

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, `${process.pid}\n${HOST}`);
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StateError(`Cannot create lock file ${path}: ${(error as Error).message}. Check that the catalog's folder is writable.`, 'E_LOCK', { cause: error });
  }
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Take the catalog lock, waiting up to waitMs for another live run to finish. */
export function acquireLock(catalogPath: string, waitMs: number, leaseHeld = false): CatalogLock {
  const path = `${catalogPath}.lock`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryCreate(path)) break;
    const holder = readHolder(path);
    const gone = holder === undefined || isMine(holder) || (holder.host === HOST ? !pidAlive(holder.pid) : leaseHeld);
    if (gone) {
      // Stale: its owner died (or the file is half-written by an owner that died at once).
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StateError(
        holder.host === HOST
          ? `Catalog ${catalogPath} is in use by another neardup run (pid ${holder.pid}). Wait for it to finish, pass --wait <seconds>, or use another --db.`
          : `Catalog ${catalogPath} is locked by a neardup run on host ${holder.host} (pid ${holder.pid}), which cannot be checked from here. If that run is dead, delete ${path}; otherwise wait for it or use another --db.`,
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
      if (isMine(readHolder(path))) rmSync(path, { force: true });
    },
  };
}
