/**
 * certificate.json: what an audit found, about which data, decided how. Every field a reader
 * needs to check a claim ("3.1% of CIFAR-10 test appears in this corpus") is here: the counts,
 * the decision rule and model that made them, and fingerprints of both sides' data that
 * `neardup certificate --check` recomputes from the files.
 */

/** Bumped when a field changes meaning; readers refuse formats they do not know. */
export const CERTIFICATE_FORMAT = 'neardup-certificate/1';

/** A source's data, see fingerprint.ts for how each digest is made. */
export interface SourceFingerprint {
  /** SHA-256 over the two parts below: changes when any image is added, removed, changed or turns unusable. */
  sha256: string;
  /** Usable images: how many, and the SHA-256 over their sorted (key, content hash) lines. */
  ok: { images: number; sha256: string };
  /**
   * Images that could not be used (unreadable, undecodable, refused at listing): how many, the
   * SHA-256 over their sorted keys, and the first keys themselves (keysOmitted: the rest).
   */
  errors: { images: number; sha256: string; keys: string[]; keysOmitted: number };
}

/** One source of a side, with its counts and fingerprint. */
export interface CertificateSource {
  /** The source as given on the command line (relative paths resolve against `cwd` of the certificate). */
  source: string;
  root: string;
  /** Catalogued images (ok + errors + pending), as summary.json's sources count them. */
  images: number;
  ok: number;
  errors: number;
  /** Not decoded yet: the certificate is incomplete while any is (see Certificate.complete). */
  pending: number;
  /** Catalogued once, gone at the last listing: counted in errors, left out of the fingerprint. */
  vanished: number;
  /** Upstream shard ("i/N") the fingerprint covers, null for the whole source. */
  shard: string | null;
  /** Null only in a merged certificate, where `shards` holds one fingerprint per shard. */
  fingerprint: SourceFingerprint | null;
  shards?: { shard: string; fingerprint: SourceFingerprint }[];
}

/** Contaminated downstream images: those with at least one upstream copy the run removes. */
export interface Contamination {
  images: number;
  /** Decided by a reviewer (at least one of the image's matching pairs accepted by a human). */
  byHuman: number;
  /** Decided by the model alone (every matching pair the threshold's). */
  byModel: number;
  /** With at least one byte-identical upstream copy (no judgement involved). */
  byteIdentical: number;
}

/** A downstream (test) set: how much of it the upstream side contains. */
export interface DownstreamSet extends CertificateSource {
  contaminated: Contamination;
  /** contaminated.images / ok: the share of the set's usable images found in the upstream side. */
  share: number;
  /**
   * The share with the run's precision estimate applied: share × the estimate's 95% precision
   * interval (false matches taken out). Null when the run has no estimate. Copies the search
   * missed are not counted either way: the share is a lower bound on recall's side.
   */
  shareInterval: [number, number] | null;
}

/** The run's precision estimate, as summary.json's `estimate` gives it. */
export interface CertificateEstimate {
  precision: number | null;
  falseMatches: number;
  /** 95% interval of the precision. */
  interval: [number, number] | null;
  method: string;
}

export interface Certificate {
  format: typeof CERTIFICATE_FORMAT;
  createdAt: string;
  /** The command whose outputs these are (its catalog run id and options), `merge` for merged shards. */
  command: { name: string; run: number | null; startedAt: string | null; options: Record<string, unknown> };
  /** Directory the sources' relative paths resolve against. */
  cwd: string;
  neardup: string;
  model: { id: string; name: string; sha256: string };
  /** The decision rule: what the threshold applies to, the candidates' floor and k, the verifier. */
  decision: { decidedBy: 'verified' | 'cosine'; threshold: number; floor: number; k: number; verifier: string | null; rule: string };
  estimate: CertificateEstimate | null;
  /** Why estimate is null, or how its interval is applied. */
  estimateNote: string;
  /** No image was still pending: every listed image was decided. */
  complete: boolean;
  /** How the sources were listed; the check lists them the same way. */
  listing: { followLinks: boolean };
  downstream: { images: number; ok: number; errors: number; contaminated: Contamination; sets: DownstreamSet[]; fingerprint: string };
  upstream: {
    images: number; ok: number; errors: number;
    /** Upstream images the run removes (removed.csv), and whose removal a reviewer decided. */
    removed: number; removedByHuman: number; removedByModel: number;
    sources: CertificateSource[];
    fingerprint: string;
  };
  /** Where the run's catalog was (the check names differing keys from it when it is still there). */
  catalog: string | null;
}
