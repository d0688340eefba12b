import { createHash, type Hash } from 'node:crypto';
import type { SourceFingerprint } from './types.js';

/**
 * Fingerprints of the data a certificate speaks for. A source's fingerprint is two SHA-256
 * digests: one over its usable images, one over the keys of the images that could not be used
 * (so a file that turns unreadable changes both), each over lines sorted by key in UTF-8 byte
 * order (as util/order.ts byPath and SQLite's BINARY collation compare):
 *
 *   ok images:    JSON.stringify(key) TAB sha1-of-the-bytes LF   (the scan's content hash)
 *   error images: JSON.stringify(key) LF
 *
 * Keys are relative to the source root, so moving the data elsewhere keeps the fingerprint; the
 * JSON quoting keeps a key holding a tab or newline from forging another line.
 */

/** Error keys written out in the certificate at most (the check reads them when no catalog is at hand). */
export const MAX_LISTED_ERROR_KEYS = 1000;

export const okLine = (key: string, hash: string): string => `${JSON.stringify(key)}\t${hash}\n`;
export const errorLine = (key: string): string => `${JSON.stringify(key)}\n`;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A SHA-256 over lines fed in order, with their count. */
class LineDigest {
  private readonly hash: Hash = createHash('sha256');
  count = 0;
  add(line: string): void {
    this.hash.update(line);
    this.count++;
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

/** One source's fingerprint from its ok pairs and error keys, both already in key order. */
export function sourceFingerprint(ok: Iterable<{ key: string; hash: string }>, errors: Iterable<string>): SourceFingerprint {
  const okDigest = new LineDigest();
  for (const o of ok) okDigest.add(okLine(o.key, o.hash));
  const errDigest = new LineDigest();
  const keys: string[] = [];
  for (const key of errors) {
    errDigest.add(errorLine(key));
    if (keys.length < MAX_LISTED_ERROR_KEYS) keys.push(key);
  }
  const okPart = { images: okDigest.count, sha256: okDigest.hex() };
  const errPart = { images: errDigest.count, sha256: errDigest.hex(), keys, keysOmitted: errDigest.count - keys.length };
  return { sha256: combine([`ok ${okPart.images} ${okPart.sha256}`, `errors ${errPart.images} ${errPart.sha256}`]), ok: okPart, errors: errPart };
}

/** The same fingerprint from entries in any order (what the check lists from the files). */
export function fingerprintOf(entries: Iterable<{ key: string; status: 'ok' | 'error'; hash?: string | null }>): SourceFingerprint {
  // Each key encoded once: byPath would encode both keys on every comparison of the sort.
  const ok: { key: string; hash: string; utf8: Buffer }[] = [];
  const errors: { key: string; utf8: Buffer }[] = [];
  for (const e of entries) {
    if (e.status === 'ok') ok.push({ key: e.key, hash: e.hash!, utf8: Buffer.from(e.key, 'utf8') });
    else errors.push({ key: e.key, utf8: Buffer.from(e.key, 'utf8') });
  }
  ok.sort((a, b) => Buffer.compare(a.utf8, b.utf8) || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  errors.sort((a, b) => Buffer.compare(a.utf8, b.utf8));
  return sourceFingerprint(ok, errors.map((e) => e.key));
}

/** A digest over parts in the given order: a source from its two halves, a side from its sources. */
export function combine(parts: readonly string[]): string {
  return sha256(parts.map((p) => `${p}\n`).join(''));
}

/** The first characters of a digest, as the printed certificate shows it. */
export const abbreviate = (sha: string | null | undefined, n = 12): string => (sha ? sha.slice(0, n) : '—');
