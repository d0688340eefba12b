import { ConfigError, EXIT } from '../errors.js';
import type { RawOptions } from '../config/options.js';
import type { Summary } from '../report/write.js';
import { createProgress } from './progress.js';
import { calibrateCommand, evalCommand } from './commands-eval.js';
import { enqueueCommand, prepareCommand, statusCommand, workerCommand } from './commands-queue.js';
import { certificateCommand } from './commands-certificate.js';
import { FLAGS, type FlagSpec } from './flags.js';
import { command, type Command, type CommandIO } from './command.js';

export type { Command, CommandIO };

const F = FLAGS;
const COMMON: FlagSpec[] = [F.db, F.model, F.runtime, F.wait, F.quiet, F.help];
const SIDES: FlagSpec[] = [F.upstream, F.downstream];
const MATCHING: FlagSpec[] = [F.threshold, F.floor, F.k, F.verify];
const DECODE: FlagSpec[] = [F.concurrency, F.batchSize, F.threads, F.followLinks];

const progressFor = (o: RawOptions, io: CommandIO) => createProgress({ enabled: io.isTTY && !o.quiet });

function printSummary(summary: Summary, o: RawOptions, io: CommandIO, outDir: string): void {
  if (o.json) {
    io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const c = summary.counts;
  io.stdout(
    `upstream ${c.upstream} images (${c.upstreamOk} ok), downstream ${c.downstream} (${c.downstreamOk} ok), ${c.errors} with errors (see errors.csv)\n` +
      `${c.removed} upstream images match a downstream image at ${summary.decidedBy === 'verified' ? 'verified score' : 'cosine'} threshold ${summary.threshold} (${c.exactDuplicates} byte-identical copies); ${c.kept} kept\n` +
      `${estimateLine(summary)}\n` +
      `outputs in ${outDir}: matches.csv candidates.csv keep.txt removed.csv errors.csv summary.json report.html certificate.json\n`,
  );
}

/** The run's estimated precision in one line (src/estimate/), or why there is none. */
function estimateLine(summary: Summary): string {
  const e = summary.estimate;
  if (!e) return summary.decidedBy === 'cosine' ? 'precision not estimated: it needs verification (--verify on)' : 'precision: nothing verified, nothing matched';
  if (e.precision === null && e.matches === 0) return `no matches (${e.controls.sampled} control alignments, ${e.controls.passed} passed)`;
  if (e.precision === null) return 'precision not estimated: no control alignments in this catalog (verified by an older neardup: run `neardup match` again)';
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  // Few controls bound the chance rate loosely: say why the interval is wide rather than let it alarm.
  const few = e.controls.failed < 100 ? `; only ${e.controls.sampled} control alignments, so the interval is wide` : '';
  return `estimated precision ${pct(e.precision)} (95% ${pct(e.interval![0])}–${pct(e.interval![1])}): ~${e.falseMatches} of ${e.matches} matches by chance, from ${e.controls.passed} of ${e.controls.sampled} control alignments passing${few}`;
}

const audit = command('audit', 'neardup audit --upstream <source>... --downstream <source>... --out <dir> [options]',
  'The whole decontamination chain: list, decode and embed both sides, index the downstream views, match every upstream image, write the purge plan and report.',
  [...SIDES, F.downstreamDb, F.out, ...MATCHING, ...DECODE, F.shard, F.failOnMatch, F.decisions, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { audit: run } = await import('../audit/run.js');
    const result = await run(o, { progress: progressFor(o, io) });
    printSummary(result.summary, o, io, result.outDir);
    return o.failOnMatch && result.matched > 0 ? EXIT.matchFound : EXIT.ok;
  });

const scan = command('scan', 'neardup scan --upstream <source>... --downstream <source>... [--db <file>]',
  'List the sources into the catalog and decode every image once: size, content hash (byte-identical copies), and the reason for any file that cannot be read.',
  [...SIDES, F.out, F.concurrency, F.followLinks, F.shard, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { scan: run } = await import('../audit/run.js');
    const r = await run(o, { progress: progressFor(o, io) });
    io.stdout(o.json ? `${JSON.stringify(r)}\n` : `${r.decoded} images decoded, ${r.failed} with errors (neardup report lists them in errors.csv)\n`);
    return EXIT.ok;
  });

const embed = command('embed', 'neardup embed [--upstream <source>...] [--downstream <source>...] [--db <file>] [--model <dir>]',
  'Embed every catalogued image that lacks an embedding for this model (downstream in 32 views: 8 dihedral, 19 crops (one in grayscale), 4 rotations, grayscale). Sources default to all in the catalog.',
  [...SIDES, F.out, ...DECODE, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { embed: run } = await import('../audit/run.js');
    const r = await run(o, { progress: progressFor(o, io) });
    io.stdout(o.json ? `${JSON.stringify(r)}\n` : `downstream: ${r.downstream.embedded} embedded, ${r.downstream.failed} failed; upstream: ${r.upstream.embedded} embedded, ${r.upstream.reused} reused, ${r.upstream.failed} failed\n`);
    return EXIT.ok;
  });

const index = command('index', 'neardup index [--downstream <source>...] [--db <file>] [--model <dir>]',
  'Build the HNSW index over the downstream views and save it beside the catalog (reused while nothing changed).',
  [F.downstream, F.out, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { index: run } = await import('../audit/run.js');
    const r = await run(o, { progress: progressFor(o, io) });
    io.stdout(o.json ? `${JSON.stringify(r)}\n` : `index of ${r.images} downstream images (${r.vectors} views) ${r.reused ? 'reused' : 'built'}: ${r.path}\n`);
    return EXIT.ok;
  });

const match = command('match', 'neardup match [--upstream <source>...] [--downstream <source>...] [--threshold <x>] [--db <file>]',
  'Query every upstream embedding against the downstream index, verify each candidate by alignment (upstream images are decoded again for it when run alone; audit hands them over from its decode) and decide at the threshold. A new threshold alone re-decides from stored scores without searching or verifying again.',
  [...SIDES, F.out, ...MATCHING, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { match: run } = await import('../audit/run.js');
    const r = await run(o, { progress: progressFor(o, io) });
    io.stdout(o.json ? `${JSON.stringify(r)}\n` : `${r.queried} upstream images queried; ${r.candidates} candidates, ${r.matches} matches (${r.exact} exact)\n`);
    return EXIT.ok;
  });

const report = command('report', 'neardup report --out <dir> [--threshold <x>] [--db <file>]',
  'Write matches.csv, candidates.csv, keep.txt, removed.csv, errors.csv, summary.json and report.html from the catalog.',
  [...SIDES, F.out, ...MATCHING, F.failOnMatch, F.decisions, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { report: run } = await import('../audit/run.js');
    const summary = await run(o);
    printSummary(summary, o, io, o.out!);
    return o.failOnMatch && summary.counts.removed > 0 ? EXIT.matchFound : EXIT.ok;
  });

const purge = command('purge', 'neardup purge --out <dir> [--decisions decisions.csv] [--apply move --to <dir> | --apply delete | --undo] [--threshold <x>] [--db <file>]',
  'Write the purge plan (keep.txt, removed.csv) from the catalog. --decisions records a reviewer\'s decisions first (accepted pairs are removed whatever their score, rejected ones never) and writes every output again (matches.csv, candidates.csv, summary.json, report.html) so they show them. Files are moved or deleted only with --apply; every operation is journaled first, so an interrupted purge resumes, and --undo rolls moves back.',
  [...SIDES, F.out, ...MATCHING, F.decisions, F.apply, F.to, F.undo, F.json, ...COMMON], false,
  async (o, _p, io) => {
    const { purge: run } = await import('../audit/run.js');
    const r = await run(o, { apply: o.apply as string | undefined, to: o.to as string | undefined, undo: o.undo === true });
    if (o.json) io.stdout(`${JSON.stringify(r, null, 2)}\n`);
    else {
      if (r.decisions) io.stdout(`${r.decisions.recorded} decisions recorded from ${r.decisions.file} (${r.decisions.accepted} accepted, ${r.decisions.rejected} rejected)\n`);
      io.stdout(`${r.removed} to remove, ${r.kept} to keep: ${o.out}/keep.txt, ${o.out}/removed.csv\n`);
      if (r.applied) io.stdout(`${o.apply}: ${r.applied.done} done, ${r.applied.alreadyDone} already done, ${r.applied.failed} failed (see the purge_ops table)\n`);
      if (r.undone) io.stdout(`undo: ${r.undone.restored} files restored, ${r.undone.failed} failed${r.undone.deletions ? `, ${r.undone.deletions} deletions cannot be undone` : ''}\n`);
    }
    return r.applied?.failed || r.undone?.failed ? EXIT.failure : EXIT.ok;
  });

const dedup = command('dedup', 'neardup dedup <source>... --out <dir> [--keep largest|largest-file|first] [--threshold <x>]',
  'Near-duplicate groups within one dataset: one keeper per group by the keep policy; every duplicate is directly similar to its keeper (no chaining).',
  [F.out, F.keep, ...MATCHING, ...DECODE, F.json, ...COMMON], true,
  async (o, positionals, io) => {
    const { dedup: run } = await import('../dedup/run.js');
    const r = await run({ ...o, sources: positionals }, { progress: progressFor(o, io) });
    const brief = { images: r.images, groups: r.groups.length, removed: r.removed, kept: r.kept, errors: r.errors, threshold: r.threshold };
    io.stdout(o.json ? `${JSON.stringify(brief, null, 2)}\n` : `${r.images} images: ${r.groups.length} groups of near-duplicates, ${r.removed} to remove, ${r.kept} kept (threshold ${r.threshold}); see ${r.outDir}/groups.csv\n`);
    return EXIT.ok;
  });

const run = command('run', 'neardup run pipelines/<name>.yaml [--json] [-q]',
  'Run a declarative pipeline file (command: audit or dedup, plus its options; paths relative to the file).',
  [F.json, F.quiet, F.help], true,
  async (o, positionals, io) => {
    if (positionals.length !== 1) throw new ConfigError(`Expected one pipeline file for run but received ${positionals.length}: neardup run pipelines/decontaminate.yaml`, 'E_CONFIG');
    const { loadPipeline } = await import('../config/pipeline.js');
    const pipeline = loadPipeline(positionals[0]!);
    const flags = [...(o.json ? ['--json'] : []), ...(o.quiet ? ['-q'] : [])];
    const target = COMMANDS[pipeline.command]!;
    return target.run([...toArgv(pipeline.options), ...flags], io);
  });

/** Options back to flags, so a pipeline run goes through exactly the same path as the CLI. */
function toArgv(options: RawOptions): string[] {
  const argv: string[] = [];
  const positional: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (key === 'sources') {
      positional.push(...(value as string[]));
      continue;
    }
    const spec = Object.values(FLAGS).find((x) => x.key === key)!;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (spec.argument) argv.push(`--${spec.name}`, String(v));
      else if (v === true) argv.push(`--${spec.name}`);
    }
  }
  return [...argv, ...positional];
}

const merge = command('merge', 'neardup merge <shard-out-dir>... --out <dir> [--json]',
  'Combine the outputs of audit --shard i/N runs into the outputs one unsharded run writes (matches.csv, candidates.csv, keep.txt, removed.csv, errors.csv, summary.json, report.html).',
  [F.out, F.json, F.quiet, F.help], true,
  async (o, positionals, io) => {
    if (!o.out) throw new ConfigError('Missing --out <dir>: where the merged outputs go', 'E_CONFIG');
    const { mergeShards } = await import('../report/merge.js');
    const summary = await mergeShards(positionals, o.out);
    printSummary(summary, o, io, o.out);
    return EXIT.ok;
  });

export const COMMANDS: Record<string, Command> = { audit, scan, embed, index, match, purge, report, dedup, run, merge, prepare: prepareCommand, enqueue: enqueueCommand, worker: workerCommand, status: statusCommand, eval: evalCommand, calibrate: calibrateCommand, certificate: certificateCommand };
