import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { StateError } from '../errors.js';

/**
 * One writer per catalog. SQLite alone would serialise transactions, but two audits interleaving
 * stages over one catalog would still produce outputs neither asked for, so a run takes a lock
 * file beside the catalog. A lock left by a killed process (pid no longer alive) is taken over,
 * which is what makes `kill -9` followed by a rerun just work. On Linux "alive" is read from
 * /proc: a zombie (killed, not yet reaped by its parent: common in containers without an init)
 * is dead, and the holder's start time is recorded in the file, so a recycled pid (another
 * process given the same number since) is not mistaken for the holder. The file names the host too: a
 * holder on another machine (shared storage) cannot be checked, so it is refused unless the caller
 * holds a lease that proves the holder is gone (a queue worker that was handed the shard's job).
 */
export interface CatalogLock {
  release(): void;
}

/** A process as /proc/<pid>/stat shows it: its state letter and start time (clock ticks after boot). */
interface ProcStat { state: string; startTime: string }

const HAS_PROC = existsSync(`/proc/${process.pid}/stat`);

/**
 * Undefined where /proc cannot say (not Linux, or /proc not mounted); null when the process
 * does not exist. The command name (field 2) may hold spaces and parentheses, so the fields
 * are counted from its closing parenthesis.
 */
export function procStat(pid: number): ProcStat | null | undefined {
  if (!HAS_PROC) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
}

/** Z: exited, not reaped; X: being torn down. Neither will ever release a lock. */
const DEAD_STATES = new Set(['Z', 'X']);

function holderAlive(h: Holder): boolean {
  const stat = procStat(h.pid);
  if (stat === null) return false;
  if (stat === undefined) return signalReaches(h.pid);
  if (DEAD_STATES.has(stat.state)) return false;
  return h.startTime === undefined || h.startTime === stat.startTime;
}

/** Without /proc: a signal 0 reaches any process that exists (a zombie too, which /proc would tell). */
function signalReaches(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** startTime: /proc's start time of the holder, absent when it was not known (or an older neardup wrote the file). */
interface Holder { pid: number; host: string; startTime?: string }
const HOST = hostname();
const MY_START = procStat(process.pid)?.startTime;

function readHolder(path: string): Holder | undefined {
  try {
    const [pid, host, startTime] = readFileSync(path, 'utf8').split('\n');
    const n = Number.parseInt(pid ?? '', 10);
    return Number.isFinite(n) ? { pid: n, host: host || HOST, startTime: startTime || undefined } : undefined;
  } catch {
    return undefined;
  }
}

const isMine = (h: Holder | undefined) => h?.pid === process.pid && h.host === HOST;

const content = (): string => `${process.pid}\n${HOST}${MY_START ? `\n${MY_START}` : ''}`;
/** Filesystems without hard links answer link() with one of these. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Create the lock file with its content in one step: written beside it, then hard-linked into
 * place (link fails if the name exists). A contender that read a file created empty and not yet
 * written would take it for a dead holder's and remove it.
 */
function tryCreate(path: string): boolean {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, content());
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (NO_LINKS.has(code) && (error as NodeJS.ErrnoException).syscall === 'link') return createExclusive(path);
    throw lockError(path, error);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Where there are no hard links: create-exclusive, then write (the window above stays open). */
function createExclusive(path: string): boolean {
  try {
    writeFileSync(path, content(), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockError(path, error);
  }
}

const lockError = (path: string, error: unknown) =>
  new StateError(`Cannot create lock file ${path}: ${(error as Error).message}. Check that the catalog's folder is writable.`, 'E_LOCK', { cause: error });

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Take the catalog lock, waiting up to waitMs for another live run to finish. */
export function acquireLock(catalogPath: string, waitMs: number, leaseHeld = false): CatalogLock {
  const path = `${catalogPath}.lock`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryCreate(path)) break;
    const holder = readHolder(path);
    const gone = holder === undefined || isMine(holder) || (holder.host === HOST ? !holderAlive(holder) : leaseHeld);
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
