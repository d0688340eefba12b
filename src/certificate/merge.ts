import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { writeFileAtomic } from '../purge/outputs.js';
import { contamination, estimateOf, ruleOf, shares, sideFingerprint, type CertificateSummary } from './build.js';
import { CERTIFICATE_FORMAT, type Certificate, type CertificateSource, type DownstreamSet } from './types.js';

/** A merged match as merge.ts reads it from candidates.csv. */
export interface MergedMatch { downstream: string; decidedBy: 'human' | 'model'; kind: 'exact' | 'embedding' }

/** The merged certificate written into `out` (and returned); nothing when a shard has none. */
export function writeMergedCertificate(dirs: readonly string[], out: string, summary: CertificateSummary, matches: readonly MergedMatch[], setOf: (downstreamPath: string) => string): Certificate | undefined {
  const certificate = mergeCertificates(dirs, summary, matches, setOf);
  if (certificate) writeFileAtomic(join(out, 'certificate.json'), `${JSON.stringify(certificate, null, 2)}\n`);
  return certificate;
}

/**
 * The certificate of merged shard outputs (`neardup merge`): every shard saw the whole
 * downstream side, so its sets and fingerprints come from one shard (all must agree); the
 * contaminated images come from the merged matches; the upstream side is the shards' sum, each
 * source keeping one fingerprint per shard (a sorted digest cannot be summed). Undefined when
 * a shard has no certificate.json (written by a neardup before certificates).
 */
export function mergeCertificates(dirs: readonly string[], summary: CertificateSummary, matches: readonly MergedMatch[], setOf: (downstreamPath: string) => string): Certificate | undefined {
  const paths = dirs.map((d) => join(d, 'certificate.json'));
  if (!paths.every((p) => existsSync(p))) return undefined;
  const parts = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Certificate);
  const first = parts[0]!;
  for (const [i, c] of parts.entries()) {
    if (c.format !== CERTIFICATE_FORMAT) throw new ConfigError(`${paths[i]} is a ${String(c.format)} certificate; this neardup merges ${CERTIFICATE_FORMAT}`, 'E_CONFIG');
    if (c.downstream.fingerprint !== first.downstream.fingerprint) {
      throw new ConfigError(`Shards certify different downstream data (${paths[0]} and ${paths[i]}): their downstream side changed between runs; re-run them alike`, 'E_CONFIG');
    }
  }
  const estimate = estimateOf(summary.estimate);
  const sets = first.downstream.sets.map((s): DownstreamSet => {
    const contaminated = contamination(matches.filter((m) => setOf(m.downstream) === s.source).map(asPair));
    return { ...s, contaminated, ...shares(contaminated.images, s.ok, estimate) };
  });
  const sources = first.upstream.sources.map((s) => mergedSource(s.source, parts.map((p) => p.upstream.sources.find((x) => x.source === s.source))));
  const sum = (k: 'removed' | 'removedByHuman' | 'removedByModel' | 'images' | 'ok' | 'errors') => parts.reduce((a, p) => a + p.upstream[k], 0);
  return {
    ...first,
    createdAt: new Date().toISOString(),
    command: { name: 'merge', run: null, startedAt: null, options: { shards: [...dirs] } },
    ...ruleOf(summary),
    estimate,
    estimateNote: estimate ? first.estimateNote : 'no precision estimate in the merged summary: shares are given as decided, without an interval',
    complete: parts.every((p) => p.complete),
    downstream: { ...first.downstream, contaminated: contamination(matches.map(asPair)), sets },
    upstream: {
      images: sum('images'), ok: sum('ok'), errors: sum('errors'), removed: sum('removed'), removedByHuman: sum('removedByHuman'), removedByModel: sum('removedByModel'),
      sources, fingerprint: sideFingerprint(sources),
    },
    catalog: null,
  };
}

// Contamination counts distinct downstream images; in merged CSVs a path is the image's identity.
const asPair = (m: MergedMatch) => ({ downstreamId: m.downstream, decidedBy: m.decidedBy, kind: m.kind });

function mergedSource(spec: string, parts: (CertificateSource | undefined)[]): CertificateSource {
  const found = parts.filter((p): p is CertificateSource => p !== undefined);
  const sum = (k: 'images' | 'ok' | 'errors' | 'pending' | 'vanished') => found.reduce((a, p) => a + p[k], 0);
  const shards = found.flatMap((p) => p.shards ?? [{ shard: p.shard ?? '', fingerprint: p.fingerprint! }])
    .sort((a, b) => shardIndex(a.shard) - shardIndex(b.shard));
  return { source: spec, root: found[0]!.root, images: sum('images'), ok: sum('ok'), errors: sum('errors'), pending: sum('pending'), vanished: sum('vanished'), shard: null, fingerprint: null, shards };
}

const shardIndex = (shard: string): number => Number(shard.split('/')[0] ?? 0);
