import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { ConfigError, StateError } from '../errors.js';
import type { Catalog } from '../state/catalog.js';

/**
 * A prepared downstream side: `neardup prepare` lists and embeds the test set once (32 views: 8 dihedral, 19 crops (one in grayscale), 4 rotations, grayscale) and
 * builds its HNSW index; every shard of a large upstream run then copies those rows into its own
 * catalog instead of embedding the test set again, and loads the shared index read-only.
 * Image ids are kept, so the saved index's labels (id × views + view) stay valid in every shard.
 */

/**
 * Meta key a prepared catalog carries once its downstream side is complete: "<model id> <index
 * fingerprint>". Preparing unchanged data again gives the same stamp, so shards that imported it
 * keep resuming; a changed downstream side gives a new one, which they refuse.
 */
export const PREPARED = 'prepared_downstream';
const IMPORTED = 'downstream_from';

/** Mark a catalog whose downstream side is fully embedded and indexed for this model. */
export function markPrepared(catalog: Catalog, modelId: string, indexFingerprint: string): string {
  const stamp = `${modelId} ${indexFingerprint}`;
  catalog.setMeta(PREPARED, stamp);
  return stamp;
}

/** Copy the downstream side of a prepared catalog into this one (idempotent; resumable). */
export function importDownstream(catalog: Catalog, from: string, modelId: string): void {
  if (!existsSync(from)) throw new ConfigError(`--downstream-db ${JSON.stringify(from)} does not exist: run \`neardup prepare --downstream <source> --db ${from}\` first`, 'E_CONFIG');
  const source = new Database(from, { readonly: true, fileMustExist: true });
  try {
    const stamp = (source.prepare('SELECT value FROM meta WHERE key = ?').get(PREPARED) as { value: string } | undefined)?.value;
    if (!stamp) throw new ConfigError(`${from} is not a prepared downstream catalog (or its \`neardup prepare\` has not finished): run neardup prepare --db ${from}`, 'E_CONFIG');
    if (!stamp.startsWith(`${modelId} `)) throw new ConfigError(`${from} was prepared with model ${stamp.split(' ')[0]}, this run uses ${modelId}: prepare it again with --model`, 'E_CONFIG');
    const origin = `${from} ${stamp}`;
    const done = catalog.getMeta(IMPORTED);
    if (done === origin) return;
    if (done !== undefined) throw new StateError(`Catalog ${catalog.path} holds the downstream side of ${done}, not of ${origin}: give this run a fresh --db`, 'E_DOWNSTREAM');
    const images = (catalog.db.prepare('SELECT COUNT(*) AS n FROM images').get() as { n: number }).n;
    if (images > 0) throw new StateError(`Catalog ${catalog.path} already holds images of its own; --downstream-db needs a fresh --db`, 'E_DOWNSTREAM');
    copyDownstream(source, catalog, modelId);
    catalog.setMeta(IMPORTED, origin);
  } finally {
    source.close();
  }
}

function copyDownstream(source: Database.Database, catalog: Catalog, modelId: string): void {
  const sources = source.prepare("SELECT id, role, spec, root, listing FROM sources WHERE role = 'downstream' ORDER BY id").all() as Record<string, unknown>[];
  // One prepared INSERT per table, built from the columns the source catalog has.
  const inserters = new Map<string, Database.Statement>();
  const insert = (table: string, row: Record<string, unknown>) => {
    const cols = Object.keys(row);
    let stmt = inserters.get(table);
    if (!stmt) {
      stmt = catalog.db.prepare(`INSERT INTO ${table} (${cols.join(',')}) VALUES (${cols.map((c) => `@${c}`).join(',')})`);
      inserters.set(table, stmt);
    }
    stmt.run(row);
  };
  catalog.db.transaction(() => {
    for (const row of sources) insert('sources', row);
    const ids = sources.map((r) => r.id as number);
    if (ids.length === 0) return;
    const inSources = `source_id IN (${ids.map(() => '?').join(',')})`;
    for (const row of source.prepare(`SELECT * FROM images WHERE ${inSources} ORDER BY id`).iterate(...ids)) insert('images', row as Record<string, unknown>);
    const embeddings = source.prepare(`SELECT e.* FROM embeddings e WHERE e.model_id = ? AND e.hash IN (SELECT hash FROM images WHERE ${inSources} AND status = 'ok')`);
    const put = catalog.db.prepare('INSERT OR IGNORE INTO embeddings (hash, model_id, views, vectors) VALUES (?, ?, ?, ?)');
    for (const e of embeddings.iterate(modelId, ...ids)) {
      const r = e as { hash: string; model_id: string; views: number; vectors: Buffer };
      put.run(r.hash, r.model_id, r.views, r.vectors);
    }
    // The verify stage's planes, when the prepared catalog has them (else they are made on first use).
    if (source.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'planes'").get()) {
      const planes = source.prepare(`SELECT p.* FROM planes p WHERE p.hash IN (SELECT hash FROM images WHERE ${inSources} AND status = 'ok')`);
      const putPlane = catalog.db.prepare('INSERT OR IGNORE INTO planes (hash, size, luma) VALUES (?, ?, ?)');
      for (const row of planes.iterate(...ids)) {
        const r = row as { hash: string; size: number; luma: Buffer };
        putPlane.run(r.hash, r.size, r.luma);
      }
    }
  }).immediate();
}
