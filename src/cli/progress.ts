/**
 * A one-line progress bar for stderr. The library never prints; the CLI feeds stage events here.
 * It draws only on a TTY (redraws with `\r` would garble logs and pipes) and at most about ten
 * times a second, so ticking per image costs almost nothing.
 */

/** What the CLI calls as a stage runs. */
export interface ProgressReporter {
  /** Begins a stage (finishing any stage still open); `total` is undefined when unknown. */
  start(stage: string, total: number | undefined): void;
  /** Adds `n` (default 1) finished items. */
  tick(n?: number): void;
  /** Draws the final line with `summary` appended and moves to a new line. */
  done(summary?: string): void;
}

/** The part of a `NodeJS.WriteStream` the bar uses; lets tests pass a plain object. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
}

/** Options for {@link createProgress}. */
export interface ProgressOptions {
  /** The CLI passes `isTTY && !quiet`; false prints nothing at all. */
  enabled: boolean;
  /** Defaults to `process.stderr`; nothing is printed unless `isTTY` is true. */
  stream?: ProgressStream;
  /** Clock in milliseconds; injectable for tests. Defaults to `performance.now`. */
  now?: () => number;
}

/** Minimum time between redraws: ~10/s is smooth to the eye and cheap for the terminal. */
export const REDRAW_MS = 100;
const BAR_CELLS = 20;
const CLEAR_LINE = '\r\x1b[2K';

const NOOP: ProgressReporter = Object.freeze({ start() {}, tick() {}, done() {} });

/** Creates a reporter; a silent no-op one unless enabled and writing to a TTY. */
export function createProgress(opts: ProgressOptions): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  if (!opts.enabled || stream.isTTY !== true) return NOOP;
  return new TtyProgress(stream, opts.now ?? (() => performance.now()));
}

class TtyProgress implements ProgressReporter {
  private stage = '';
  private total: number | undefined;
  private count = 0;
  private startedAt = 0;
  private lastDraw = -Infinity;
  private active = false;

  constructor(private readonly stream: ProgressStream, private readonly now: () => number) {}

  start(stage: string, total: number | undefined): void {
    if (this.active) this.done();
    this.stage = stage;
    this.total = total !== undefined && Number.isFinite(total) && total >= 0 ? total : undefined;
    this.count = 0;
    this.startedAt = this.now();
    this.active = true;
    this.draw(this.startedAt, undefined);
  }

  tick(n = 1): void {
    if (!this.active) return;
    this.count += n;
    const t = this.now();
    if (t - this.lastDraw >= REDRAW_MS) this.draw(t, undefined);
  }

  done(summary?: string): void {
    if (!this.active) return;
    this.draw(this.now(), summary ?? '');
    this.stream.write('\n');
    this.active = false;
  }

  // `summary` undefined means a live line (with eta); a string means the final line.
  private draw(t: number, summary: string | undefined): void {
    this.lastDraw = t;
    const line = formatLine({
      stage: this.stage,
      count: this.count,
      total: this.total,
      elapsedMs: t - this.startedAt,
      summary,
    });
    // A line wider than the terminal wraps, and `\r` would then only clear its last row.
    const width = Math.max(1, (this.stream.columns ?? 80) - 1);
    this.stream.write(CLEAR_LINE + Array.from(line).slice(0, width).join(''));
  }
}

/** One progress line's inputs; `summary` is set only on the final line. */
export interface LineState {
  stage: string;
  count: number;
  total: number | undefined;
  elapsedMs: number;
  summary: string | undefined;
}

/**
 * Formats one progress line, e.g. `embed  [██████░░░░]  6,123/10,000  512/s  eta 8s`; with an
 * unknown total only the count and rate. The final line shows elapsed time instead of the eta.
 */
export function formatLine(s: LineState): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? s.count / secs : 0;
  const parts = [s.stage];
  if (s.total === undefined) parts.push(fmtInt(s.count));
  else parts.push(bar(s.count, s.total), `${fmtInt(s.count)}/${fmtInt(s.total)}`);
  parts.push(`${fmtRate(rate)}/s`);
  if (s.summary !== undefined) parts.push(fmtDuration(secs));
  else if (s.total !== undefined) parts.push(`eta ${rate > 0 ? fmtDuration(Math.max(0, s.total - s.count) / rate) : '?'}`);
  if (s.summary) parts.push(s.summary);
  return parts.join('  ');
}

function bar(count: number, total: number): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, count / total)) : 1;
  const filled = Math.floor(frac * BAR_CELLS);
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR_CELLS - filled)}]`;
}

const int = new Intl.NumberFormat('en-US');
const fmtInt = (n: number): string => int.format(n);
const fmtRate = (r: number): string => (r < 10 ? r.toFixed(1) : fmtInt(Math.round(r)));

/** Compact duration: `8s`, `2m05s`, `1h02m`. */
export function fmtDuration(secs: number): string {
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
}
