import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const FILES = ['matches.csv', 'candidates.csv', 'keep.txt', 'removed.csv', 'errors.csv'];

/** Outputs minus what legitimately differs between runs: timings, catalog paths, the report's timestamp. */
export function comparableOutputs(dir: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const f of FILES) o[f] = readFileSync(join(dir, f), 'utf8');
  const { timings, catalog, ...summary } = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  void timings;
  void catalog;
  o['summary.json'] = JSON.stringify(summary, null, 2);
  o['report.html'] = readFileSync(join(dir, 'report.html'), 'utf8').replace(/generated [^<]*/g, 'generated');
  return o;
}

/** Where two outputs first differ, for an assertion message. */
export function firstDifference(a: string, b: string): string {
  const [la, lb] = [a.split('\n'), b.split('\n')];
  const i = la.findIndex((line, k) => line !== lb[k]);
  return `line ${i + 1}: ${JSON.stringify((la[i] ?? '').slice(0, 300))} vs ${JSON.stringify((lb[i] ?? '').slice(0, 300))}`;
}
