/**
 * The catalog schema. One SQLite file holds every stage's state so that any stage can be re-run
 * alone and a killed run resumes where it stopped. Bump SCHEMA_VERSION with every change and add
 * a migration step; a catalog written by a newer neardup is refused, never guessed at.
 */
export const SCHEMA_VERSION = 6;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS sources (
  id INTEGER PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('upstream', 'downstream', 'dataset')),
  spec TEXT NOT NULL,
  root TEXT NOT NULL,
  listing INTEGER NOT NULL DEFAULT 0,
  UNIQUE (role, spec)
);

-- status: pending (listed, not decoded yet) | ok | error (reason in error)
CREATE TABLE IF NOT EXISTS images (
  id INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id),
  key TEXT NOT NULL,
  path TEXT NOT NULL,
  -- archive members (tar shards, CIFAR batches): the file holding the bytes, where they start,
  -- and how to read them ('bytes': an encoded image; 'cifar': 3072 planar RGB bytes)
  container TEXT,
  offset INTEGER,
  format TEXT,
  bytes INTEGER,
  mtime_ms REAL,
  hash TEXT,
  width INTEGER,
  height INTEGER,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'error')),
  error TEXT,
  -- what the source says about the image besides its pixels, as a JSON object
  -- (CIFAR label, ImageNet class folder, parquet columns); NULL when it says nothing
  meta TEXT,
  -- the source listing that last saw this file; older ones vanished from the source
  seen INTEGER NOT NULL DEFAULT 0,
  UNIQUE (source_id, key)
);
CREATE INDEX IF NOT EXISTS images_hash ON images (hash);
CREATE INDEX IF NOT EXISTS images_source_status ON images (source_id, status, id);

-- Embeddings are keyed by content hash (sha1 of the image bytes): exact duplicates are embedded once.
-- vectors holds 'views' consecutive float32 descriptors (view 0 = the image as it is).
-- inset (upstream images only, NULL when none was found): per picture found pasted into the image or
-- tiled with it, float32 [left, top, width, height] (on the model input's grid), then its descriptor.
-- A rowid table: rows are appended in commit order and only the small (hash, model_id) index takes
-- random inserts (keyed by the hash itself, every commit rewrote a page of 600-byte rows per image).
CREATE TABLE IF NOT EXISTS embeddings (
  hash TEXT NOT NULL,
  model_id TEXT NOT NULL,
  views INTEGER NOT NULL,
  vectors BLOB NOT NULL,
  inset BLOB,
  UNIQUE (hash, model_id)
);

-- Candidates above the floor for one model; decision/reason follow the current threshold.
CREATE TABLE IF NOT EXISTS matches (
  model_id TEXT NOT NULL,
  upstream_id INTEGER NOT NULL REFERENCES images(id),
  downstream_id INTEGER NOT NULL REFERENCES images(id),
  score REAL NOT NULL,
  view INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('exact', 'embedding')),
  decision TEXT NOT NULL CHECK (decision IN ('match', 'below-threshold')),
  reason TEXT NOT NULL,
  -- The verify stage's score (NULL: not verified: a byte-identical pair, or made with --verify off)
  -- and the alignment behind it, as JSON (view, zoom, angle, shift, overlap, affine, verifier id).
  verify_score REAL,
  alignment TEXT,
  PRIMARY KEY (model_id, upstream_id, downstream_id)
) WITHOUT ROWID;

