/**
 * Run the real `neardup` CLI (dist/src/cli/main.js) as a child process from the repository root,
 * and read what it wrote. Nothing is mocked: the child uses the real catalog, model and index.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Summary } from '../../src/report/write.js';
import { packageRoot } from '../../src/util/package-root.js';

export type { Summary };

/** The repository root: where package.json, fixtures/ and models/ live. */
export const REPO_ROOT = packageRoot();
/** The compiled CLI entry point. */
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** Every file `audit` and `report` write into --out. */
export const OUTPUT_FILES = Object.freeze([
  'matches.csv', 'candidates.csv', 'keep.txt', 'removed.csv', 'errors.csv', 'summary.json', 'report.html',
] as const);
export type OutputFile = (typeof OUTPUT_FILES)[number];

export interface CliResult {
  /** Exit code; -1 when the child died from a signal (see `signal`). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the child in ms. */
  ms: number;
}

export interface CliOptions {
  /** Working directory (default: the repository root, so `fixtures/...` paths work). */
  cwd?: string;
  /** Extra environment variables. */
  env?: NodeJS.ProcessEnv;
  /** Kill the child with SIGKILL after this many ms and fail the promise (default 120 s). */
  timeoutMs?: number;
}

export interface RunningCli {
  child: ChildProcess;
  /** Settles when the child has exited and its streams are drained. */
  done: Promise<CliResult>;
}

/** Start the CLI without waiting for it (for tests that signal or race it). */
export function spawnCli(args: string[], opts: CliOptions = {}): RunningCli {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const done = new Promise<CliResult>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`neardup ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr: ${stderr}`));
        return;
      }
      resolve({ code: code ?? -1, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
  return { child, done };
}

/** Run the CLI to completion: `node dist/src/cli/main.js ...args` from the repository root. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, opts).done;
}

/** A fresh empty folder under the OS temp dir, and a function removing it. */
export async function tmpDir(prefix = 'neardup-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });

/** summary.json fields that legitimately differ between two runs over the same inputs. */
export const VOLATILE_SUMMARY_FIELDS = Object.freeze(['timings', 'catalog'] as const);

/**
 * The contents of every output file in `outDir`, for comparing two runs: summary.json has its
 * `timings` and `catalog` fields removed (re-serialised with sorted keys), and report.html has
 * its "generated <ISO time>" stamp replaced. A missing file maps to undefined.
 */
export function readOutputs(outDir: string): Record<OutputFile, string | undefined> {
  const out = {} as Record<OutputFile, string | undefined>;
  for (const name of OUTPUT_FILES) {
    const path = join(outDir, name);
    if (!existsSync(path)) {
      out[name] = undefined;
      continue;
    }
    let text = readFileSync(path, 'utf8');
    if (name === 'summary.json') {
      const summary = JSON.parse(text) as Record<string, unknown>;
      for (const field of VOLATILE_SUMMARY_FIELDS) delete summary[field];
      text = stableStringify(summary);
    } else if (name === 'report.html') {
      text = text.replace(/generated \d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'generated <time>');
    }
    out[name] = text;
  }
  return out;
}

/** JSON with object keys sorted, so key order never makes two equal summaries differ. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v), 2);
}

/** summary.json as an object (all fields). */
export function readSummary(outDir: string): Summary {
  return JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as Summary;
}

/** keep.txt lines back to paths: lines written as JSON strings (odd paths) are decoded. */
export function parseKeepTxt(text: string): string[] {
  if (text === '') return [];
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return lines.map((l) => (l.startsWith('"') ? (JSON.parse(l) as string) : l));
}

const clip = (s: string | undefined, n = 300): string => (s === undefined ? '<missing>' : s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);

/**
 * Where two readOutputs() results differ: for each differing file, its first differing line
 * (clipped), so a failure message stays readable even for report.html. Empty when equal.
 */
export function outputDifferences(actual: Record<string, string | undefined>, expected: Record<string, string | undefined>): string[] {
  const diffs: string[] = [];
  for (const name of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    const a = actual[name];
    const e = expected[name];
    if (a === e) continue;
    if (a === undefined || e === undefined) {
      diffs.push(`${name}: ${a === undefined ? 'missing in actual' : 'missing in expected'}`);
      continue;
    }
    const al = a.split('\n');
    const el = e.split('\n');
    const i = al.findIndex((line, k) => line !== el[k]);
    const at = i < 0 ? el.length : i;
    diffs.push(`${name}: ${al.length} vs ${el.length} lines; first difference at line ${at + 1}:\n  actual:   ${clip(al[at])}\n  expected: ${clip(el[at])}`);
  }
  return diffs;
}

/** Assert two readOutputs() results are equal, failing with outputDifferences() as the message. */
export function assertSameOutputs(actual: Record<string, string | undefined>, expected: Record<string, string | undefined>, what = 'outputs'): void {
  const diffs = outputDifferences(actual, expected);
  if (diffs.length > 0) throw new assert.AssertionError({ message: `${what} differ:\n${diffs.join('\n')}`, actual: diffs, expected: [], operator: 'sameOutputs' });
}
