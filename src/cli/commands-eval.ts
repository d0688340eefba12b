/**
 * `neardup eval` and `neardup calibrate`: thin wrappers over src/eval/run.ts that parse flags,
 * call the library and print its report as a table or JSON.
 */
import { ConfigError, EXIT, invalidOption } from '../errors.js';
import type { CalibrationReport, EvalOptions, EvalReport, MethodMetrics } from '../eval/run.js';
import type { OperatingPoint, PrecisionTarget } from '../eval/metrics.js';
import type { FamilyName } from '../eval/transforms.js';
import { createProgress } from './progress.js';
import { FLAGS, type FlagSpec } from './flags.js';
import { command, type Command, type CommandIO } from './command.js';

// FlagSpec.key lists only the keys other commands use; these eval-only ones go in as they are.
const own = (name: string, key: string, description: string, argument?: string): FlagSpec =>
  ({ name, key: key as FlagSpec['key'], description, argument });

const F = FLAGS;
const EVAL_FLAGS: FlagSpec[] = [
  F.model,
  own('originals', 'originals', 'photos taken as the downstream set; each gets one copy per transformation family (default 200)', '<n>'),
  own('distractors', 'distractors', 'other photos added upstream as non-matching queries (default: every remaining photo)', '<n>'),
  own('distractors-from', 'distractorsFrom', 'take the distractors from this folder (scale mode, e.g. ../shared/data/tiny-imagenet/train for 50,000)', '<dir>'),
  own('resolution', 'resolution', 'fit every suite image inside this side in pixels, e.g. 32 for a CIFAR-size test set (default: the photos as they are)', '<px>'),
  own('seed', 'seed', 'seed of the suite; the same seed rebuilds the same files (default 1)', '<n>'),
  own('threshold', 'threshold', "cosine threshold of the cosine-only decision (default: the model card's)", '<x>'),
  own('verify', 'verify', 'on (default): also verify every candidate by alignment and report the verified decision beside cosine; off: cosine only', '<on|off>'),
  own('verify-threshold', 'verifyThreshold', "threshold of the verified score (default: the model card's)", '<x>'),
  own('floor', 'floor', "cosine floor of the candidates (default: the model card's, as an audit uses)", '<x>'),
  own('k', 'k', 'candidates kept per upstream image (default 5)', '<n>'),
  own('work', 'work', 'build the suite and catalog here and keep them (default: a temporary folder, removed)', '<dir>'),
  own('families', 'families', 'comma-separated transformation families to build copies of (default: all; see docs/usage.md)', '<list>'),
  own('write-card', 'writeCard', "store the P>=0.99 threshold, calibration and quality table in the model's card.json"),
  F.runtime, F.concurrency, F.batchSize, F.threads, F.json, F.quiet, F.help,
];

type Parsed = Record<string, unknown>;

function optionalNumber(name: string, raw: unknown): number | undefined {
  if (raw === undefined) return undefined;
  const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(v)) throw invalidOption(name, 'a number', raw);
  return v;
}

function evalOptions(o: Parsed, io: CommandIO): EvalOptions {
  // The card's thresholds serve photos at their own size; a downscaled suite measures another regime.
  if (o.writeCard === true && o.resolution !== undefined) throw new ConfigError('--write-card calibrates the card on the photos as they are: drop --resolution (run that regime separately)', 'E_CONFIG');
  if (o.writeCard === true && o.families !== undefined) throw new ConfigError('--write-card calibrates the card on every family: drop --families', 'E_CONFIG');
  return {
    families: familyList(o.families),
    model: o.model as string | undefined,
    originals: optionalNumber('originals', o.originals),
    distractors: optionalNumber('distractors', o.distractors),
    seed: optionalNumber('seed', o.seed),
    resolution: optionalNumber('resolution', o.resolution),
    threshold: optionalNumber('threshold', o.threshold),
    distractorsFrom: o.distractorsFrom as string | undefined,
    verify: verifySwitch(o.verify),
    verifyThreshold: optionalNumber('verify-threshold', o.verifyThreshold),
    floor: optionalNumber('floor', o.floor),
    k: optionalNumber('k', o.k),
    workDir: o.work as string | undefined,
    runtime: o.runtime as string | undefined,
    concurrency: optionalNumber('concurrency', o.concurrency),
    batchSize: optionalNumber('batch-size', o.batchSize),
    threads: optionalNumber('threads', o.threads),
    quiet: o.quiet === true,
    progress: createProgress({ enabled: io.isTTY && o.quiet !== true }),
  };
}

/** Split only: the suite checks each name against the families before it builds anything. */
function familyList(raw: unknown): FamilyName[] | undefined {
  if (raw === undefined) return undefined;
  const names = String(raw).split(',').map((f) => f.trim()).filter((f) => f !== '');
  if (names.length === 0) throw invalidOption('families', 'a comma-separated list of families', raw);
  return names as FamilyName[];
}

