import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { KEEP_POLICIES, RUNTIME_NAMES, type RawOptions } from '../config/options.js';

/** One flag: its description, its argument (absent for booleans) and where it goes in RawOptions. */
export interface FlagSpec {
  name: string;
  key: keyof RawOptions | 'help' | 'apply' | 'to' | 'write-card' | 'sample' | 'distractors' | 'seed' | 'undo' | 'check' | QueueKey;
  description: string;
  argument?: string;
  multiple?: boolean;
  short?: string;
}

const f = (name: string, key: FlagSpec['key'], description: string, argument?: string, extra: Partial<FlagSpec> = {}): FlagSpec => ({ name, key, description, argument, ...extra });

/** Queue-mode settings (enqueue, worker, status); they never reach RawOptions. */
type QueueKey = 'redis' | 'queue' | 'shards' | 'run' | 'lease' | 'exitWhenIdle' | 'attempts';

/** Every flag neardup knows; each command picks the ones it accepts. */
export const FLAGS = {
  upstream: f('upstream', 'upstream', 'upstream source (pretraining data): folder, list:<file>, <file>.txt, glob, tar:<shards>, cifar10:<dir>, cifar100:<dir> or parquet:<files>; repeatable', '<source>', { multiple: true }),
  downstream: f('downstream', 'downstream', 'downstream source (test set): folder, list:<file>, <file>.txt, glob, tar:<shards>, cifar10:<dir>, cifar100:<dir> or parquet:<files>; repeatable', '<source>', { multiple: true }),
  out: f('out', 'out', 'output folder (matches.csv, candidates.csv, keep.txt, removed.csv, summary.json, report.html)', '<dir>'),
  db: f('db', 'db', 'catalog file (SQLite); default <out>/neardup.db', '<file>'),
  model: f('model', 'model', 'model folder with card.json and model.onnx; default the bundled models/neardup-vit-s8-int8 (models/neardup-vit-s8 with --runtime tfjs)', '<dir>'),
  runtime: f('runtime', 'runtime', `inference runtime: ${RUNTIME_NAMES.join(' | ')} (default onnx)`, '<name>'),
  threshold: f('threshold', 'threshold', "score at or above which a candidate is a near-duplicate: the verified (alignment) score, or cosine with --verify off; default the model card's calibrated value. A new threshold alone re-decides from stored scores", '<x>'),
  floor: f('floor', 'floor', "lowest cosine at which a retrieved pair becomes a candidate (and is verified); default the model card's (with --verify off: threshold - 0.05)", '<x>'),
  verify: f('verify', 'verify', 'on (default): verify every candidate by aligning the two images (zoom, rotation, shift) and decide by the correlation of the overlap; off: decide by cosine alone', '<on|off>'),
  k: f('k', 'k', "downstream images examined (and verified) per upstream query; default the model card's (10 with --verify off)", '<n>'),
  concurrency: f('concurrency', 'concurrency', 'images decoded at once (default 2 × cores)', '<n>'),
  batchSize: f('batch-size', 'batchSize', 'model inputs per inference batch (default 32)', '<n>'),
  threads: f('threads', 'threads', 'inference threads (default: number of cores)', '<n>'),
  wait: f('wait', 'wait', 'seconds to wait for another run holding the catalog (default 0: refuse at once)', '<s>'),
  followLinks: f('follow-links', 'followLinks', 'follow symlinks that leave a source folder (default: record them as skipped)'),
  failOnMatch: f('fail-on-match', 'failOnMatch', 'exit 11 when any upstream image matched (for CI gates)'),
  json: f('json', 'json', 'print the summary as JSON on stdout'),
  quiet: f('quiet', 'quiet', 'no progress bars or messages on stderr', undefined, { short: 'q' }),
  keep: f('keep', 'keep', `which image of a group dedup keeps: ${Object.keys(KEEP_POLICIES).join(' | ')} (default largest)`, '<policy>'),
  apply: f('apply', 'apply', 'act on the removed files: move | delete (journaled in the catalog; without it purge only writes the plan)', '<action>'),
  to: f('to', 'to', 'with --apply move: folder receiving the removed files (relative paths kept)', '<dir>'),
  undo: f('undo', 'undo', 'roll back the moves of an earlier or interrupted purge --apply move'),
  shard: f('shard', 'shard', 'handle upstream shard i of N only (by key hash; 0-based), e.g. --shard 3/8; combine the shard outputs with neardup merge', '<i/N>'),
  downstreamDb: f('downstream-db', 'downstreamDb', 'use the downstream side prepared in this catalog by `neardup prepare` (read-only; instead of --downstream)', '<file>'),
  redis: f('redis', 'redis', 'Redis URL of the job queue (default $NEARDUP_REDIS or redis://127.0.0.1:6379)', '<url>'),
  queue: f('queue', 'queue', 'BullMQ queue name (default neardup)', '<name>'),
  shards: f('shards', 'shards', 'number of upstream shard jobs to enqueue', '<N>'),
  run: f('run', 'run', 'name of the run on the queue (default derived from --out); enqueueing a run again adds nothing', '<name>'),
  attempts: f('attempts', 'attempts', 'tries per shard job before it fails (default 3; a killed worker does not use one)', '<n>'),
  lease: f('lease', 'lease', 'seconds a job stays with a worker that stopped renewing it (killed, hung) before another takes it (default 60)', '<s>'),
  exitWhenIdle: f('exit-when-idle', 'exitWhenIdle', 'exit once the queue has nothing waiting or running (batch jobs, CI)'),
  decisions: f('decisions', 'decisions', "decisions.csv exported from report.html's review view (upstream,downstream,decision = accept|reject): recorded in the catalog (by content hash, so they outlast reruns, new thresholds and models) and overriding the model's decisions", '<file>'),
  check: f('check', 'check', 'the certificate.json to check against the data as it is now', '<file>'),
  help: f('help', 'help', 'show this help', undefined, { short: 'h' }),
} satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

export interface ParsedCommand { options: RawOptions & Record<string, unknown>; positionals: string[]; help: boolean }

/** Parse argv for one command; unknown flags and missing values become ConfigError (exit 2). */
export function parseFlags(command: string, argv: string[], accepted: FlagSpec[], positionals: boolean): ParsedCommand {
  const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const spec of accepted) config[spec.name] = { type: spec.argument ? 'string' : 'boolean', ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: positionals, strict: true });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional.*$/s, '');
    throw new ConfigError(`${message}. Run \`neardup ${command} --help\` for the flags it takes.`, 'E_FLAG', { cause: error });
  }
  const options: Record<string, unknown> = {};
  for (const spec of accepted) {
    const value = parsed.values[spec.name];
    if (value !== undefined) options[spec.key] = value;
  }
  return { options: options as ParsedCommand['options'], positionals: parsed.positionals, help: options.help === true };
}

export function helpText(usage: string, summary: string, accepted: FlagSpec[]): string {
  const rows = accepted.map((s) => [`${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.argument ? ` ${s.argument}` : ''}`, s.description] as const);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return `Usage: ${usage}\n\n${summary}\n\nOptions:\n${rows.map(([l, d]) => `  ${l.padEnd(width)}${d}`).join('\n')}\n`;
}
