import { Catalog, type SourceRole } from '../state/catalog.js';
import { listSource, parseSource } from '../sources/list.js';
import { loadModel, type LoadedModel } from '../embed/model-card.js';
import { createRuntime } from '../embed/backend/index.js';
import type { EmbedRuntime } from '../embed/runtime.js';
import type { ResolvedOptions, Shard } from '../config/options.js';
import type { Progress } from '../util/progress-types.js';
import { createHash } from 'node:crypto';
import { ConfigError, StateError } from '../errors.js';
import { VERSION } from '../version.js';
import type { DecisionRule } from '../verify/run.js';

/** Verification defaults for a model card without a calibrated `verify` section. */
export const VERIFY_FALLBACK = Object.freeze({ threshold: 0.6, floor: 0.5, k: 5 });
/** Candidates per upstream image with `--verify off` (they cost nothing there but a row each). */
const COSINE_K = 10;

/** Used when a model card carries no calibrated threshold (an uncalibrated custom model). */
export const FALLBACK_THRESHOLD = 0.8;
/**
 * Candidates this far below the threshold are still recorded, for candidates.csv and the
 * histogram: the near misses a reviewer inspects. (At 0.15, a clean 10k-image upstream against a
 * 10k-image test set recorded ~5 candidates per upstream image: noise growing with the corpus.)
 */
export const FLOOR_MARGIN = 0.05;

/** What every stage command works in: the opened catalog, the model and the resolved sides. */
export interface Session {
  options: ResolvedOptions;
  catalog: Catalog;
  model: LoadedModel;
  /** Threshold of the deciding score (rule.threshold). */
  threshold: number;
  /** Cosine floor of the candidates. */
  floor: number;
  /** Candidates per upstream image. */
  k: number;
  rule: DecisionRule;
  indexPath: string;
  runtime(): Promise<EmbedRuntime>;
  close(): Promise<void>;
}

/** Where a catalog's HNSW index for a model is saved. */
export const indexPathFor = (db: string, modelName: string) => `${db}.${modelName}.hnsw`;

export function openSession(options: ResolvedOptions): Session {
  const model = loadModel(options.model);
  const catalog = Catalog.open(options.db, { waitMs: options.waitMs, leaseHeld: options.leaseHeld });
  const { threshold, floor, k } = decisionDefaults(options, model);
  let runtime: Promise<EmbedRuntime> | undefined;
  return {
    options, catalog, model, threshold, floor, k, rule: { verify: options.verify, threshold },
    indexPath: indexPathFor(options.db, model.card.name),
    runtime: () => (runtime ??= createRuntime(options.runtime, model, { threads: options.threads })),
    async close() {
      if (runtime) await (await runtime.catch(() => undefined))?.dispose();
      catalog.close();
    },
  };
}

/**
 * The threshold, the candidates' floor and k, from the options or the model card. With
 * verification the threshold is on the verified score; with `--verify off` it is a cosine. The
 * floor and k (which candidates exist) are the card's in both modes, so that switching the mode
 * only re-decides stored candidates; a card without a verify section keeps the cosine defaults.
 */
export function decisionDefaults(options: Pick<ResolvedOptions, 'threshold' | 'floor' | 'verify' | 'k'>, model: LoadedModel): { threshold: number; floor: number; k: number } {
  const card = model.card.verify;
  const cosineThreshold = model.card.threshold ?? FALLBACK_THRESHOLD;
  const threshold = options.threshold ?? (options.verify ? card?.threshold ?? VERIFY_FALLBACK.threshold : cosineThreshold);
  const floor = options.floor ?? card?.floor ?? (options.verify ? VERIFY_FALLBACK.floor : Math.max(-1, threshold - FLOOR_MARGIN));
  const k = options.k ?? card?.k ?? (options.verify ? VERIFY_FALLBACK.k : COSINE_K);
  return { threshold, floor, k };
}

/** List every source of one role into the catalog (new files pending, changed files re-decoded). */
export async function listSources(catalog: Catalog, role: SourceRole, specs: string[], followLinks: boolean, progress: Progress, shard?: Shard): Promise<number[]> {
  const ids: number[] = [];
  const mine = shard ? (key: string) => shardOf(key, shard.count) === shard.index : () => true;
  for (const spec of specs) {
    const parsed = parseSource(spec, role === 'dataset' ? 'source' : `--${role}`);
    const id = catalog.upsertSource(role, spec, parsed.root);
    progress.start(`list ${role}`, undefined);
    const listing = catalog.beginListing(id);
    for await (const page of listSource(parsed, { followLinks })) {
      catalog.recordListed(id, page.files.filter((f) => mine(f.key)), listing);
      catalog.recordListingErrors(id, page.errors.filter((f) => mine(f.key)), listing);
      progress.tick(page.files.length + page.errors.length);
    }
    catalog.finishListing(id, listing);
    progress.done();
    ids.push(id);
  }
  return ids;
}

/** The shard of a key: stable across machines and runs, independent of listing order. */
export function shardOf(key: string, count: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % count;
}

/** A catalog belongs to one shard (or none): mixing them would mark the other shards' files vanished. */
export function checkShard(catalog: Catalog, shard: Shard | undefined): void {
  const want = shard ? `${shard.index}/${shard.count}` : 'none';
  const row = catalog.db.prepare("SELECT value FROM meta WHERE key = 'shard'").get() as { value: string } | undefined;
  if (row && row.value !== want) {
    throw new StateError(`Catalog ${catalog.path} holds upstream shard ${row.value}, this run asks for ${want}: give each shard its own --db/--out`, 'E_SHARD');
  }
  if (!row) catalog.db.prepare("INSERT INTO meta(key, value) VALUES ('shard', ?)").run(want);
}

/** Source ids of a role: those named, or every source of that role already in the catalog. */
export function sourceIdsFor(catalog: Catalog, role: SourceRole, specs: string[]): number[] {
  if (specs.length > 0) {
    return specs.map((spec) => {
      const row = catalog.sources().find((s) => s.role === role && s.spec === spec);
      if (!row) throw new ConfigError(`--${role} ${JSON.stringify(spec)} is not in catalog ${catalog.path}: run \`neardup scan\` (or audit) with it first`, 'E_CONFIG');
      return row.id;
    });
  }
  const ids = catalog.sources().filter((s) => s.role === role).map((s) => s.id);
  if (ids.length === 0) throw new ConfigError(`Catalog ${catalog.path} has no ${role} source: pass --${role} <folder> to \`neardup scan\` first`, 'E_CONFIG');
  return ids;
}

export function versions(runtimeName: string): Record<string, string> {
  return { neardup: VERSION, node: process.versions.node, runtime: runtimeName };
}
