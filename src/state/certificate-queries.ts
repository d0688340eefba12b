import { VANISHED, type Catalog, type SourceRole, type SourceRow } from './catalog.js';

/**
 * Read-side views of the catalog for the contamination certificate (src/certificate/): each
 * source's images as (key, content hash) in key order, and the run that writes the certificate.
 * Keys are ordered by SQLite's BINARY collation (UTF-8 bytes), the order util/order.ts byPath
 * gives in JS, so a fingerprint streamed from SQL equals one sorted in memory.
 */

const PAGE = 5000;

/**
 * Usable images of a source as (key, hash), in key order, a page at a time: millions never sit in
 * memory. `+status` keeps SQLite on the (source_id, key) index: through the status index every
 * page would sort all of the source's rows again.
 */
export function* okKeys(catalog: Catalog, sourceId: number): Generator<{ key: string; hash: string }> {
  const stmt = catalog.db.prepare(`SELECT key, hash FROM images WHERE source_id = ? AND +status = 'ok' AND key > ? ORDER BY key LIMIT ${PAGE}`);
  for (let after = ''; ;) {
    const rows = stmt.all(sourceId, after) as { key: string; hash: string }[];
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1]!.key;
  }
}

/**
 * Keys of a source's images that could not be used, in key order. Files that vanished before
 * the run are left out: they were not part of the data it audited.
 */
export function* errorKeys(catalog: Catalog, sourceId: number): Generator<string> {
  const stmt = catalog.db.prepare(`SELECT key FROM images WHERE source_id = ? AND status = 'error' AND error IS NOT ? AND key > ? ORDER BY key LIMIT ${PAGE}`);
  for (let after = ''; ;) {
    const rows = stmt.all(sourceId, VANISHED, after) as { key: string }[];
    if (rows.length === 0) return;
    for (const r of rows) yield r.key;
    after = rows[rows.length - 1]!.key;
  }
}

/** Images catalogued once but gone from the source at its last listing. */
export function vanishedCount(catalog: Catalog, sourceId: number): number {
  return (catalog.db.prepare("SELECT COUNT(*) AS n FROM images WHERE source_id = ? AND status = 'error' AND error IS ?").get(sourceId, VANISHED) as { n: number }).n;
}

/** Every key of a source the certificate counts (ok or error, vanished files left out) with its hash. */
export function keyRecords(catalog: Catalog, sourceId: number): Map<string, { status: 'ok' | 'error'; hash: string | null }> {
  const rows = catalog.db.prepare("SELECT key, status, hash FROM images WHERE source_id = ? AND status IN ('ok', 'error') AND error IS NOT ?")
    .all(sourceId, VANISHED) as { key: string; status: 'ok' | 'error'; hash: string | null }[];
  return new Map(rows.map((r) => [r.key, { status: r.status, hash: r.status === 'ok' ? r.hash : null }]));
}

/** The source a spec names in a role, if the catalog has it. */
export function sourceBySpec(catalog: Catalog, role: SourceRole, spec: string): SourceRow | undefined {
  return catalog.sources().find((s) => s.role === role && s.spec === spec);
}

export interface RunRow { id: number; command: string; startedAt: string; config: Record<string, unknown> }

const runOf = (row: { id: number; command: string; started_at: string; config: string } | undefined): RunRow | undefined =>
  row && { id: row.id, command: row.command, startedAt: row.started_at, config: JSON.parse(row.config) as Record<string, unknown> };

/** The latest run recorded (while a command writes its outputs: that command's own run). */
export function latestRun(catalog: Catalog): RunRow | undefined {
  return runOf(catalog.db.prepare('SELECT id, command, started_at, config FROM runs ORDER BY id DESC LIMIT 1').get() as never);
}

/** The latest run that listed the sources (its listing options say how to list them again). */
export function latestListingRun(catalog: Catalog): RunRow | undefined {
  return runOf(catalog.db.prepare("SELECT id, command, started_at, config FROM runs WHERE command IN ('audit', 'scan', 'prepare') ORDER BY id DESC LIMIT 1").get() as never);
}

/** The upstream shard this catalog holds ("i/N"), or undefined for a whole upstream side. */
export function catalogShard(catalog: Catalog): string | undefined {
  const v = (catalog.db.prepare("SELECT value FROM meta WHERE key = 'shard'").get() as { value: string } | undefined)?.value;
  return v === undefined || v === 'none' ? undefined : v;
}
