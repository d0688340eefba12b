import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, fmtDuration, formatLine, REDRAW_MS } from '../../src/cli/progress.js';

/** A TTY-like stream that records what is written. */
function fakeStream(isTTY: boolean, columns = 120): { isTTY: boolean; columns: number; out: string[]; write(s: string): boolean } {
  return { isTTY, columns, out: [], write(s: string) { this.out.push(s); return true; } };
}

/** A clock the test advances by hand. */
function fakeClock(): { now: () => number; advance(ms: number): void } {
  let t = 1000;
  return { now: () => t, advance(ms: number) { t += ms; } };
}

function exercise(enabled: boolean, isTTY: boolean): string[] {
  const stream = fakeStream(isTTY);
  const p = createProgress({ enabled, stream });
  p.start('embed', 10);
  p.tick(5);
  p.done('ok');
  return stream.out;
}

test('a disabled reporter writes nothing, even to a TTY', () => {
  assert.deepEqual(exercise(false, true), []);
});

test('an enabled reporter writes nothing to a non-TTY stream', () => {
  assert.deepEqual(exercise(true, false), []);
});

test('an enabled reporter on a TTY renders bar, counts, rate and eta', () => {
  const stream = fakeStream(true);
  const clock = fakeClock();
  const p = createProgress({ enabled: true, stream, now: clock.now });
  p.start('embed', 10_000);
  clock.advance(12_000);
  p.tick(6123);
  const line = stream.out.at(-1) ?? '';
  assert.ok(line.startsWith('\r\x1b[2K'), 'clears the line first');
  assert.match(line, /embed {2}\[█{12}░{8}\] {2}6,123\/10,000 {2}510\/s {2}eta 8s/);
});

test('redraws are throttled and done() always draws the final line', () => {
  const stream = fakeStream(true);
  const clock = fakeClock();
  const p = createProgress({ enabled: true, stream, now: clock.now });
  p.start('scan', undefined);
  const afterStart = stream.out.length;
  for (let i = 0; i < 100; i++) {
    clock.advance(1);
    p.tick();
  }
  assert.equal(stream.out.length, afterStart + 1, 'one redraw per REDRAW_MS');
  clock.advance(REDRAW_MS);
  p.done('100 files');
  const final = stream.out.at(-2) ?? '';
  assert.match(final, /^\r\x1b\[2Kscan {2}100 {2}\d+(\.\d)?\/s {2}0s {2}100 files$/);
  assert.doesNotMatch(final.slice(4), /\[|eta/, 'unknown total: no bar and no eta');
  assert.equal(stream.out.at(-1), '\n');
});

test('start() finishes a stage left open, and lines fit the terminal width', () => {
  const stream = fakeStream(true, 30);
  const p = createProgress({ enabled: true, stream });
  p.start('embed', 5);
  p.start('index', 5);
  assert.ok(stream.out.includes('\n'), 'the open stage got its newline');
  for (const chunk of stream.out) assert.ok(Array.from(chunk.replace('\r\x1b[2K', '')).length <= 29);
});

test('formatLine and fmtDuration cover the edge cases', () => {
  assert.equal(formatLine({ stage: 'x', count: 0, total: 4, elapsedMs: 0, summary: undefined }),
    'x  [░░░░░░░░░░░░░░░░░░░░]  0/4  0.0/s  eta ?');
  assert.equal(formatLine({ stage: 'x', count: 4, total: 4, elapsedMs: 2000, summary: 'done' }),
    'x  [████████████████████]  4/4  2.0/s  2s  done');
  assert.equal(fmtDuration(8.4), '8s');
  assert.equal(fmtDuration(125), '2m05s');
  assert.equal(fmtDuration(3720), '1h02m');
});
