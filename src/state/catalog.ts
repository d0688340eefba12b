import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StateError } from '../errors.js';
import type { Box } from '../embed/views.js';
import { acquireLock, type CatalogLock } from './lock.js';
import { MIGRATIONS, SCHEMA_SQL, SCHEMA_VERSION } from './schema.js';

export type SourceRole = 'upstream' | 'downstream' | 'dataset';
export type ImageStatus = 'pending' | 'ok' | 'error';

export interface SourceRow { id: number; role: SourceRole; spec: string; root: string }
/** Where an archive member's bytes are and how to read them; see ImageRef in scan/decode. */
export type MemberFormat = 'bytes' | 'cifar' | 'parquet';
/** Source metadata of one image (label, class, ...): small scalars only. */
export type ImageMeta = Record<string, string | number>;
export interface ListedFile { key: string; path: string; bytes: number; mtimeMs: number; container?: string; offset?: number; format?: MemberFormat; meta?: ImageMeta }
export interface ImageRow {
  id: number; source_id: number; key: string; path: string; bytes: number | null;
  hash: string | null; width: number | null; height: number | null; status: ImageStatus; error: string | null;
}
export interface WorkItem { id: number; path: string; hash: string | null; status: ImageStatus; container: string | null; offset: number | null; bytes: number | null; format: MemberFormat | null }
export interface DecodedResult { id: number; hash: string; width: number; height: number }
export interface FailedResult { id: number; error: string }
export interface EmbeddingRow {
  hash: string; views: number; vectors: Float32Array;
  /** Upstream images: the pictures found pasted into the image or tiled with it (views.ts modelBatch), with their descriptors. */
  insets?: Inset[];
}
export interface Inset { box: Box; vector: Float32Array }
/** An image's stored descriptors, as the index and the match stage read them. */
export interface EmbeddedImage { id: number; hash: string; views: number; vectors: Float32Array; insets: Inset[] }
export interface MatchRow {
  upstreamId: number; downstreamId: number; score: number; view: number;
  kind: 'exact' | 'embedding'; decision: 'match' | 'below-threshold'; reason: string;
  /** The verify stage's score and alignment (JSON); null when not verified. */
  verifyScore: number | null; alignment: string | null;
}
/** A candidate the verify stage has not scored yet. */
export interface UnverifiedPair { upstreamId: number; downstreamId: number; view: number; score: number }
/** The verify stage's result for one candidate. */
export interface VerifiedPair { upstreamId: number; downstreamId: number; view: number; verifyScore: number; alignment: string }

export interface OpenOptions {
  /** How long to wait for another run holding the catalog, in ms (0: refuse at once). */
  waitMs?: number;
  /** Open read-only without a lock (reports, status). */
  readonly?: boolean;
  /** The caller holds a queue lease on this catalog's work: a lock left on another host is stale. */
  leaseHeld?: boolean;
}

/** SQL: a re-listed file is unchanged (same size and mtime, and it had not vanished in between). */
export const VANISHED = 'file no longer present in the source (moved or deleted since an earlier scan)';
const UNCHANGED = `images.bytes IS excluded.bytes AND images.mtime_ms IS excluded.mtime_ms AND images.error IS NOT '${VANISHED}'`;
const toBlob = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const fromBlob = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
/** Insets as one blob: per inset, its box (4 floats) then its descriptor; NULL for none. */
const insetsBlob = (insets: readonly Inset[] | undefined) =>
  insets?.length ? toBlob(Float32Array.from(insets.flatMap(({ box, vector }) => [box.left, box.top, box.width, box.height, ...vector]))) : null;
function insetsFromBlob(b: Buffer | null, dims: number): Inset[] {
  if (!b) return [];
  const v = fromBlob(b);
  return Array.from({ length: v.length / (4 + dims) }, (_, k) => {
    const r = v.subarray(k * (4 + dims), (k + 1) * (4 + dims));
    return { box: { left: r[0]!, top: r[1]!, width: r[2]!, height: r[3]! }, vector: r.subarray(4) };
  });
}
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(',');