function verifySwitch(raw: unknown): 'on' | 'off' | undefined {
  if (raw === undefined || raw === 'on' || raw === 'off') return raw;
  throw invalidOption('verify', 'on or off', raw);
}

function folderOf(name: string, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new ConfigError(`Expected one folder of photos for neardup ${name} but received ${positionals.length === 0 ? 'none' : positionals.map((p) => JSON.stringify(p)).join(' ')}. Run \`neardup ${name} --help\`.`, 'E_CONFIG');
  }
  return positionals[0];
}

function evalLike(name: string, usage: string, summary: string, action: (folder: string, o: EvalOptions, parsed: Parsed, io: CommandIO) => Promise<number>): Command {
  return command(name, usage, summary, EVAL_FLAGS, true, (o, positionals, io) => action(folderOf(name, positionals), evalOptions(o, io), o, io));
}

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
const thr = (x: number | null): string => (x === null ? 'unreachable' : x.toFixed(3));
const bits = (score: number | null): string => (score === null ? '' : ` (≤${Math.round((1 - score) * 64)} bits)`);

/** Left-aligned first column, right-aligned numbers: a plain-text table for a terminal or a log. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n') + '\n';
}

const target = (m: MethodMetrics, p: number): PrecisionTarget => m.targets.find((t) => t.target === p)!;
const familyRecall = (point: OperatingPoint | null, family: string): number | null =>
  point?.families.find((f) => f.family === family)?.recall ?? null;

/**
 * Per family: the candidates' ceiling (original retrieved at all), cosine and verified recall at
 * their default thresholds and at precision 0.99, and dHash at its P99 threshold.
 */
function familyTable(r: EvalReport): string {
  const m99 = target(r.metrics, 0.99).point;
  const d99 = target(r.dhash, 0.99).point;
  const v = r.verified;
  const v99 = v ? target(v, 0.99).point : null;
  const head = ['family', 'copies', 'candidates', `cosine@${r.metrics.threshold.toFixed(3)}`, 'cosine@P99', ...(v ? [`verified@${v.threshold.toFixed(3)}`, 'verified@P99'] : []), 'dHash@P99'];
  const rows = r.metrics.atDefault.families.map((f) => [
    f.family, String(f.copies), pct(r.retrieval.families.find((x) => x.family === f.family)?.ceiling), pct(f.recall), pct(familyRecall(m99, f.family)),
    ...(v ? [pct(familyRecall(v.atDefault, f.family)), pct(familyRecall(v99, f.family))] : []), pct(familyRecall(d99, f.family)),
  ]);
  const all = ['all', String(r.suite.copies), pct(r.retrieval.all), pct(r.metrics.atDefault.recall), pct(m99?.recall ?? 0),
    ...(v ? [pct(v.atDefault.recall), pct(v99?.recall ?? 0)] : []), pct(d99?.recall ?? 0)];
  return table([head, ...rows, all]);
}

const per1e9 = (x: number): string => (x === 0 ? '0' : x < 10 ? x.toFixed(2) : x.toFixed(0));

function summaryLines(r: EvalReport): string {
  const m = r.metrics;
  const d = r.dhash;
  const source = { option: 'from --threshold', card: "the model card's", fallback: 'fallback: the model card has no calibrated threshold' }[r.thresholdSource];
  const v = r.verified;
  const lines = [
    `candidates: top ${r.retrieval.k} with cosine >= ${r.retrieval.floor}; ${r.pairs.toLocaleString('en-US')} (upstream × downstream) pairs`,
    ...(v ? [
      `verified (${v.verifier}): threshold ${v.threshold.toFixed(3)}, precision ${pct(v.atDefault.precision)} (${v.atDefault.correct}/${v.atDefault.predicted}), recall ${pct(v.atDefault.recall)}, false matches ${per1e9(v.falsePer1e9Pairs)} per 1e9 pairs`,
      `verified: best recall at precision >= 0.99: ${pct(v.bestRecallAtP99)} (threshold ${thr(target(v, 0.99).threshold)}); at precision >= 0.999: ${pct(target(v, 0.999).point?.recall ?? 0)} (threshold ${thr(target(v, 0.999).threshold)})`,
    ] : []),
    `cosine: false matches ${per1e9(r.cosineFalsePer1e9Pairs)} per 1e9 pairs at threshold ${m.threshold.toFixed(3)}`,
    `default threshold: model ${m.threshold.toFixed(3)} (${source}), dHash ${d.threshold.toFixed(3)}${bits(d.threshold)}`,
    `precision at default threshold: model ${pct(m.atDefault.precision)} (${m.atDefault.correct}/${m.atDefault.predicted}), dHash ${pct(d.atDefault.precision)} (${d.atDefault.correct}/${d.atDefault.predicted})`,
    `false matches per distractor at default: model ${pct(m.atDefault.falseMatchRate)}, dHash ${pct(d.atDefault.falseMatchRate)}`,
    `best recall at precision >= 0.99: model ${pct(m.bestRecallAtP99)} (threshold ${thr(target(m, 0.99).threshold)}), dHash ${pct(d.bestRecallAtP99)} (threshold ${thr(target(d, 0.99).threshold)}${bits(target(d, 0.99).threshold)})`,
    ...m.targets.map((t) => {
      const dt = target(d, t.target);
      return `threshold for precision ${t.target}: model ${thr(t.threshold)} (recall ${pct(t.point?.recall ?? 0)}), dHash ${thr(dt.threshold)}${bits(dt.threshold)} (recall ${pct(dt.point?.recall ?? 0)})`;
    }),
    ...estimateLines(r),
    `throughput: ${r.throughput.upstreamImages} upstream images in ${r.throughput.auditSeconds.toFixed(1)} s of audit = ${r.throughput.imagesPerSecond} images/s`,
  ];
  return lines.join('\n') + '\n';
}

