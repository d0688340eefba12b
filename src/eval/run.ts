/**
 * `eval` and `calibrate`: build the recall@P99 suite, run the real `audit` on it, and score its
 * candidates.csv against the answer key — beside the dHash baseline. `writeCard` stores the
 * calibrated threshold and the quality table in the model card.
 */
import { mkdtemp, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { audit } from '../audit/run.js';
import { FALLBACK_THRESHOLD, VERIFY_FALLBACK } from '../audit/session.js';
import { VERIFIER_ID } from '../verify/geometry.js';
import { loadModel } from '../embed/model-card.js';
import { ConfigError, invalidOption, NeardupError } from '../errors.js';
import { parseCsv } from '../report/csv.js';
import { defaultModelDir } from '../util/package-root.js';
import { SILENT, type Progress } from '../util/progress-types.js';
import { dhash } from './dhash.js';
import {
  dhashRows, dhashScore, operatingPoint, precisionTarget,
  type CandidateRow, type OperatingPoint, type PrecisionTarget,
} from './metrics.js';
import { buildSuite, type Suite } from './suite.js';
import { checkEstimates, checkThresholds, type EstimateCheck } from './estimate-check.js';
import type { FamilyName } from './transforms.js';

/** Defaults of the suite and of the audit run on it. */
export const EVAL_DEFAULTS = Object.freeze({
  originals: 200,
  seed: 1,
  /** Low enough that candidates.csv shows the negative tail the precision sweep needs. */
  floor: 0.3,
  /** Only the top candidate is scored; a few more cost little and help when reading the CSV. */
  k: 5,
  /** imagededup's default max_distance_threshold: the customary dHash cut-off. */
  dhashBits: 10,
});

/** Precision targets the thresholds are reported for; 0.99 sets the card's default threshold. */
export const PRECISION_TARGETS = Object.freeze([0.9, 0.99, 0.999] as const);
const CARD_TARGET = 0.99;

/** Options of {@link evaluate} and {@link calibrate}; the audit options pass through. */
export interface EvalOptions {
  model?: string;
  originals?: number;
  /** Default every image of the folder that is not an original. */
  distractors?: number;
  /** Take the distractors from this folder (the scale mode: e.g. 50,000 from tiny-imagenet/train). */
  distractorsFrom?: string;
  /** 'on' (default): the audit verifies candidates and the verified decision is reported beside cosine; 'off': cosine only. */
  verify?: 'on' | 'off';
  /** Cosine floor of the candidates; default the model card's (what an audit uses). */
  floor?: number;
  /** Candidates per upstream image; default {@link EVAL_DEFAULTS}.k. */
  k?: number;
  seed?: number;
  /** Build the suite here and keep it; default a temporary folder, removed afterwards. */
  workDir?: string;
  /** Default the model card's threshold (cosine). */
  threshold?: number;
  /** Default the model card's verified threshold. */
  verifyThreshold?: number;
  /** Side every suite image is fitted inside (e.g. 32 for CIFAR-size sets); default the photos as they are. */
  resolution?: number;
  /** Keep the temporary folder (ignored with workDir, which is always kept). */
  keepWork?: boolean;
  quiet?: boolean;
  families?: FamilyName[];
  runtime?: string;
  concurrency?: number;
  batchSize?: number;
  threads?: number;
  progress?: Progress;
}

/** One method's scores on the suite. */
export interface MethodMetrics {
  /** The method's default threshold, on its own score scale. */
  threshold: number;
  atDefault: OperatingPoint;
  /** One per {@link PRECISION_TARGETS}. */
  targets: PrecisionTarget[];
  /** Recall at the lowest threshold with precision >= 0.99; 0 when unreachable. */
  bestRecallAtP99: number;
}

/** What the suite was; enough to rebuild it. */
export interface SuiteInfo {
  folder: string;
  seed: number;
  originals: number;
  distractors: number;
  families: FamilyName[];
  copies: number;
  upstreamImages: number;
  /** Kept work folder, or null when it was a removed temporary one. */
  workDir: string | null;
}

/** Result of {@link calibrate}: thresholds per precision target. */
export interface CalibrationReport {
  suite: SuiteInfo;
  model: { id: string; name: string; dir: string };
  /** The model's thresholds and operating points per precision target. */
  targets: PrecisionTarget[];
  command: string;
  date: string;
}

/** Retrieval measured on its own: the share of copies whose original is among the candidates at all (what verification cannot exceed). */
export interface RetrievalCeiling {
  floor: number;
  k: number;
  families: { family: string; copies: number; retrieved: number; ceiling: number }[];
  all: number;
}

/** The verified decision's scores on the suite, with the candidates' ceiling and the false matches at scale. */
export interface VerifiedMetrics extends MethodMetrics {
  /** False matches (wrong top-1 decisions) per 1e9 (upstream × downstream) pairs at the default threshold. */
  falsePer1e9Pairs: number;
  verifier: string;
  /** The threshold a card would take ({@link verifiedThreshold}) and the scores there; null when precision 0.99 is out of reach. */
  proposed: OperatingPoint | null;
}

/** Result of {@link evaluate}. */
export interface EvalReport extends CalibrationReport {
  /** The cosine decision (the embedding alone). */
  metrics: MethodMetrics;
  /** False matches per 1e9 pairs of the cosine decision at its default threshold. */
  cosineFalsePer1e9Pairs: number;
  /** The verified decision; null with verify off. */
  verified: VerifiedMetrics | null;
  retrieval: RetrievalCeiling;
  /** The audit's label-free precision estimate beside the measured pair precision, per threshold; null with verify off. */
  estimates: EstimateCheck[] | null;
  /** Upstream images × originals: the pairs a false match can come from. */
  pairs: number;
  thresholdSource: ThresholdSource;
  /** The model at the threshold {@link writeCard} would store (P>=0.99, rounded up); null when unreachable. */
  proposed: OperatingPoint | null;
  /** The dHash baseline; score = 1 - hamming/64, default threshold {@link EVAL_DEFAULTS}.dhashBits. */
  dhash: MethodMetrics;
  throughput: { upstreamImages: number; auditSeconds: number; imagesPerSecond: number; embedUpstreamSeconds: number | null };
}

/** Rounds up to 3 decimals, guarding against 0.812 * 1000 = 812.0000000001 rounding to 0.813. */
export const ceil3 = (x: number): number => Math.ceil(x * 1000 - 1e-9) / 1000;

function methodMetrics(rows: CandidateRow[], suite: Suite, threshold: number): MethodMetrics {
  const targets = PRECISION_TARGETS.map((p) => precisionTarget(rows, suite, p));
  const p99 = targets.find((t) => t.target === CARD_TARGET)!;
  return { threshold, atDefault: operatingPoint(rows, suite, threshold), targets, bestRecallAtP99: p99.point?.recall ?? 0 };
}

function checkThreshold(t: number | undefined): void {
  if (t !== undefined && !(typeof t === 'number' && t >= -1 && t <= 1)) throw invalidOption('threshold', 'a number from -1 to 1', t);
}

/** The command line that rebuilds the same suite and report. */
function commandLine(name: string, folder: string, s: SuiteInfo, o: EvalOptions): string {
  const parts = ['neardup', name, folder, '--originals', String(s.originals), '--distractors', String(s.distractors)];
  if (o.distractorsFrom) parts.push('--distractors-from', o.distractorsFrom);
  if (o.resolution !== undefined) parts.push('--resolution', String(o.resolution));
  parts.push('--seed', String(s.seed));
  if (o.model) parts.push('--model', o.model);
  if (o.threshold !== undefined) parts.push('--threshold', String(o.threshold));
  if (o.verify === 'off') parts.push('--verify', 'off');
  if (o.verifyThreshold !== undefined) parts.push('--verify-threshold', String(o.verifyThreshold));
  if (o.floor !== undefined) parts.push('--floor', String(o.floor));
  if (o.k !== undefined) parts.push('--k', String(o.k));
  return parts.map((p) => (/^[\w./:@=+-]+$/.test(p) ? p : `'${p.replaceAll("'", "'\\''")}'`)).join(' ');
}

interface SuiteRun {
  suite: Suite;
  info: SuiteInfo;
  rows: CandidateRow[];
  /** The same candidates scored by the verify stage (those it verified). */
  verifiedRows: CandidateRow[];
  floor: number;
  k: number;
  auditSeconds: number;
  embedUpstreamSeconds: number | null;
  /** The audit's precision estimate against the measured precision (with verification only). */
  estimates: EstimateCheck[] | null;
}

/** Builds the suite, audits it and reads candidates.csv back; the temporary folder goes afterwards. */
async function withSuiteRun<T>(folder: string, o: EvalOptions, threshold: number, fn: (r: SuiteRun) => Promise<T>): Promise<T> {
  const work = o.workDir ?? (await mkdtemp(join(tmpdir(), 'neardup-eval-')));
  try {
    const suite = await buildSuite(folder, {
      originals: o.originals ?? EVAL_DEFAULTS.originals, distractors: o.distractors, distractorsFrom: o.distractorsFrom, seed: o.seed ?? EVAL_DEFAULTS.seed,
      workDir: work, families: o.families, concurrency: o.concurrency, resolution: o.resolution, progress: o.progress,
    });
    const run = await auditSuite(suite, work, threshold, o);
    return await fn({ ...run, info: suiteInfo(folder, suite, o.workDir || o.keepWork ? work : null) });
  } finally {
    if (!o.workDir && !o.keepWork) await rm(work, { recursive: true, force: true });
  }
}

function suiteInfo(folder: string, suite: Suite, workDir: string | null): SuiteInfo {
  const originals = new Set([...suite.truth.values()].map((t) => t.downstream)).size;
  return {
    folder, seed: suite.seed, originals, distractors: suite.distractors.length, families: suite.families,
    copies: suite.truth.size, upstreamImages: suite.truth.size + suite.distractors.length, workDir,
  };
}

/**
 * The real audit over the suite, on a fresh catalog: one kept from an earlier run in the same
 * work folder would reuse its embeddings and make the throughput figure meaningless.
 */
async function auditSuite(suite: Suite, work: string, threshold: number, o: EvalOptions): Promise<Omit<SuiteRun, 'info'>> {
  const out = join(work, 'audit');
  for (const old of (await readdir(work)).filter((n) => n.startsWith('neardup.db'))) await rm(join(work, old), { force: true });
  await rm(out, { recursive: true, force: true });
  const verify = (o.verify ?? 'on') === 'on';
  const t0 = performance.now();
  // With verification the audit's floor is the product's (the card's) unless asked otherwise:
  // the eval then measures what an audit finds. Cosine-only keeps the low floor its sweep needs.
  const result = await audit({
    upstream: [suite.upstreamDir], downstream: [suite.downstreamDir], out, db: join(work, 'neardup.db'),
    model: o.model, runtime: o.runtime, verify: verify ? 'on' : 'off',
    threshold: verify ? o.verifyThreshold : threshold, floor: o.floor ?? (verify ? undefined : Math.min(EVAL_DEFAULTS.floor, threshold)), k: o.k ?? (verify ? undefined : EVAL_DEFAULTS.k),
    concurrency: o.concurrency, batchSize: o.batchSize, threads: o.threads, quiet: o.quiet ?? true,
  }, { progress: o.progress });
  const auditSeconds = (performance.now() - t0) / 1000;
  const rows = await readCandidates(join(out, 'candidates.csv'));
  const verifiedRows = await readCandidates(join(out, 'candidates.csv'), 'verify_score');
  const estimates = verify ? checkEstimates(join(work, 'neardup.db'), result.summary.model.id, suite, checkThresholds(result.summary.threshold)) : null;
  return { suite, rows, verifiedRows, floor: result.summary.floor, k: result.summary.k, auditSeconds, embedUpstreamSeconds: result.summary.timings.embedUpstream ?? null, estimates };
}

/** candidates.csv rows keyed by file name (the suite's folders are flat and names are unique), scored by one column; rows without that score are left out. */
export async function readCandidates(path: string, scoreColumn: 'score' | 'verify_score' = 'score'): Promise<CandidateRow[]> {
  const [header, ...records] = parseCsv(await readFile(path, 'utf8'));
  const col = (name: string): number => {
    const i = header?.indexOf(name) ?? -1;
    if (i < 0) throw new NeardupError(`${path} has no "${name}" column: it was not written by this neardup's audit`, 'E_CSV');
    return i;
  };
  const [u, d, s, kind] = [col('upstream'), col('downstream'), col(scoreColumn), col('kind')];
  // A byte-identical pair is a match whatever the score; it scores 1 under either decision.
  return records.filter((r) => r[s] !== '' || r[kind] === 'exact')
    .map((r) => ({ upstream: basename(r[u]), downstream: basename(r[d]), score: r[s] === '' ? 1 : Number(r[s]) }));
}

/** Per family, the share of copies whose original is among their candidates at all. */
export function retrievalCeiling(rows: CandidateRow[], suite: Suite, floor: number, k: number): RetrievalCeiling {
  const found = new Set(rows.map((r) => `${r.upstream}\0${r.downstream}`));
  const byFamily = new Map<string, { family: string; copies: number; retrieved: number; ceiling: number }>();
  for (const [upstream, copy] of suite.truth) {
    const f = byFamily.get(copy.family) ?? { family: copy.family, copies: 0, retrieved: 0, ceiling: 0 };
    f.copies++;
    if (found.has(`${upstream}\0${copy.downstream}`)) f.retrieved++;
    byFamily.set(copy.family, f);
  }
  const families = [...byFamily.values()].map((f) => ({ ...f, ceiling: f.retrieved / f.copies }));
  const copies = families.reduce((a, f) => a + f.copies, 0);
  return { floor, k, families, all: copies === 0 ? 0 : families.reduce((a, f) => a + f.retrieved, 0) / copies };
}

/** Wrong top-1 decisions at a point, per 1e9 (upstream × downstream) pairs. */
const falsePer1e9 = (point: OperatingPoint, pairs: number): number => (pairs === 0 ? 0 : ((point.predicted - point.correct) / pairs) * 1e9);

/** dHash of every suite image, then the brute-force best match per upstream image. */
async function dhashCandidates(suite: Suite, concurrency: number | undefined): Promise<CandidateRow[]> {
  const limit = pLimit(concurrency ?? 4);
  const hashAll = async (dir: string, names: string[]): Promise<Map<string, bigint>> => {
    const hashes = await Promise.all(names.map((n) => limit(() => readFile(join(dir, n)).then(dhash))));
    return new Map(names.map((n, i) => [n, hashes[i]]));
  };
  const downNames = [...new Set([...suite.truth.values()].map((t) => t.downstream))];
  const upNames = [...suite.truth.keys(), ...suite.distractors];
  return dhashRows(await hashAll(suite.upstreamDir, upNames), await hashAll(suite.downstreamDir, downNames));
}

/** Where the default threshold came from: `--threshold`, the model card, or neardup's fallback for uncalibrated cards. */
export type ThresholdSource = 'option' | 'card' | 'fallback';

function modelThreshold(o: EvalOptions): { model: ReturnType<typeof loadModel>; threshold: number; source: ThresholdSource } {
  checkThreshold(o.threshold);
  const model = loadModel(o.model ?? defaultModelDir(o.runtime));
  if (o.threshold !== undefined) return { model, threshold: o.threshold, source: 'option' };
  if (model.card.threshold !== undefined) return { model, threshold: model.card.threshold, source: 'card' };
  return { model, threshold: FALLBACK_THRESHOLD, source: 'fallback' };
}

const modelInfo = (m: ReturnType<typeof loadModel>) => ({ id: m.id, name: m.card.name, dir: m.dir });
const today = (): string => new Date().toISOString().slice(0, 10);

/**
 * Builds the suite from `folder`, runs the real audit on it and scores the model against the
 * planted copies, beside the dHash baseline: per-family recall at the default threshold,
 * precision, false-match rate per distractor, thresholds for precision 0.9/0.99/0.999 and
 * throughput. The library prints nothing; progress goes to `o.progress`.
 *
 * @throws ConfigError for a bad folder or option; ModelError for a missing or corrupt model.
 */
export async function evaluate(folder: string, o: EvalOptions = {}): Promise<EvalReport> {
  const { model, threshold, source } = modelThreshold(o);
  return withSuiteRun(folder, o, threshold, async (r) => {
    const metrics = methodMetrics(r.rows, r.suite, threshold);
    const pairs = r.info.upstreamImages * r.info.originals;
    const verifyThreshold = o.verifyThreshold ?? model.card.verify?.threshold ?? VERIFY_FALLBACK.threshold;
    const verifiedBase = (o.verify ?? 'on') === 'on' ? methodMetrics(r.verifiedRows, r.suite, verifyThreshold) : null;
    const proposedVerified = verifiedBase && verifiedThreshold(verifiedBase);
    const verified = verifiedBase && {
      ...verifiedBase, falsePer1e9Pairs: falsePer1e9(verifiedBase.atDefault, pairs), verifier: VERIFIER_ID,
      proposed: proposedVerified === null ? null : operatingPoint(r.verifiedRows, r.suite, proposedVerified),
    };
    const p99 = metrics.targets.find((t) => t.target === CARD_TARGET)!.threshold;
    const p = o.progress ?? SILENT;
    p.start('dHash baseline', undefined);
    const dhashMetrics = methodMetrics(await dhashCandidates(r.suite, o.concurrency), r.suite, dhashScore(EVAL_DEFAULTS.dhashBits));
    p.done();
    return {
      suite: r.info, model: modelInfo(model), targets: metrics.targets,
      command: commandLine('eval', folder, r.info, o), date: today(),
      metrics, thresholdSource: source, proposed: p99 === null ? null : operatingPoint(r.rows, r.suite, ceil3(p99)), dhash: dhashMetrics,
      cosineFalsePer1e9Pairs: falsePer1e9(metrics.atDefault, pairs), verified, pairs,
      retrieval: retrievalCeiling(r.rows, r.suite, r.floor, r.k),
      estimates: r.estimates,
      throughput: {
        upstreamImages: r.info.upstreamImages, auditSeconds: round(r.auditSeconds, 3),
        imagesPerSecond: round(r.info.upstreamImages / r.auditSeconds, 1), embedUpstreamSeconds: r.embedUpstreamSeconds,
      },
    };
  });
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * The same suite and audit as {@link evaluate}, without the baseline: the thresholds at which
 * the model's top-1 precision reaches 0.9, 0.99 and 0.999, with the recall at each.
 */
export async function calibrate(folder: string, o: EvalOptions = {}): Promise<CalibrationReport> {
  const { model, threshold } = modelThreshold(o);
  return withSuiteRun(folder, o, threshold, async (r) => ({
    suite: r.info, model: modelInfo(model),
    targets: PRECISION_TARGETS.map((p) => precisionTarget(r.rows, r.suite, p)),
    command: commandLine('calibrate', folder, r.info, o), date: today(),
  }));
}

const thresholdsOf = (targets: PrecisionTarget[]) =>
  Object.fromEntries(targets.map((t) => [String(t.target), t.threshold === null ? null : { threshold: t.threshold, recall: t.point!.recall }]));

const familyTable = (report: EvalReport, point: OperatingPoint) => point.families.map((f) => ({
  family: f.family, copies: f.copies, recall: f.recall,
  dhash: report.dhash.targets.find((t) => t.target === CARD_TARGET)?.point?.families.find((d) => d.family === f.family)?.recall ?? 0,
}));

/**
 * Stores an {@link EvalReport} in `<modelDir>/card.json`, atomically (temp file, fsync, rename):
 * `threshold` becomes the P>=0.99 threshold rounded up to 3 decimals, `calibration` the suite and
 * the thresholds per precision target, `quality` the per-family recall at that threshold beside
 * dHash at its own P>=0.99 threshold, the overall precision, the best recall at P>=0.99 for both,
 * the command that reproduces it and the date.
 *
 * @returns the threshold written.
 * @throws ConfigError when the report was made with other weights than the card's; NeardupError
 *   (`E_UNCALIBRATED`) when precision 0.99 is out of reach, since no threshold could back the claim.
 */
export async function writeCard(modelDir: string, report: EvalReport): Promise<number> {
  const model = loadModel(modelDir);
  if (model.id !== report.model.id) {
    throw new ConfigError(`The report was made with model ${report.model.id}, not ${model.id} in ${resolve(modelDir)}: evaluate this model before writing its card`, 'E_CONFIG');
  }
  if (report.proposed === null) {
    throw new NeardupError(`Precision 0.99 is not reached at any threshold on the suite, so ${model.card.name}'s card was left unchanged: train further, then evaluate again`, 'E_UNCALIBRATED');
  }
  const path = join(model.dir, 'card.json');
  const card = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  card.threshold = report.proposed.threshold;
  card.calibration = calibrationSection(report);
  card.quality = qualitySection(report, report.proposed);
  if (report.verified) card.verify = verifySection(report, report.verified);
  await writeJsonAtomic(path, card);
  return report.proposed.threshold;
}

/**
 * The verified threshold a card takes: where precision reaches 0.999 on the suite when that costs
 * at most a point of recall against precision 0.99 (the verified score separates copies from
 * look-alikes with a wide gap, so the stricter point is nearly free and keeps a margin for
 * larger runs), else the 0.99 point; rounded up to 3 decimals.
 */
export function verifiedThreshold(v: MethodMetrics): number | null {
  const p99 = v.targets.find((t) => t.target === CARD_TARGET);
  const p999 = v.targets.find((t) => t.target === 0.999);
  if (!p99?.point || p99.threshold === null) return null;
  const strict = p999?.point && p999.threshold !== null && p999.point.recall >= p99.point.recall - 0.01;
  return ceil3(strict ? p999!.threshold! : p99.threshold);
}

function verifySection(report: EvalReport, v: VerifiedMetrics): Record<string, unknown> {
  const at = v.proposed;
  if (at === null) throw new NeardupError('The verified decision does not reach precision 0.99 on the suite: the card was left unchanged', 'E_UNCALIBRATED');
  const threshold = at.threshold;
  const s = report.suite;
  return {
    threshold, floor: report.retrieval.floor, k: report.retrieval.k, verifier: v.verifier,
    suite: `${s.originals} originals from ${s.folder}, one copy per family (${s.families.length} families), ${s.distractors} distractors; top-1 precision over all upstream images`,
    precision: at.precision, recall: at.recall, falsePer1e9Pairs: report.pairs === 0 ? 0 : ((at.predicted - at.correct) / report.pairs) * 1e9,
    bestRecallAtP99: v.bestRecallAtP99,
    families: at.families.map((f) => ({
      family: f.family, copies: f.copies, candidates: report.retrieval.families.find((r) => r.family === f.family)?.ceiling ?? null, verified: f.recall,
      cosine: report.proposed?.families.find((c) => c.family === f.family)?.recall ?? null,
    })),
    command: report.command, date: report.date,
  };
}


function calibrationSection(report: EvalReport): Record<string, unknown> {
  const s = report.suite;
  return {
    suite: `recall@P99 suite: ${s.originals} originals from ${s.folder}, one copy per family (${s.families.join(', ')}), ${s.distractors} distractors; top-1 precision over all upstream images`,
    seed: s.seed, originals: s.originals, distractors: s.distractors,
    thresholds: thresholdsOf(report.targets),
  };
}

function qualitySection(report: EvalReport, at: OperatingPoint): Record<string, unknown> {
  const d99 = report.dhash.targets.find((t) => t.target === CARD_TARGET)!;
  return {
    threshold: at.threshold,
    families: familyTable(report, at),
    precision: at.precision, recall: at.recall, falseMatchRate: at.falseMatchRate,
    bestRecallAtP99: report.metrics.bestRecallAtP99,
    dhash: {
      score: '1 - hamming/64, no dihedral views', thresholdAtP99: d99.threshold,
      precision: d99.point?.precision ?? null, recall: d99.point?.recall ?? 0, bestRecallAtP99: report.dhash.bestRecallAtP99,
    },
    command: report.command, date: report.date,
  };
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