-- 64×64 luma of downstream images (the model input's luma), kept for the verify stage so each
-- test image is decoded once; upstream luma is handed from the embed stage in memory instead.
CREATE TABLE IF NOT EXISTS planes (
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  luma BLOB NOT NULL,
  UNIQUE (hash, size)
);

-- Resume point of the match stage; a different fingerprint (model, index, sources, k, floor) restarts it.
CREATE TABLE IF NOT EXISTS match_state (
  model_id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  last_upstream_id INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0
);

-- The purge journal: every move/delete is planned here before any file is touched, so an
-- interrupted purge resumes (planned -> done) or rolls back (--undo: done moves -> undone).
CREATE TABLE IF NOT EXISTS purge_ops (
  id INTEGER PRIMARY KEY,
  image_id INTEGER NOT NULL REFERENCES images(id),
  action TEXT NOT NULL CHECK (action IN ('move', 'delete')),
  path TEXT NOT NULL,
  dest TEXT,
  status TEXT NOT NULL CHECK (status IN ('planned', 'done', 'undone', 'failed')),
  error TEXT,
  UNIQUE (image_id)
);

-- Human review decisions (report.html's review view, applied by purge --decisions): they
-- override the model's decision for the pair. Keyed by both images' content hashes (sha1 of the
-- bytes, images.hash) rather than by path or id: a decision is about two pictures, so it holds
-- through a rerun, a new threshold, another model, a renamed folder or a rebuilt catalog, and it
-- stops applying when a file's bytes change (the reviewer never saw the new ones). The paths are
-- the ones the reviewer saw, kept for people reading the table.
CREATE TABLE IF NOT EXISTS reviews (
  upstream_hash TEXT NOT NULL,
  downstream_hash TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
  upstream TEXT NOT NULL,
  downstream TEXT NOT NULL,
  decided_at TEXT NOT NULL,
  PRIMARY KEY (upstream_hash, downstream_hash)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  command TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL,
  config TEXT NOT NULL,
  versions TEXT NOT NULL,
  timings TEXT
);
`;

/**
 * Steps from each older schema to the next, run in one transaction before SCHEMA_SQL.
 * v1 -> v2: images.meta (source metadata) and the content hash, which no longer hashes full-size
 * pixels: every image is decoded again and its embeddings and matches are recomputed.
 * v2 -> v3: embeddings becomes a rowid table with a unique (hash, model_id) index; rows are kept.
 * v3 -> v4: matches gain verify_score and alignment (the verify stage); rows are kept and verified
 * when a run with verification next reaches them. The planes table is new (SCHEMA_SQL makes it).
 * v4 -> v5: the reviews table (human decisions) is new; SCHEMA_SQL makes it, every row is kept.
 * v5 -> v6: embeddings gain inset (the upstream side's second descriptor); rows are kept (their
 * model ids predate insets, so a run embeds its upstream side again under the new id).
 */
type MigrationDb = { exec(sql: string): unknown; prepare(sql: string): { all(...a: unknown[]): unknown[] } };

/** Add the columns a table lacks (column name → SQL type): a catalog can reach a step having some of them already. */
function addMissingColumns(db: MigrationDb, table: string, columns: Record<string, string>): void {
  const have = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
  for (const [name, type] of Object.entries(columns)) if (!have.has(name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
}

export const MIGRATIONS: Record<number, string | ((db: MigrationDb) => void)> = {
  1: `ALTER TABLE images ADD COLUMN meta TEXT;
      UPDATE images SET status = 'pending', hash = NULL, width = NULL, height = NULL WHERE status = 'ok';
      DELETE FROM embeddings; DELETE FROM matches; DELETE FROM match_state;`,
  2: `CREATE TABLE embeddings_v3 (hash TEXT NOT NULL, model_id TEXT NOT NULL, views INTEGER NOT NULL, vectors BLOB NOT NULL, UNIQUE (hash, model_id));
      INSERT INTO embeddings_v3 (hash, model_id, views, vectors) SELECT hash, model_id, views, vectors FROM embeddings;
      DROP TABLE embeddings;
      ALTER TABLE embeddings_v3 RENAME TO embeddings;`,
  3: (db) => addMissingColumns(db, 'matches', { verify_score: 'REAL', alignment: 'TEXT' }),
  4: '',
  5: (db) => addMissingColumns(db, 'embeddings', { inset: 'BLOB' }),
};