/** The audit's estimated precision (no labels) against the precision measured with the answer key. */
function estimateLines(r: EvalReport): string[] {
  if (!r.estimates) return [];
  const rows = r.estimates.map((e) => [
    e.threshold.toFixed(3), String(e.matches), pct(e.measured), pct(e.estimated),
    e.interval ? `${pct(e.interval[0])}–${pct(e.interval[1])}` : '—', `${e.controls.passed}/${e.controls.sampled}`,
  ]);
  return ['estimated precision (controls, no labels) vs measured, matched pairs:', table([['verified@', 'matches', 'measured', 'estimated', '95%', 'controls passed'], ...rows]).trimEnd()];
}

function suiteLine(r: CalibrationReport): string {
  const s = r.suite;
  return `${r.model.id}: ${s.originals} originals × ${s.families.length} families = ${s.copies} copies + ${s.distractors} distractors from ${s.folder} (seed ${s.seed})${s.workDir ? `; suite kept in ${s.workDir}` : ''}\n`;
}

function calibrationTable(r: CalibrationReport): string {
  const rows = r.targets.map((t) => [String(t.target), thr(t.threshold), pct(t.point?.recall ?? 0), pct(t.point?.falseMatchRate)]);
  return table([['precision', 'threshold', 'recall', 'false matches/distractor'], ...rows]);
}

async function maybeWriteCard(parsed: Parsed, report: EvalReport, io: CommandIO): Promise<void> {
  if (parsed.writeCard !== true) return;
  const { writeCard } = await import('../eval/run.js');
  const threshold = await writeCard(report.model.dir, report);
  io.stderr(`wrote threshold ${threshold}, calibration and quality to ${report.model.dir}/card.json\n`);
}

/** `neardup eval <folder>`: recall per family, precision and thresholds, model beside dHash. */
export const evalCommand: Command = evalLike('eval', 'neardup eval <folder> [--model <dir>] [--originals <n>] [--distractors <n>] [--seed <n>] [--resolution <px>] [--threshold <x>] [--work <dir>] [--write-card] [--json] [-q]',
  'Build the recall@P99 suite from a folder of photos (originals, one transformed copy per family, distractors), run the real audit on it and report recall per family, precision, false matches and thresholds, beside the dHash baseline.',
  async (folder, o, parsed, io) => {
    const { evaluate } = await import('../eval/run.js');
    const report = await evaluate(folder, o);
    io.stdout(parsed.json === true ? `${JSON.stringify(report, null, 2)}\n` : suiteLine(report) + familyTable(report) + summaryLines(report));
    await maybeWriteCard(parsed, report, io);
    return EXIT.ok;
  });

/** `neardup calibrate <folder>`: thresholds for precision 0.9 / 0.99 / 0.999. */
export const calibrateCommand: Command = evalLike('calibrate', 'neardup calibrate <folder> [--model <dir>] [--originals <n>] [--distractors <n>] [--seed <n>] [--work <dir>] [--write-card] [--json] [-q]',
  'Build the recall@P99 suite from a folder of photos, run the real audit on it and print the thresholds at which top-1 precision reaches 0.9, 0.99 and 0.999, with the recall at each. --write-card also runs the dHash baseline, for the card\'s quality table.',
  async (folder, o, parsed, io) => {
    const run = await import('../eval/run.js');
    // The card's quality table needs the full evaluation; without --write-card the baseline is skipped.
    const report: CalibrationReport = parsed.writeCard === true ? await run.evaluate(folder, o) : await run.calibrate(folder, o);
    io.stdout(parsed.json === true ? `${JSON.stringify(report, null, 2)}\n` : suiteLine(report) + calibrationTable(report));
    if (parsed.writeCard === true) await maybeWriteCard(parsed, report as EvalReport, io);
    return EXIT.ok;
  });
