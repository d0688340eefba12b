import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, invalidOption } from '../errors.js';
import { Catalog, type ListedFile, type SourceRole } from '../state/catalog.js';
import { errorKeys, keyRecords, okKeys, sourceBySpec } from '../state/certificate-queries.js';
import { listSource, parseSource } from '../sources/list.js';
import { decodeRead, readImage } from '../scan/decode.js';
import { shardOf } from '../audit/session.js';
import { byPath } from '../util/order.js';
import { combine, fingerprintOf, sourceFingerprint } from './fingerprint.js';
import { CERTIFICATE_FORMAT, type Certificate, type CertificateSource, type SourceFingerprint } from './types.js';

/**
 * `neardup certificate --check`: list the certificate's sources as they are now, hash every
 * file's bytes as the scan does, and compare the fingerprints. No model runs; a file is decoded
 * only when nothing recorded says whether it is usable (a new or changed file), so an unchanged
 * data set costs one read and one SHA-1 per file.
 */

export interface CheckOptions {
  /** Sources to read instead of the certificate's, in its order (data moved elsewhere). */
  upstream?: string[];
  downstream?: string[];
  /** Catalog naming the differing keys (default: the certificate's, when it is still there). */
  db?: string;
  /** Follow symlinks leaving a source folder (default: as the certified run listed). */
  followLinks?: boolean;
  /** Differing keys named per kind (default 10). */
  maxKeys?: number;
}

/** Keys that differ from the certified data, first ones of each kind in key order. */
export interface KeyDifferences {
  added: number; removed: number; changed: number;
  firstAdded: string[]; firstRemoved: string[]; firstChanged: string[];
}

type Counts = { sha256: string; ok: number; errors: number };

export interface SourceCheck {
  /** The source as the certificate names it, and the spec read for it now (`given`: by --upstream/--downstream). */
  source: string;
  checked: string;
  given: boolean;
  shard: string | null;
  same: boolean;
  expected: Counts;
  actual: Counts;
  /** Null when nothing recorded per key is at hand (see note): the check says only that it differs. */
  differences: KeyDifferences | null;
  note?: string;
}

export interface SideCheck { side: SourceRole; same: boolean; expected: string; actual: string; sources: SourceCheck[] }
export interface CertificateCheck { certificate: string; same: boolean; sides: SideCheck[] }

type Entry = { key: string; status: 'ok' | 'error'; hash: string | null };
type Recorded = Map<string, { status: 'ok' | 'error'; hash: string | null }>;

/** A certificate.json, refused when it is not one or is of a format this neardup does not read. */
export function readCertificate(file: string): Certificate {
  if (!existsSync(file)) throw new ConfigError(`No certificate at ${JSON.stringify(file)}: pass the certificate.json an audit wrote into its --out folder`, 'E_CONFIG');
  let parsed: Partial<Certificate>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<Certificate>;
  } catch (e) {
    throw new ConfigError(`${file} is not JSON: ${(e as Error).message}`, 'E_CONFIG', { cause: e });
  }
  if (parsed.format !== CERTIFICATE_FORMAT) throw invalidOption('certificate.format', JSON.stringify(CERTIFICATE_FORMAT), parsed.format);
  return parsed as Certificate;
}

export async function checkCertificate(file: string, options: CheckOptions = {}): Promise<CertificateCheck> {
  const cert = readCertificate(file);
  const catalog = openCatalog(options.db ?? cert.catalog ?? undefined);
  try {
    const ctx = { cert, catalog: catalog.catalog, catalogNote: catalog.note, followLinks: options.followLinks ?? cert.listing.followLinks, maxKeys: options.maxKeys ?? 10 };
    const sides: SideCheck[] = [];
    for (const side of ['downstream', 'upstream'] as const) {
      const entries: CertificateSource[] = side === 'downstream' ? cert.downstream.sets : cert.upstream.sources;
      const specs = overrides(side, entries, options[side], cert.cwd);
      const sources: SourceCheck[] = [];
      for (let i = 0; i < entries.length; i++) sources.push(...(await checkSource(side, entries[i]!, specs[i]!, ctx, (options[side]?.length ?? 0) > 0)));
      const expected = side === 'downstream' ? cert.downstream.fingerprint : cert.upstream.fingerprint;
      const actual = combine(sources.map((s) => s.actual.sha256));
      sides.push({ side, same: actual === expected && sources.every((s) => s.same), expected, actual, sources });
    }
    return { certificate: file, same: sides.every((s) => s.same), sides };
  } finally {
    catalog.catalog?.close();
  }
}

function openCatalog(path: string | undefined): { catalog?: Catalog; note?: string } {
  if (!path) return { note: 'the certificate names no catalog' };
  if (!existsSync(path)) return { note: `catalog ${path} is gone` };
  try {
    return { catalog: Catalog.open(path, { readonly: true }) };
  } catch (e) {
    return { note: `catalog ${path} cannot be read (${(e as Error).message})` };
  }
}

/** The specs to read: the ones given (one per certified source, in order) or the certificate's, resolved where it was made. */
function overrides(side: SourceRole, entries: CertificateSource[], given: string[] | undefined, cwd: string): string[] {
  if (!given || given.length === 0) return entries.map((e) => resolveSpec(e.source, cwd));
  if (given.length !== entries.length) {
    throw new ConfigError(`The certificate has ${entries.length} ${side} source(s) (${entries.map((e) => e.source).join(', ')}) but ${given.length} --${side} were given: give one per source, in that order`, 'E_CONFIG');
  }
  return given;
}

