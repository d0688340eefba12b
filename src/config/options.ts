import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, normalize, resolve } from 'node:path';
import { ConfigError, invalidOption } from '../errors.js';
import { defaultModelDir } from '../util/package-root.js';
import { RUNTIMES, type RuntimeName } from '../embed/backend/index.js';

export type { RuntimeName };

/** Runtimes by name; validation, --help and docs read this table. */
export const RUNTIME_NAMES = Object.freeze(Object.keys(RUNTIMES) as RuntimeName[]);

/** Which image of a near-duplicate group `dedup` keeps. */
export const KEEP_POLICIES = Object.freeze({
  largest: 'the image with the most pixels (ties: the larger file, then the first path)',
  'largest-file': 'the largest file in bytes (ties: the first path)',
  first: 'the first path in sort order',
} as const);
export type KeepPolicy = keyof typeof KEEP_POLICIES;

/** Options as they arrive from flags, a pipeline file or a library call: unvalidated. */
export interface RawOptions {
  upstream?: string[];
  downstream?: string[];
  sources?: string[];
  out?: string;
  db?: string;
  model?: string;
  runtime?: string;
  threshold?: number | string;
  floor?: number | string;
  /** 'on' (default): decide by the verify stage's alignment score; 'off': by cosine alone. */
  verify?: string | boolean;
  k?: number | string;
  concurrency?: number | string;
  batchSize?: number | string;
  threads?: number | string;
  wait?: number | string;
  followLinks?: boolean;
  failOnMatch?: boolean;
  json?: boolean;
  quiet?: boolean;
  keep?: string;
  /** "i/N": this run handles upstream shard i of N (by key hash), e.g. one Kubernetes/Slurm array task. */
  shard?: string;
  /** A catalog made by `neardup prepare`: its downstream side is used read-only instead of --downstream. */
  downstreamDb?: string;
  /** Set by queue workers only: the job lease proves a lock left on another host is stale. */
  leaseHeld?: boolean;
  /** decisions.csv exported by report.html's review view: recorded in the catalog before the outputs are written. */
  decisions?: string;
}

/** Validated once at the boundary; stages trust every field. */
export interface ResolvedOptions {
  upstream: string[];
  downstream: string[];
  sources: string[];
  out: string;
  db: string;
  model: string;
  runtime: RuntimeName;
  /** Threshold on the deciding score (verified score, or cosine with verify off). Undefined: the model card's. */
  threshold: number | undefined;
  /** Cosine at or above which a retrieved pair is a candidate. Undefined: the model card's (cosine: threshold − 0.05). */
  floor: number | undefined;
  /** Decide by the verify stage (alignment) rather than by cosine alone. */
  verify: boolean;
  /** Candidates per upstream query. Undefined: the model card's (verify) or 10 (cosine). */
  k: number | undefined;
  concurrency: number;
  batchSize: number;
  threads: number;
  waitMs: number;
  followLinks: boolean;
  failOnMatch: boolean;
  json: boolean;
  quiet: boolean;
  keep: KeepPolicy;
  shard: Shard | undefined;
  /** Absolute path of a prepared downstream catalog, or undefined. */
  downstreamDb: string | undefined;
  leaseHeld: boolean;
  /** Absolute path of a decisions.csv to record (checked to exist), or undefined. */
  decisions: string | undefined;
}

/** One of N deterministic slices of the upstream side. */
export interface Shard { index: number; count: number }

function parseShard(raw: string | undefined): Shard | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(raw.trim());
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!shard || shard.count < 1 || shard.index >= shard.count) throw invalidOption('shard', 'i/N with 0 <= i < N, e.g. 0/8', raw);
  return shard;
}

function num(name: string, raw: number | string | undefined, lo: number, hi: number, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const v = typeof raw === 'number' ? raw : raw.trim() === '' ? Number.NaN : Number(raw);
  const ok = Number.isFinite(v) && v >= lo && v <= hi && (!integer || Number.isInteger(v));
  if (!ok) throw invalidOption(name, `${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}`, raw);
  return v;
}

function parseSwitch(name: string, raw: string | boolean): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'on' || raw === 'off') return raw === 'on';
  throw invalidOption(name, 'on or off', raw);
}

function decisionsFile(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const path = resolve(raw);
  if (!existsSync(path)) throw new ConfigError(`--decisions ${raw} does not exist: pass the decisions.csv exported from report.html's review view`, 'E_CONFIG');
  return path;
}

const cleanPaths = (xs: string[] | undefined) => (xs ?? []).map((p) => (p.includes('*') || p.includes(':') ? p : normalize(p).replace(/\/+$/, '') || '/'));

/** Validate and default every option. Throws ConfigError naming the option and what to change. */
export function resolveOptions(raw: RawOptions, needs: { out?: boolean } = {}): ResolvedOptions {
  if (needs.out && !raw.out) throw new ConfigError('Missing --out <dir>: say where neardup writes its outputs (matches.csv, keep.txt, report.html, ...)', 'E_CONFIG');
  const out = raw.out ?? '.';
  const runtime = raw.runtime ?? 'onnx';
  if (!(RUNTIME_NAMES as readonly string[]).includes(runtime)) throw invalidOption('runtime', `one of ${RUNTIME_NAMES.join(', ')}`, runtime);
  const keep = raw.keep ?? 'largest';
  if (!(keep in KEEP_POLICIES)) throw invalidOption('keep', `one of ${Object.keys(KEEP_POLICIES).join(', ')}`, keep);
  const threshold = num('threshold', raw.threshold, -1, 1, false);
  const floor = num('floor', raw.floor, -1, 1, false);
  const verify = parseSwitch('verify', raw.verify ?? 'on');
  if (!verify && threshold !== undefined && floor !== undefined && floor > threshold) {
    throw new ConfigError(`floor (${floor}) must not exceed threshold (${threshold}): candidates between floor and threshold are what candidates.csv shows`, 'E_CONFIG');
  }
  const cores = availableParallelism();
  return Object.freeze({
    upstream: cleanPaths(raw.upstream),
    downstream: cleanPaths(raw.downstream),
    sources: cleanPaths(raw.sources),
    out,
    db: raw.db ?? join(out, 'neardup.db'),
    model: raw.model ?? defaultModelDir(runtime),
    runtime: runtime as RuntimeName,
    threshold,
    floor,
    verify,
    k: num('k', raw.k, 1, 1000, true),
    concurrency: num('concurrency', raw.concurrency, 1, 256, true) ?? Math.max(2, cores * 2),
    // 32: the activations of a batch stay in L2; measured cheaper per image than 64 or 256 (scripts/bench.ts).
    batchSize: num('batch-size', raw.batchSize, 1, 4096, true) ?? 32,
    threads: num('threads', raw.threads, 1, 256, true) ?? cores,
    waitMs: (num('wait', raw.wait, 0, 86_400, false) ?? 0) * 1000,
    followLinks: raw.followLinks ?? false,
    failOnMatch: raw.failOnMatch ?? false,
    json: raw.json ?? false,
    quiet: raw.quiet ?? false,
    keep: keep as KeepPolicy,
    shard: parseShard(raw.shard),
    downstreamDb: raw.downstreamDb === undefined ? undefined : resolve(raw.downstreamDb),
    leaseHeld: raw.leaseHeld === true,
    decisions: decisionsFile(raw.decisions),
  });
}
