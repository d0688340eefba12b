import { join } from 'node:path';
import type { Catalog } from '../state/catalog.js';
import { sourceCounts, type CandidateView, type SourceCounts } from '../state/queries.js';
import { catalogShard, errorKeys, latestListingRun, latestRun, okKeys, vanishedCount } from '../state/certificate-queries.js';
import { writeFileAtomic, type PurgeResult, type PurgeSelection } from '../purge/outputs.js';
import type { Summary } from '../report/write.js';
import { VERIFIER_ID } from '../verify/geometry.js';
import { combine, sourceFingerprint } from './fingerprint.js';
import { CERTIFICATE_FORMAT, type Certificate, type CertificateEstimate, type CertificateSource, type Contamination, type DownstreamSet } from './types.js';

/** What the certificate takes from summary.json: the run's model, rule and (optional) estimate. */
export type CertificateSummary = Pick<Summary, 'neardup' | 'model' | 'threshold' | 'floor' | 'k' | 'decidedBy'> & { estimate?: unknown };

/** A decided pair as the certificate counts it; a pair without `decidedBy` is the model's. */
export type CountedPair = Pick<CandidateView, 'upstreamId' | 'downstreamId' | 'downstreamSourceId' | 'decision' | 'kind'> & { decidedBy?: 'human' | 'model' };

/** Run options worth keeping with the claim (paths, thresholds, sides); the rest is plumbing. */
const KEPT_OPTIONS = ['upstream', 'downstream', 'downstreamDb', 'model', 'runtime', 'threshold', 'floor', 'k', 'verify', 'shard', 'followLinks'];

/** certificate.json next to summary.json; returns what was written. */
export function writeCertificate(catalog: Catalog, sel: PurgeSelection, purge: Pick<PurgeResult, 'candidates' | 'removedRows'>, summary: CertificateSummary, outDir: string): Certificate {
  const certificate = buildCertificate(catalog, sel, purge, summary);
  writeFileAtomic(join(outDir, 'certificate.json'), `${JSON.stringify(certificate, null, 2)}\n`);
  return certificate;
}

/** The certificate of a run from its catalog (counts, fingerprints, the run) and its decided pairs. */
export function buildCertificate(catalog: Catalog, sel: PurgeSelection, purge: { candidates: readonly CountedPair[]; removedRows: readonly CountedPair[] }, summary: CertificateSummary): Certificate {
  const run = latestRun(catalog);
  const shard = catalogShard(catalog) ?? null;
  const downCounts = sourceCounts(catalog, sel.downstreamIds);
  const downSources = downCounts.map((c) => sourceEntry(catalog, c, null));
  const upSources = sourceCounts(catalog, sel.upstreamIds).map((c) => sourceEntry(catalog, c, shard));
  const matches = purge.candidates.filter((c) => c.decision === 'match');
  const estimate = estimateOf(summary.estimate);
  const sets = downSources.map((s, i): DownstreamSet => {
    const contaminated = contamination(matches.filter((m) => m.downstreamSourceId === downCounts[i]!.source.id));
    return { ...s, contaminated, ...shares(contaminated.images, s.ok, estimate) };
  });
  const removedByHuman = purge.removedRows.filter((r) => r.decidedBy === 'human').length;
  return {
    format: CERTIFICATE_FORMAT,
    createdAt: new Date().toISOString(),
    command: { name: run?.command ?? 'unknown', run: run?.id ?? null, startedAt: run?.startedAt ?? null, options: keptOptions(run?.config) },
    cwd: process.cwd(),
    ...ruleOf(summary),
    estimate,
    estimateNote: estimateNote(estimate, summary.estimate),
    complete: [...downSources, ...upSources].every((s) => s.pending === 0),
    listing: { followLinks: latestListingRun(catalog)?.config.followLinks === true },
    downstream: { ...totals(downSources), contaminated: contamination(matches), sets, fingerprint: sideFingerprint(downSources) },
    upstream: {
      ...totals(upSources), removed: purge.removedRows.length, removedByHuman, removedByModel: purge.removedRows.length - removedByHuman,
      sources: upSources, fingerprint: sideFingerprint(upSources),
    },
    catalog: catalog.path,
  };
}

