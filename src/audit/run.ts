import { resolveOptions, type RawOptions, type ResolvedOptions } from '../config/options.js';
import { runDecodeOnly, runEmbed, type EmbedStageOptions } from '../embed/run.js';
import { DOWNSTREAM_VIEWS } from '../embed/views.js';
import { buildIndex, type DownstreamIndex } from '../ann/hnsw.js';
import { applyThreshold, MatchCursor, type MatchOptions, type MatchResult } from '../match/run.js';
import { createAligner } from '../verify/aligner.js';
import { ensurePlanes, PairVerifier, PlaneStore, VerifyThread } from '../verify/run.js';
import { writePurgePlan, type PurgeResult, type PurgeSelection } from '../purge/outputs.js';
import { buildSummary, writeReport, type ReportMeta, type Summary } from '../report/write.js';
import { writeCertificate } from '../certificate/build.js';
import { SILENT, type Progress } from '../util/progress-types.js';
import { VERSION } from '../version.js';
import { ConfigError, invalidOption } from '../errors.js';
import { applyPurge, undoPurge, PURGE_ACTIONS, type PurgeAction } from '../purge/apply.js';
import { applyDecisions, type DecisionsResult } from '../purge/decisions.js';
import { parseSource } from '../sources/list.js';
import { importDownstream, markPrepared } from './downstream.js';
import { checkShard, indexPathFor, listSources, openSession, sourceIdsFor, versions, type Session } from './session.js';

export interface RunHooks { progress?: Progress }

export interface AuditResult {
  summary: Summary;
  /** Upstream images decided to be near-duplicates of a downstream image. */
  matched: number;
  outDir: string;
}

type Timings = Record<string, number>;

async function timed<T>(timings: Timings, stage: string, fn: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[stage] = Math.round(performance.now() - t0) / 1000;
  }
}

/** Run fn inside a recorded run; the catalog is always closed (and its lock released). */
async function withSession<T>(command: string, options: ResolvedOptions, fn: (s: Session, timings: Timings) => Promise<T>): Promise<T> {
  const session = openSession(options);
  const timings: Timings = {};
  const runId = session.catalog.startRun(command, options, versions(options.runtime));
  try {
    const result = await fn(session, timings);
    session.catalog.finishRun(runId, 'finished', timings);
    return result;
  } catch (error) {
    if (session.catalog.db.open) session.catalog.finishRun(runId, 'failed', { ...timings, error: (error as Error).message });
    throw error;
  } finally {
    await session.close();
  }
}

async function embedSide(s: Session, sourceIds: number[], views: number, label: string, p: Progress, afterCommit?: (lastId: number) => void, planes?: EmbedStageOptions['planes']) {
  const runtime = await s.runtime();
  p.start(label, undefined);
  // The upstream side (one view) also embeds the picture found pasted into an image, if any.
  const insets = views === 1;
  const r = await runEmbed(s.catalog, s.model, runtime, { sourceIds, views, insets, batchSize: s.options.batchSize, concurrency: s.options.concurrency, afterCommit, planes }, p);
  p.done(`${r.decoded} decoded, ${r.failed} failed, ${r.embedded} embedded, ${r.reused} reused`);
  return r;
}

function indexFor(s: Session, downIds: number[], p: Progress): DownstreamIndex {
  const sharedPath = s.options.downstreamDb ? indexPathFor(s.options.downstreamDb, s.model.card.name) : undefined;
  return buildIndex(s.catalog, { sourceIds: downIds, modelId: s.model.id, views: DOWNSTREAM_VIEWS, dims: s.model.card.output.dims, path: s.indexPath, sharedPath }, p);
}

function matchCursor(s: Session, index: DownstreamIndex, upIds: number[], downIds: number[], verify?: MatchOptions['verify']): MatchCursor {
  return new MatchCursor(s.catalog, index, {
    modelId: s.model.id, upstreamSourceIds: upIds, downstreamSourceIds: downIds,
    rule: s.rule, floor: s.floor, k: s.k, pageSize: 512, verify,
  });
}

/**
 * The verify stage of a session, when on: every downstream image's plane stored (decoded again
 * only for catalogs made before the stage existed), a verifier, and the store the upstream
 * embed stage hands its planes to.
 */