/** A spec's path made absolute against the folder the certified run started in (prefixes such as list: and tar: kept). */
export function resolveSpec(spec: string, cwd: string): string {
  const m = /^(list|glob|tar|cifar10|cifar100|parquet):(.*)$/s.exec(spec);
  const [prefix, path] = m ? [`${m[1]}:`, m[2]!] : ['', spec];
  return isAbsolute(path) ? spec : `${prefix}${resolve(cwd, path)}`;
}

interface Context { cert: Certificate; catalog?: Catalog; catalogNote?: string; followLinks: boolean; maxKeys: number }

/** One certified source against its data now: one result per fingerprint (one per shard in a merged certificate). */
async function checkSource(side: SourceRole, entry: CertificateSource, spec: string, ctx: Context, given: boolean): Promise<SourceCheck[]> {
  const targets = entry.shards ?? [{ shard: entry.shard ?? '', fingerprint: entry.fingerprint! }];
  const recorded = entry.shards ? { note: 'a merged certificate: each shard has its own catalog' } : recordedKeys(side, entry, ctx);
  const errorHint = entry.fingerprint && entry.fingerprint.errors.keysOmitted === 0 ? new Set(entry.fingerprint.errors.keys) : undefined;
  const inShard = (shard: string) => (shard ? shardFilter(shard) : () => true);
  const wanted = (key: string) => targets.some((t) => inShard(t.shard)(key));
  const current = await listNow(spec, ctx.followLinks, wanted, recorded.map, errorHint);
  return targets.map((t) => {
    const mine = [...current.values()].filter((e) => inShard(t.shard)(e.key));
    const actual = fingerprintOf(mine);
    const same = actual.sha256 === t.fingerprint.sha256;
    const differences = same || !recorded.map ? null : diff(new Map(mine.map((e) => [e.key, e])), recorded.map, ctx.maxKeys);
    const note = same || recorded.map ? undefined : `keys cannot be named: ${recorded.note}`;
    return { source: entry.source, checked: spec, given, shard: t.shard || null, same, expected: counts(t.fingerprint), actual: counts(actual), differences, ...(note ? { note } : {}) };
  });
}

const counts = (f: SourceFingerprint): Counts => ({ sha256: f.sha256, ok: f.ok.images, errors: f.errors.images });

function shardFilter(shard: string): (key: string) => boolean {
  const [i, n] = shard.split('/').map(Number) as [number, number];
  return (key) => shardOf(key, n) === i;
}

/** The catalog's per-key record of a source, used only while it still gives the certified fingerprint. */
function recordedKeys(side: SourceRole, entry: CertificateSource, ctx: Context): { map?: Recorded; note: string } {
  if (!ctx.catalog) return { note: ctx.catalogNote ?? 'no catalog' };
  const source = sourceBySpec(ctx.catalog, side, entry.source);
  if (!source) return { note: `catalog ${ctx.catalog.path} has no ${side} source ${entry.source}` };
  const now = sourceFingerprint(okKeys(ctx.catalog, source.id), errorKeys(ctx.catalog, source.id));
  if (now.sha256 !== entry.fingerprint?.sha256) return { note: `catalog ${ctx.catalog.path} has changed since the certificate was written (a later run)` };
  return { map: keyRecords(ctx.catalog, source.id), note: '' };
}

/** Every file of the source now, as the scan would record it: usable with its hash, or an error. */
async function listNow(spec: string, followLinks: boolean, wanted: (key: string) => boolean, recorded: Recorded | undefined, errorHint: Set<string> | undefined): Promise<Map<string, Entry>> {
  const found = new Map<string, Entry>();
  for await (const page of listSource(parseSource(spec, 'certificate source'), { followLinks })) {
    for (const e of page.errors) if (wanted(e.key)) found.set(e.key, { key: e.key, status: 'error', hash: null });
    for (const f of page.files) if (wanted(f.key)) found.set(f.key, await entryOf(f, recorded, errorHint));
  }
  return found;
}

/**
 * Bytes identical to a usable recorded image decode the same: no decode. Otherwise the file is
 * decoded when something says it may not be usable: it is new or changed, or (no catalog) the
 * certificate lists it as unusable, or the certificate's list of unusable files is cut short.
 */
async function entryOf(f: ListedFile, recorded: Recorded | undefined, errorHint: Set<string> | undefined): Promise<Entry> {
  const read = await readImage(f);
  if (!read.ok) return { key: f.key, status: 'error', hash: null };
  const before = recorded?.get(f.key);
  const decode = recorded ? !(before?.status === 'ok' && before.hash === read.hash) : !errorHint || errorHint.has(f.key);
  if (!decode) return { key: f.key, status: 'ok', hash: read.hash };
  const decoded = await decodeRead(read.bytes, read.hash, f.format, { size: 0 });
  return decoded.ok ? { key: f.key, status: 'ok', hash: read.hash } : { key: f.key, status: 'error', hash: null };
}

/** Added, removed and changed keys (content, or usable ↔ unusable) against the recorded ones. */
function diff(now: Map<string, Entry>, recorded: Recorded, maxKeys: number): KeyDifferences {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [key, e] of now) {
    const before = recorded.get(key);
    if (!before) added.push(key);
    else if (before.status !== e.status || before.hash !== e.hash) changed.push(key);
  }
  const removed = [...recorded.keys()].filter((k) => !now.has(k));
  const first = (keys: string[]) => keys.sort(byPath).slice(0, maxKeys);
  return { added: added.length, removed: removed.length, changed: changed.length, firstAdded: first(added), firstRemoved: first(removed), firstChanged: first(changed) };
}