function sourceEntry(catalog: Catalog, c: SourceCounts, shard: string | null): CertificateSource {
  return {
    source: c.source.spec, root: c.source.root, images: c.images, ok: c.ok, errors: c.errors, pending: c.pending,
    vanished: vanishedCount(catalog, c.source.id), shard,
    fingerprint: sourceFingerprint(okKeys(catalog, c.source.id), errorKeys(catalog, c.source.id)),
  };
}

/** Model, version and decision rule, as summary.json reports them. */
export function ruleOf(summary: CertificateSummary): Pick<Certificate, 'neardup' | 'model' | 'decision'> {
  const verified = summary.decidedBy === 'verified';
  const by = verified ? `its verified alignment score (${VERIFIER_ID})` : 'its cosine';
  return {
    neardup: summary.neardup,
    model: { id: summary.model.id, name: summary.model.name, sha256: summary.model.sha256 },
    decision: {
      decidedBy: summary.decidedBy, threshold: summary.threshold, floor: summary.floor, k: summary.k, verifier: verified ? VERIFIER_ID : null,
      rule: `an upstream image is a copy of a downstream image when the pair is byte-identical, or is among the upstream image's ${summary.k} nearest downstream images at cosine ≥ ${summary.floor} and ${by} is ≥ ${summary.threshold}; a reviewer's accept or reject overrides the model`,
    },
  };
}

/** Contaminated downstream images among these decided matches, split by who decided. */
export function contamination(matches: readonly { downstreamId: number | string; decidedBy?: 'human' | 'model'; kind: 'exact' | 'embedding' }[]): Contamination {
  const byImage = new Map<number | string, { human: boolean; exact: boolean }>();
  for (const m of matches) {
    const seen = byImage.get(m.downstreamId) ?? { human: false, exact: false };
    byImage.set(m.downstreamId, { human: seen.human || m.decidedBy === 'human', exact: seen.exact || m.kind === 'exact' });
  }
  const images = byImage.size;
  const byHuman = [...byImage.values()].filter((x) => x.human).length;
  return { images, byHuman, byModel: images - byHuman, byteIdentical: [...byImage.values()].filter((x) => x.exact).length };
}

/** The share of usable images contaminated, and with the precision interval applied. */
export function shares(contaminated: number, ok: number, estimate: CertificateEstimate | null): Pick<DownstreamSet, 'share' | 'shareInterval'> {
  const share = ok > 0 ? contaminated / ok : 0;
  const interval = estimate?.interval;
  return { share, shareInterval: interval ? [share * interval[0], share * interval[1]] : null };
}

/** summary.json's estimate when it has the documented shape, else null (an absent or older summary). */
export function estimateOf(raw: unknown): CertificateEstimate | null {
  if (!raw || typeof raw !== 'object') return null;
  const e = raw as Record<string, unknown>;
  const interval = Array.isArray(e.interval) && e.interval.length === 2 && e.interval.every((x) => typeof x === 'number') ? e.interval as [number, number] : null;
  if (typeof e.falseMatches !== 'number' || typeof e.method !== 'string') return null;
  return { precision: typeof e.precision === 'number' ? e.precision : null, falseMatches: e.falseMatches, interval, method: e.method };
}

function estimateNote(estimate: CertificateEstimate | null, raw: unknown): string {
  if (estimate?.interval) return "shareInterval is the share times the estimate's 95% precision interval (the run's pair precision applied to its contaminated images); copies the search missed are not counted";
  if (estimate) return 'the estimate has no interval (no pair was decided a match): shares are given as decided';
  return raw === undefined
    ? 'no precision estimate in this run\'s summary: shares are given as decided, without an interval'
    : 'the run could not estimate its precision (decided by cosine, or verified before control alignments existed): shares are given as decided, without an interval';
}

function totals(sources: readonly CertificateSource[]): { images: number; ok: number; errors: number } {
  const sum = (k: 'images' | 'ok' | 'errors') => sources.reduce((a, s) => a + s[k], 0);
  return { images: sum('images'), ok: sum('ok'), errors: sum('errors') };
}

/** A side's digest over its sources' (or, merged, their shards') digests, in order. */
export function sideFingerprint(sources: readonly CertificateSource[]): string {
  return combine(sources.flatMap((s) => (s.fingerprint ? [s.fingerprint.sha256] : (s.shards ?? []).map((x) => x.fingerprint.sha256))));
}

function keptOptions(config: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!config) return {};
  const kept = Object.entries(config).filter(([k, v]) => KEPT_OPTIONS.includes(k) && v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0));
  return Object.fromEntries(kept);
}