async function verifyStage(s: Session, downIds: number[], p: Progress): Promise<MatchOptions['verify']> {
  if (!s.rule.verify) return undefined;
  const size = s.model.card.input.size;
  await ensurePlanes(s.catalog, downIds, size, s.options.concurrency, p);
  p.done();
  return { verifier: new PairVerifier(s.catalog, createAligner(), size), store: new PlaneStore(), size };
}

/** Pages matched ahead of their verification's commit, at most: bounds the memory of a slow verify thread. */
const VERIFYING_PAGES = 2;

async function finishMatch(cursor: MatchCursor, p: Progress, timings?: Timings, verify?: MatchOptions['verify'], thread?: VerifyThread): Promise<MatchResult> {
  p.start('match', undefined);
  const r = await cursor.finish(p);
  p.done(`${r.matches} matches among ${r.candidates} candidates${verify ? `, ${r.verified} verified` : ''}`);
  if (timings && verify) {
    // Verification runs inside matching (and embedding, which matching follows): its own share.
    timings.verify = Math.round(verify.verifier.stats.ms + (thread?.stats.ms ?? 0)) / 1000;
    timings.verifyPairs = verify.verifier.stats.pairs + (thread?.stats.pairs ?? 0);
    timings.verifyDecoded = verify.verifier.stats.decoded;
  }
  return r;
}

/** A reviewer's decisions (--decisions), recorded before any output is written; a bad file records nothing. */
const recordDecisions = (s: Session, sel: PurgeSelection): DecisionsResult | undefined =>
  s.options.decisions ? applyDecisions(s.catalog, s.options.decisions, sel.upstreamIds, sel.downstreamIds) : undefined;

async function outputs(s: Session, sel: PurgeSelection, timings: Timings, runtimeName: string): Promise<{ purge: PurgeResult; summary: Summary; decisions?: DecisionsResult }> {
  const decisions = recordDecisions(s, sel);
  applyThreshold(s.catalog, s.model.id, s.rule);
  const purge = await timed(timings, 'purge', () => writePurgePlan(s.catalog, sel, s.options.out));
  const summary = await timed(timings, 'report', () => writeReport(s.catalog, sel, purge, reportMeta(s, timings, runtimeName), s.options.out));
  return { purge, summary, decisions };
}

/**
 * The whole decontamination chain: list → decode+embed (downstream in 32 views: 8 dihedral, 19 crops (one in grayscale), 4 rotations, grayscale; upstream in 1)
 * → HNSW index → match → purge plan → report. Every stage resumes from the catalog.
 */
export async function audit(raw: RawOptions, hooks: RunHooks = {}): Promise<AuditResult> {
  const options = resolveOptions(raw, { out: true });
  requireSides(options);
  const p = hooks.progress ?? SILENT;
  return withSession('audit', options, async (s, timings) => {
    checkShard(s.catalog, options.shard);
    const upIds = await timed(timings, 'list', async () => {
      if (options.downstreamDb) importDownstream(s.catalog, options.downstreamDb, s.model.id);
      else await listSources(s.catalog, 'downstream', options.downstream, options.followLinks, p);
      return listSources(s.catalog, 'upstream', options.upstream, options.followLinks, p, options.shard);
    });
    const downIds = sourceIdsFor(s.catalog, 'downstream', options.downstream);
    await timed(timings, 'embedDownstream', () => embedSide(s, downIds, DOWNSTREAM_VIEWS, 'embed downstream', p, undefined, 'catalog'));
    const index = await timed(timings, 'index', () => indexFor(s, downIds, p));
    const verify = await timed(timings, 'planes', () => verifyStage(s, downIds, p));
    // Matching (and verifying) follows the upstream embedding page by page, on the main thread
    // while the model works on the next pages, with each upstream image's luma handed over from
    // its decode; what is left (a resumed run's backlog) finishes after it.
    // Alignment runs on its own thread, beside the main thread's retrieval and commits.
    const thread = verify ? new VerifyThread(s.catalog.path, verify.size) : undefined;
    try {
      const cursor = matchCursor(s, index, upIds, downIds, verify && { ...verify, thread });
      const follow = async (lastId: number) => {
        cursor.advance(lastId, 1);
        await cursor.settle(VERIFYING_PAGES);
      };
      await timed(timings, 'embedUpstream', () => embedSide(s, upIds, 1, 'embed upstream', p, follow, verify && ((planes) => verify.store.put(planes))));
      await timed(timings, 'match', () => finishMatch(cursor, p, timings, verify, thread));
    } finally {
      await thread?.close();
    }
    const { summary } = await outputs(s, { modelId: s.model.id, upstreamIds: upIds, downstreamIds: downIds }, timings, options.runtime);
    return { summary, matched: summary.counts.removed, outDir: options.out };
  });
}