/**
 * The catalog: the only source of truth between stages. Every write that finishes a unit of work
 * goes through one transaction together with its progress marker, so a SIGKILL at any moment
 * leaves either the whole unit or none of it.
 */
export class Catalog {
  readonly path: string;
  readonly db: Database.Database;
  private readonly lock: CatalogLock | undefined;
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(path: string, db: Database.Database, lock: CatalogLock | undefined) {
    this.path = path;
    this.db = db;
    this.lock = lock;
  }

  static open(path: string, options: OpenOptions = {}): Catalog {
    const abs = resolve(path);
    if (options.readonly && !existsSync(abs)) {
      throw new StateError(`No catalog at ${abs}: run \`neardup scan\` or \`neardup audit\` with --db ${path} first`, 'E_NO_CATALOG');
    }
    mkdirSync(dirname(abs), { recursive: true });
    const lock = options.readonly ? undefined : acquireLock(abs, options.waitMs ?? 0, options.leaseHeld ?? false);
    let db: Database.Database;
    try {
      db = new Database(abs, { readonly: options.readonly ?? false, timeout: 10_000 });
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // Checkpoint every ~40 MB of WAL instead of SQLite's ~4 MB: index pages that every commit
        // touches are then copied back once per checkpoint, not ten times (commits cost ~half the CPU).
        db.pragma('wal_autocheckpoint = 10000');
      }
      db.pragma('foreign_keys = ON');
      const catalog = new Catalog(abs, db, lock);
      if (!options.readonly) catalog.migrate();
      else catalog.checkVersion();
      return catalog;
    } catch (error) {
      lock?.release();
      if (error instanceof StateError) throw error;
      throw new StateError(`Cannot open catalog ${abs}: ${(error as Error).message}. Is it a neardup catalog (SQLite file)? Use another --db or delete the broken file.`, 'E_CATALOG', { cause: error });
    }
  }

  /** A prepared statement, compiled once per catalog: hot-path calls run per page of images. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private storedVersion(): number | undefined {
    const hasMeta = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").get();
    if (!hasMeta) return undefined;
    const row = this.db.prepare("SELECT value FROM meta WHERE key='schema_version'").get() as { value: string } | undefined;
    return row ? Number(row.value) : undefined;
  }

  private checkVersion(): void {
    const version = this.storedVersion();
    if (version !== undefined && version > SCHEMA_VERSION) {
      throw new StateError(`Catalog ${this.path} was written by a newer neardup (schema ${version}, this one reads up to ${SCHEMA_VERSION}). Upgrade neardup or use another --db.`, 'E_SCHEMA_NEWER');
    }
  }

  private migrate(): void {
    this.checkVersion();
    this.db.transaction(() => {
      for (let v = this.storedVersion() ?? SCHEMA_VERSION; v < SCHEMA_VERSION; v++) {
        const step = MIGRATIONS[v]!;
        if (typeof step === 'string') this.db.exec(step);
        else step(this.db);
      }
      this.db.exec(SCHEMA_SQL);
      this.db.prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(SCHEMA_VERSION));
    }).immediate();
  }

  /** A value of the catalog's meta table (schema version, shard, prepared downstream, ...). */
  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  close(): void {
    if (this.db.open) this.db.close();
    this.lock?.release();
  }

  // --- sources and listing -------------------------------------------------------------------

  upsertSource(role: SourceRole, spec: string, root: string): number {
    this.db.prepare('INSERT INTO sources(role, spec, root) VALUES (?, ?, ?) ON CONFLICT(role, spec) DO UPDATE SET root = excluded.root').run(role, spec, root);
    return (this.db.prepare('SELECT id FROM sources WHERE role = ? AND spec = ?').get(role, spec) as { id: number }).id;
  }

  sources(ids?: number[]): SourceRow[] {
    if (!ids) return this.db.prepare('SELECT * FROM sources ORDER BY id').all() as SourceRow[];
    return this.db.prepare(`SELECT * FROM sources WHERE id IN (${placeholders(ids.length)}) ORDER BY id`).all(...ids) as SourceRow[];
  }

  /** Start a new listing of a source; files not seen by it are marked vanished at finishListing. */
  beginListing(sourceId: number): number {
    this.db.prepare('UPDATE sources SET listing = listing + 1 WHERE id = ?').run(sourceId);
    return (this.db.prepare('SELECT listing FROM sources WHERE id = ?').get(sourceId) as { listing: number }).listing;
  }

  /** After a complete listing: files that were catalogued before but are gone now become errors. */
  finishListing(sourceId: number, listing: number): number {
    return this.db.prepare(`UPDATE images SET status = 'error', error = ?, hash = NULL
      WHERE source_id = ? AND seen < ? AND error IS NOT ?`).run(VANISHED, sourceId, listing, VANISHED).changes;
  }

  /** Record listed files; a file whose size or mtime changed since it was decoded goes back to pending. */
  recordListed(sourceId: number, files: ListedFile[], listing = 0): void {
    const upsert = this.db.prepare(`
      INSERT INTO images(source_id, key, path, bytes, mtime_ms, seen, container, offset, format, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(source_id, key) DO UPDATE SET
        seen = excluded.seen, container = excluded.container, offset = excluded.offset, format = excluded.format, meta = excluded.meta,
        path = excluded.path,
        status = CASE WHEN ${UNCHANGED} THEN images.status ELSE 'pending' END,
        hash = CASE WHEN ${UNCHANGED} THEN images.hash ELSE NULL END,
        error = CASE WHEN ${UNCHANGED} THEN images.error ELSE NULL END,
        bytes = excluded.bytes, mtime_ms = excluded.mtime_ms`);
    this.db.transaction(() => {
      for (const f of files) upsert.run(sourceId, f.key, f.path, f.bytes, f.mtimeMs, listing, f.container ?? null, f.offset ?? null, f.format ?? null, f.meta ? JSON.stringify(f.meta) : null);
    }).immediate();
  }

  /** Files listed but unusable before decoding (unreadable, symlink outside root, ...). */
  recordListingErrors(sourceId: number, failures: { key: string; path: string; error: string }[], listing = 0): void {
    const upsert = this.db.prepare(`
      INSERT INTO images(source_id, key, path, status, error, seen) VALUES (?, ?, ?, 'error', ?, ?)
      ON CONFLICT(source_id, key) DO UPDATE SET status = 'error', error = excluded.error, hash = NULL, seen = excluded.seen`);
    this.db.transaction(() => {
      for (const f of failures) upsert.run(sourceId, f.key, f.path, f.error, listing);
    }).immediate();
  }

  // --- decode and embed ----------------------------------------------------------------------

  /** Images of these sources still lacking a decode, or an embedding with at least `views` views. */
  embedWork(sourceIds: number[], modelId: string, views: number, afterId: number, limit: number): WorkItem[] {
    // `+i.source_id` keeps SQLite off the (source_id, key) index: through it, every call scanned
    // the whole source (O(n) per page, O(n²) per run: 100k images lost ~20% of their speed);
    // walking ids from afterId finds a page of pending images in O(page).
    return this.stmt(`
      SELECT i.id, i.path, i.hash, i.status, i.container, i.offset, i.bytes, i.format FROM images i
      WHERE +i.source_id IN (${placeholders(sourceIds.length)}) AND i.id > ? AND i.status != 'error'
        AND (i.status = 'pending' OR NOT EXISTS (
          SELECT 1 FROM embeddings e WHERE e.hash = i.hash AND e.model_id = ? AND e.views >= ?))
      ORDER BY i.id LIMIT ?`).all(...sourceIds, afterId, modelId, views, limit) as WorkItem[];
  }

  /** Images of these sources not decoded yet (scan without a model). */
  decodeWork(sourceIds: number[], afterId: number, limit: number): WorkItem[] {
    return this.stmt(`
      SELECT id, path, hash, status, container, offset, bytes, format FROM images
      WHERE source_id IN (${placeholders(sourceIds.length)}) AND id > ? AND status = 'pending'
      ORDER BY id LIMIT ?`).all(...sourceIds, afterId, limit) as WorkItem[];
  }

  /** Which of these hashes already have an embedding with at least `views` views. */
  embeddedHashes(hashes: string[], modelId: string, views: number): Set<string> {
    const found = new Set<string>();
    const stmt = this.stmt('SELECT 1 FROM embeddings WHERE hash = ? AND model_id = ? AND views >= ?');
    for (const h of hashes) if (stmt.get(h, modelId, views)) found.add(h);
    return found;
  }

  /** One unit of decode/embed work, committed together. */
  commitDecoded(decoded: DecodedResult[], failed: FailedResult[], modelId: string | undefined, embeddings: EmbeddingRow[], planes?: { size: number; rows: { hash: string; luma: Uint8Array }[] }): void {
    const ok = this.stmt("UPDATE images SET status = 'ok', error = NULL, hash = ?, width = ?, height = ? WHERE id = ?");
    const bad = this.stmt("UPDATE images SET status = 'error', error = ?, hash = NULL WHERE id = ?");
    // A downstream row (more views) replaces an upstream one, keeping its insets.
    const emb = this.stmt(`INSERT INTO embeddings(hash, model_id, views, vectors, inset) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(hash, model_id) DO UPDATE SET views = excluded.views, vectors = excluded.vectors, inset = COALESCE(excluded.inset, embeddings.inset)
      WHERE excluded.views > embeddings.views`);
    this.db.transaction(() => {
      for (const d of decoded) ok.run(d.hash, d.width, d.height, d.id);
      for (const f of failed) bad.run(f.error, f.id);
      if (modelId) for (const e of embeddings) emb.run(e.hash, modelId, e.views, toBlob(e.vectors), insetsBlob(e.insets));
      if (planes) this.insertPlanes(planes.size, planes.rows);
    }).immediate();
  }

  /** Stream (id, hash, vectors) of ok images of these sources in id order, `limit` at a time, ids in (afterId, untilId]. */
  embeddingsPage(sourceIds: number[], modelId: string, afterId: number, limit: number, untilId = Number.MAX_SAFE_INTEGER): EmbeddedImage[] {
    const rows = this.stmt(`
      SELECT i.id, i.hash, e.views, e.vectors, e.inset FROM images i
      JOIN embeddings e ON e.hash = i.hash AND e.model_id = ?
      WHERE i.source_id IN (${placeholders(sourceIds.length)}) AND i.status = 'ok' AND i.id > ? AND i.id <= ?
      ORDER BY i.id LIMIT ?`).all(modelId, ...sourceIds, afterId, untilId, limit) as { id: number; hash: string; views: number; vectors: Buffer; inset: Buffer | null }[];
    return rows.map((r) => {
      const vectors = fromBlob(r.vectors);
      return { id: r.id, hash: r.hash, views: r.views, vectors, insets: insetsFromBlob(r.inset, vectors.length / r.views) };
    });
  }

  // --- match ---------------------------------------------------------------------------------

  matchState(modelId: string): { fingerprint: string; last_upstream_id: number; done: number } | undefined {
    return this.stmt('SELECT fingerprint, last_upstream_id, done FROM match_state WHERE model_id = ?').get(modelId) as
      { fingerprint: string; last_upstream_id: number; done: number } | undefined;
  }

  resetMatches(modelId: string, fingerprint: string): void {
    this.db.transaction(() => {
      this.stmt('DELETE FROM matches WHERE model_id = ?').run(modelId);
      this.stmt(`INSERT INTO match_state(model_id, fingerprint, last_upstream_id, done) VALUES (?, ?, 0, 0)
        ON CONFLICT(model_id) DO UPDATE SET fingerprint = excluded.fingerprint, last_upstream_id = 0, done = 0`).run(modelId, fingerprint);
    }).immediate();
  }

  /** Candidates of one page of upstream queries plus the resume point, atomically. */
  commitMatches(modelId: string, rows: MatchRow[], lastUpstreamId: number, done: boolean): void {
    const insert = this.stmt(`INSERT INTO matches(model_id, upstream_id, downstream_id, score, view, kind, decision, reason, verify_score, alignment)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model_id, upstream_id, downstream_id) DO UPDATE SET
      score = excluded.score, view = excluded.view, kind = excluded.kind, decision = excluded.decision, reason = excluded.reason,
      verify_score = excluded.verify_score, alignment = excluded.alignment`);
    this.db.transaction(() => {
      for (const r of rows) insert.run(modelId, r.upstreamId, r.downstreamId, r.score, r.view, r.kind, r.decision, r.reason, r.verifyScore, r.alignment);
      this.stmt('UPDATE match_state SET last_upstream_id = ?, done = ? WHERE model_id = ?').run(lastUpstreamId, done ? 1 : 0, modelId);
    }).immediate();
  }

  /** Embedding candidates not verified by this verifier yet, in upstream order, upstream ids > afterId; whole upstream images only. */
  unverifiedPairs(modelId: string, verifier: string, afterUpstreamId: number, limit: number): UnverifiedPair[] {
    const pending = `model_id = ? AND kind = 'embedding' AND (alignment IS NULL OR json_extract(alignment, '$.verifier') IS NOT ?)`;
    const last = this.stmt(`SELECT upstream_id AS id FROM (SELECT DISTINCT upstream_id FROM matches WHERE ${pending} AND upstream_id > ?
      ORDER BY upstream_id LIMIT ?) ORDER BY id DESC LIMIT 1`).get(modelId, verifier, afterUpstreamId, limit) as { id: number } | undefined;
    if (!last) return [];
    return this.stmt(`SELECT upstream_id AS upstreamId, downstream_id AS downstreamId, view, score FROM matches
      WHERE ${pending} AND upstream_id > ? AND upstream_id <= ? ORDER BY upstream_id, score DESC`).all(modelId, verifier, afterUpstreamId, last.id) as UnverifiedPair[];
  }

  /** Verification results, in one transaction with whatever decisions they imply. */
  commitVerified(modelId: string, pairs: VerifiedPair[], decide: (p: VerifiedPair) => { decision: MatchRow['decision']; reason: string }): void {
    const update = this.stmt(`UPDATE matches SET verify_score = ?, alignment = ?, view = ?, decision = ?, reason = ?
      WHERE model_id = ? AND upstream_id = ? AND downstream_id = ?`);
    this.db.transaction(() => {
      for (const p of pairs) {
        const d = decide(p);
        update.run(p.verifyScore, p.alignment, p.view, d.decision, d.reason, modelId, p.upstreamId, p.downstreamId);
      }
    }).immediate();
  }

  /** One image's stored descriptors for a model (all its views), if embedded. */
  vectorsOf(id: number, modelId: string): Float32Array | undefined {
    const row = this.stmt('SELECT e.vectors FROM images i JOIN embeddings e ON e.hash = i.hash AND e.model_id = ? WHERE i.id = ?').get(modelId, id) as { vectors: Buffer } | undefined;
    return row ? fromBlob(row.vectors) : undefined;
  }

  /** Where the embed stage found pictures pasted into one (upstream) image or tiled with it, and their descriptors. */
  insetsOf(id: number, modelId: string): Inset[] {
    const row = this.stmt('SELECT e.inset, e.views, length(e.vectors) AS bytes FROM images i JOIN embeddings e ON e.hash = i.hash AND e.model_id = ? WHERE i.id = ?')
      .get(modelId, id) as { inset: Buffer | null; views: number; bytes: number } | undefined;
    return row ? insetsFromBlob(row.inset, row.bytes / 4 / row.views) : [];
  }

  /** Where one image's bytes are (to decode it again when its pixels are not at hand). */
  imageRef(id: number): WorkItem | undefined {
    return this.stmt('SELECT id, path, hash, status, container, offset, bytes, format FROM images WHERE id = ?').get(id) as WorkItem | undefined;
  }

  // --- planes (the verify stage's luma of downstream images) -----------------------------------

  plane(hash: string, size: number): Uint8Array | undefined {
    const row = this.stmt('SELECT luma FROM planes WHERE hash = ? AND size = ?').get(hash, size) as { luma: Buffer } | undefined;
    return row ? new Uint8Array(row.luma.buffer, row.luma.byteOffset, row.luma.byteLength) : undefined;
  }

  putPlanes(size: number, planes: { hash: string; luma: Uint8Array }[]): void {
    this.db.transaction(() => this.insertPlanes(size, planes)).immediate();
  }

  private insertPlanes(size: number, planes: { hash: string; luma: Uint8Array }[]): void {
    const put = this.stmt('INSERT OR IGNORE INTO planes(hash, size, luma) VALUES (?, ?, ?)');
    for (const p of planes) put.run(p.hash, size, Buffer.from(p.luma.buffer, p.luma.byteOffset, p.luma.byteLength));
  }

  /** Ok images of these sources whose luma plane is not stored (catalogs from before the verify stage, imported sides). */
  missingPlanes(sourceIds: number[], size: number, afterId: number, limit: number): WorkItem[] {
    return this.stmt(`SELECT i.id, i.path, i.hash, i.status, i.container, i.offset, i.bytes, i.format FROM images i
      WHERE +i.source_id IN (${placeholders(sourceIds.length)}) AND i.status = 'ok' AND i.id > ?
        AND NOT EXISTS (SELECT 1 FROM planes p WHERE p.hash = i.hash AND p.size = ?) ORDER BY i.id LIMIT ?`).all(...sourceIds, afterId, size, limit) as WorkItem[];
  }

  /** Pairs of ok images with the same content hash (byte-identical) across the two sides, upstream ids in (afterId, untilId]: found with no model. */
  exactPairs(upstreamIds: number[], downstreamIds: number[], afterId: number, untilId: number): { upstreamId: number; downstreamId: number }[] {
    return this.stmt(`
      SELECT u.id AS upstreamId, d.id AS downstreamId FROM images u JOIN images d ON u.hash = d.hash
      WHERE u.source_id IN (${placeholders(upstreamIds.length)}) AND d.source_id IN (${placeholders(downstreamIds.length)})
        AND u.status = 'ok' AND d.status = 'ok' AND u.id > ? AND u.id <= ? ORDER BY u.id, d.id`).all(...upstreamIds, ...downstreamIds, afterId, untilId) as { upstreamId: number; downstreamId: number }[];
  }

  // --- runs ----------------------------------------------------------------------------------

  startRun(command: string, config: unknown, versions: unknown): number {
    const info = this.db.prepare("INSERT INTO runs(command, started_at, status, config, versions) VALUES (?, ?, 'running', ?, ?)")
      .run(command, new Date().toISOString(), JSON.stringify(config), JSON.stringify(versions));
    return Number(info.lastInsertRowid);
  }

  finishRun(id: number, status: 'finished' | 'failed', timings: unknown): void {
    this.db.prepare('UPDATE runs SET finished_at = ?, status = ?, timings = ? WHERE id = ?')
      .run(new Date().toISOString(), status, JSON.stringify(timings), id);
  }
}