/** Fail before touching the catalog when a side is missing or a source does not exist. */
function requireSides(options: ResolvedOptions, roles: readonly ('upstream' | 'downstream')[] = ['upstream', 'downstream']): void {
  if (options.downstreamDb && options.downstream.length > 0) throw new ConfigError('Pass either --downstream or --downstream-db (a catalog made by neardup prepare), not both', 'E_CONFIG');
  for (const role of roles) {
    if (role === 'downstream' && options.downstreamDb) continue;
    if (options[role].length === 0) throw new ConfigError(`Missing --${role} <source>: audit needs at least one ${role} folder, file list or glob`, 'E_CONFIG');
    for (const spec of options[role]) parseSource(spec, `--${role}`);
  }
}

export interface PrepareResult { images: number; embedded: number; failed: number; db: string; index: string }

/**
 * `neardup prepare`: the downstream side once, for many shards or queue workers: list, embed in
 * 32 views (8 dihedral, 19 crops (one in grayscale), 4 rotations, grayscale), build the HNSW index, and mark the catalog prepared. Runs resume like audit.
 */
export async function prepare(raw: RawOptions, hooks: RunHooks = {}): Promise<PrepareResult> {
  const options = resolveOptions(raw);
  if (options.downstreamDb) throw new ConfigError('prepare builds a downstream catalog: pass --downstream <source> and --db <file>, not --downstream-db', 'E_CONFIG');
  requireSides(options, ['downstream']);
  const p = hooks.progress ?? SILENT;
  return withSession('prepare', options, async (s, timings) => {
    const downIds = await timed(timings, 'list', () => listSources(s.catalog, 'downstream', options.downstream, options.followLinks, p));
    const r = await timed(timings, 'embedDownstream', () => embedSide(s, downIds, DOWNSTREAM_VIEWS, 'embed downstream', p, undefined, 'catalog'));
    const idx = await timed(timings, 'index', () => indexFor(s, downIds, p));
    markPrepared(s.catalog, s.model.id, idx.fingerprint);
    return { images: idx.ids.length, embedded: r.embedded, failed: r.failed, db: s.catalog.path, index: s.indexPath };
  });
}

/** Stage `scan`: list sources and decode every image (hash, size, errors); no model. */
export async function scan(raw: RawOptions, hooks: RunHooks = {}): Promise<{ decoded: number; failed: number }> {
  const options = resolveOptions(raw);
  const p = hooks.progress ?? SILENT;
  return withSession('scan', options, async (s) => {
    checkShard(s.catalog, options.shard);
    const ids = [
      ...(await listSources(s.catalog, 'downstream', options.downstream, options.followLinks, p)),
      ...(await listSources(s.catalog, 'upstream', options.upstream, options.followLinks, p, options.shard)),
    ];
    p.start('decode', undefined);
    const r = await runDecodeOnly(s.catalog, ids, options.concurrency, p);
    p.done(`${r.decoded} decoded, ${r.failed} failed`);
    return r;
  });
}

/** Stage `embed`: embed listed images of both sides that lack this model's embedding. */
export async function embed(raw: RawOptions, hooks: RunHooks = {}) {
  const options = resolveOptions(raw);
  const p = hooks.progress ?? SILENT;
  return withSession('embed', options, async (s) => ({
    downstream: await embedSide(s, sourceIdsFor(s.catalog, 'downstream', options.downstream), DOWNSTREAM_VIEWS, 'embed downstream', p, undefined, 'catalog'),
    upstream: await embedSide(s, sourceIdsFor(s.catalog, 'upstream', options.upstream), 1, 'embed upstream', p),
  }));
}

/** Stage `index`: build (or reuse) the HNSW index over the downstream views. */
export async function index(raw: RawOptions, hooks: RunHooks = {}) {
  const options = resolveOptions(raw);
  return withSession('index', options, async (s) => {
    const idx = indexFor(s, sourceIdsFor(s.catalog, 'downstream', options.downstream), hooks.progress ?? SILENT);
    return { images: idx.ids.length, vectors: idx.ids.length * idx.views, path: s.indexPath, reused: idx.loadedFromDisk };
  });
}

/**
 * Stage `match` (with `verify`): query every upstream embedding and verify the candidates (run
 * alone, upstream images are decoded again for it); re-running with only a new threshold
 * re-decides from the stored scores.
 */
export async function match(raw: RawOptions, hooks: RunHooks = {}): Promise<MatchResult> {
  const options = resolveOptions(raw);
  const p = hooks.progress ?? SILENT;
  return withSession('match', options, async (s, timings) => {
    const downIds = sourceIdsFor(s.catalog, 'downstream', options.downstream);
    const index = indexFor(s, downIds, p);
    const verify = await verifyStage(s, downIds, p);
    return finishMatch(matchCursor(s, index, sourceIdsFor(s.catalog, 'upstream', options.upstream), downIds, verify), p, timings, verify);
  });
}

/** Stages `purge` + `report`: write the keep list, removed list, CSVs, summary and HTML report. */
export async function report(raw: RawOptions): Promise<Summary> {
  const options = resolveOptions(raw, { out: true });
  return withSession('report', options, async (s, timings) => {
    const sel = { modelId: s.model.id, upstreamIds: sourceIdsFor(s.catalog, 'upstream', options.upstream), downstreamIds: sourceIdsFor(s.catalog, 'downstream', options.downstream) };
    return (await outputs(s, sel, timings, options.runtime)).summary;
  });
}

export interface PurgeOptions { apply?: string; to?: string; undo?: boolean }

/** What summary.json says about a session's run: version, model, decision rule. */
const reportMeta = (s: Session, timings: Timings, runtimeName: string): ReportMeta => ({
  version: VERSION,
  model: { id: s.model.id, name: s.model.card.name, sha256: s.model.card.sha256, runtime: runtimeName },
  threshold: s.threshold, floor: s.floor, k: s.k, verify: s.rule.verify, timings, catalog: s.catalog.path,
});

/** The plan, and the certificate of what it removes (its counts follow the threshold and decisions). */
async function planOnly(s: Session, sel: PurgeSelection, timings: Timings): Promise<PurgeResult> {
  applyThreshold(s.catalog, s.model.id, s.rule);
  const plan = await timed(timings, 'purge', () => writePurgePlan(s.catalog, sel, s.options.out));
  writeCertificate(s.catalog, sel, plan, buildSummary(s.catalog, sel, plan, reportMeta(s, timings, s.options.runtime)), s.options.out);
  return plan;
}

/** Stage `purge`: the plan, and with `apply` the journaled moves/deletions (or `undo` of moves). */
export async function purge(raw: RawOptions, o: PurgeOptions = {}) {
  const options = resolveOptions(raw, { out: true });
  if (o.apply !== undefined && !(PURGE_ACTIONS as readonly string[]).includes(o.apply)) throw invalidOption('apply', `one of ${PURGE_ACTIONS.join(', ')}`, o.apply);
  if (o.apply && o.undo) throw new ConfigError('Pass either --apply or --undo, not both', 'E_CONFIG');
  if (options.decisions && o.undo) throw new ConfigError('Pass either --decisions or --undo, not both', 'E_CONFIG');
  return withSession('purge', options, async (s, timings) => {
    const sel = { modelId: s.model.id, upstreamIds: sourceIdsFor(s.catalog, 'upstream', options.upstream), downstreamIds: sourceIdsFor(s.catalog, 'downstream', options.downstream) };
    if (o.undo) return { removed: 0, kept: 0, undone: undoPurge(s.catalog) };
    // With decisions every output is written again, so that matches.csv and the report show them too.
    const { purge: plan, decisions } = options.decisions
      ? await outputs(s, sel, timings, options.runtime)
      : { purge: await planOnly(s, sel, timings), decisions: undefined };
    const applied = o.apply ? applyPurge(s.catalog, plan.removedRows, o.apply as PurgeAction, o.to, sel.upstreamIds) : undefined;
    return { removed: plan.removed, kept: plan.kept, applied, decisions };
  });
}
