import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { asyncBufferFromFile, parquetMetadata, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData, type ParquetRow, type SchemaTree } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ConfigError } from '../errors.js';
import type { ImageMeta } from '../state/catalog.js';
import { expandBraces } from './archives.js';
import { globToRegExp, type ListingPage } from './list.js';
import { Pager } from './pager.js';

/**
 * Parquet sources (Hugging Face datasets style): one image per row, held in a binary column or
 * in an HF image struct `{bytes, path}`. Rows are read in place, a window of consecutive rows at
 * a time, so neither listing nor decoding ever holds a whole file's images in memory.
 *
 * An image is catalogued as
 *   key       `<file relative to the root>/<row index, zero-padded to 6+ digits>`
 *   container `<file>#<encodeURIComponent(column)>`: the file as the spec named it, then the image
 *             column (split at the last `#`; the column is URI-encoded so a `#` in it is harmless)
 *   offset    the row index in the file
 *   format    'parquet'
 * and readParquetImage (called by scan/decode's readBounded) turns such a reference back into
 * the image bytes.
 */

export interface ParquetSpec {
  root: string;
  files: string[];
  /** The image column: BYTE_ARRAY (not a string) or a struct with a `bytes` field. */
  column: string;
}

/** A window (rows read together) holds at most this many uncompressed bytes of the image column... */
const WINDOW_BYTES = 64 * 1024 * 1024;
/** ...and small row groups are merged up to this many rows. */
const WINDOW_ROWS = 256;
/** Windows kept decoded for readParquetImage (consecutive rows decoded concurrently share them). */
const CACHED_WINDOWS = 3;
/** Files whose metadata and window plans are kept for readParquetImage. */
const CACHED_FILES = 8;
/** Other columns copied into an image's meta, and the longest string kept. */
const MAX_META_COLUMNS = 8;
const MAX_META_STRING = 200;
/** Same bound as a plain file in scan/decode: no photo is larger. */
const MAX_IMAGE_BYTES = 256 * 1024 * 1024;
/** A footer larger than this is not a parquet footer we read. */
const MAX_FOOTER_BYTES = 64 * 1024 * 1024;

const STRING_TYPES = new Set(['UTF8', 'ENUM', 'JSON', 'BSON']);
const STRING_LOGICAL = new Set(['STRING', 'ENUM', 'JSON', 'BSON', 'UUID', 'GEOMETRY', 'GEOGRAPHY', 'VARIANT']);

/** A top-level column usable as images: plain binary, or a struct holding a binary `bytes`. */
function isImageColumn(node: SchemaTree): boolean {
  const el = node.element;
  if (node.children.length === 0) return isBinary(node);
  if (el.repetition_type === 'REPEATED' || el.converted_type === 'LIST' || el.converted_type === 'MAP' || el.logical_type) return false;
  return node.children.some((c) => c.element.name === 'bytes' && c.children.length === 0 && isBinary(c));
}
const isBinary = (node: SchemaTree) => node.element.type === 'BYTE_ARRAY' && node.element.repetition_type !== 'REPEATED'
  && !STRING_TYPES.has(node.element.converted_type ?? '') && !STRING_LOGICAL.has(node.element.logical_type?.type ?? '');

/** Top-level scalar columns worth copying into meta: numbers, booleans, short strings. */
function metaColumns(tree: SchemaTree, image: string): string[] {
  return tree.children.filter((c) => {
    const el = c.element;
    if (c.children.length > 0 || el.name === image || el.repetition_type === 'REPEATED') return false;
    if (el.type === 'BYTE_ARRAY') return el.converted_type === 'UTF8' || el.converted_type === 'ENUM' || el.logical_type?.type === 'STRING' || el.logical_type?.type === 'ENUM';
    return el.type === 'INT32' || el.type === 'INT64' || el.type === 'FLOAT' || el.type === 'DOUBLE' || el.type === 'BOOLEAN';
  }).slice(0, MAX_META_COLUMNS).map((c) => c.element.name);
}

/** The image bytes of a cell: a binary value, or the `bytes` of an HF image struct; null if none. */
function cellBytes(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return value;
  if (value && typeof value === 'object' && (value as { bytes?: unknown }).bytes instanceof Uint8Array) return (value as { bytes: Uint8Array }).bytes;
  return null;
}

function metaValue(v: unknown): string | number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') return v.slice(0, MAX_META_STRING);
  return undefined;
}

/** Read a parquet footer synchronously (parseSource is synchronous). */
export function readParquetMetadataSync(file: string): FileMetaData {
  const fd = openSync(file, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size < 12) throw new Error(`file is too short for parquet (${size} bytes)`);
    const tail = Buffer.alloc(8);
    readSync(fd, tail, 0, 8, size - 8);
    if (tail.toString('latin1', 4) !== 'PAR1') throw new Error('no parquet footer (the file does not end with PAR1)');
    const length = tail.readUInt32LE(0);
    if (length + 8 > size || length > MAX_FOOTER_BYTES) throw new Error(`parquet footer length ${length} does not fit the file (${size} bytes)`);
    const footer = Buffer.alloc(length + 8);
    readSync(fd, footer, 0, length + 8, size - length - 8);
    return parquetMetadata(new Uint8Array(footer.buffer, footer.byteOffset, footer.byteLength));
  } finally {
    closeSync(fd);
  }
}

/** The image column of a file: the one named, or the single candidate; an Error says why not. */
function imageColumn(metadata: FileMetaData, wanted: string | undefined): { column: string } | { error: string } {
  const tree = parquetSchema(metadata);
  const candidates = tree.children.filter(isImageColumn).map((c) => c.element.name);
  if (wanted !== undefined) {
    const node = tree.children.find((c) => c.element.name === wanted);
    if (!node) return { error: `has no column ${JSON.stringify(wanted)} (columns: ${tree.children.map((c) => c.element.name).join(', ')})` };
    if (!isImageColumn(node)) return { error: `column ${JSON.stringify(wanted)} holds neither binary data nor a {bytes, path} image struct (image-like columns: ${candidates.join(', ') || 'none'})` };
    return { column: wanted };
  }
  if (candidates.length === 1) return { column: candidates[0]! };
  return {
    error: candidates.length === 0
      ? `has no image column (a binary column or a {bytes, path} struct) among ${tree.children.map((c) => c.element.name).join(', ')}`
      : `has ${candidates.length} image-like columns (${candidates.join(', ')}): choose one by adding #<column> to the source, e.g. #${candidates[0]}`,
  };
}

/**
 * `parquet:<file.parquet>`, `parquet:<dir>/train-{00000..00003}.parquet`, `parquet:<dir>/*.parquet`,
 * each optionally followed by `#<column>`. Undefined when the spec is not a parquet source.
 */
export function parseParquet(spec: string, option: string): ParquetSpec | undefined {
  if (!spec.startsWith('parquet:')) return undefined;
  let target = spec.slice('parquet:'.length);
  let wanted: string | undefined;
  const hash = target.lastIndexOf('#');
  if (hash >= 0 && !existsSync(target)) {
    wanted = target.slice(hash + 1);
    target = target.slice(0, hash);
    if (!wanted) throw new ConfigError(`Expected a column name after # in ${option} ${JSON.stringify(spec)} but received nothing`, 'E_SOURCE');
  }
  if (!target) throw new ConfigError(`Expected parquet:<file.parquet> for ${option} but received ${JSON.stringify(spec)}`, 'E_SOURCE');
  const { root, files } = expandFiles(target, spec, option);

  // The column is chosen on the first readable file; later files are checked as they are listed.
  const failures: string[] = [];
  for (const file of files) {
    let metadata: FileMetaData;
    try {
      metadata = readParquetMetadataSync(file);
    } catch (e) {
      failures.push(`${file}: ${(e as Error).message}`);
      continue;
    }
    const chosen = imageColumn(metadata, wanted);
    if ('error' in chosen) throw new ConfigError(`${option} ${JSON.stringify(spec)}: ${JSON.stringify(file)} ${chosen.error}`, 'E_SOURCE');
    return { root, files, column: chosen.column };
  }
  throw new ConfigError(`Expected readable parquet file(s) for ${option} but received ${JSON.stringify(spec)}, where none is: ${failures[0]}${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''}`, 'E_SOURCE');
}

/** Brace ranges expand in order; a wildcard matches files under the folder before it, sorted. */
function expandFiles(target: string, spec: string, option: string): { root: string; files: string[] } {
  const patterns = expandBraces(target);
  const wild = /[*?[]|\{[^}]*,[^}]*\}/;
  if (!patterns.some((p) => wild.test(p))) {
    const missing = patterns.filter((f) => !existsSync(f));
    if (missing.length > 0) {
      throw new ConfigError(`Expected existing parquet file(s) for ${option} but received ${JSON.stringify(spec)}: ${missing.length} file(s) do not exist, first ${JSON.stringify(missing[0])}`, 'E_SOURCE');
    }
    const folder = patterns.find((f) => !statSync(f).isFile());
    if (folder) throw new ConfigError(`Expected parquet file(s) for ${option} but received ${JSON.stringify(spec)}, where ${JSON.stringify(folder)} is not a file: for a folder write parquet:${folder.replace(/\/+$/, '')}/*.parquet`, 'E_SOURCE');
    return { root: commonFolder(patterns), files: patterns };
  }
  const files = new Set<string>();
  const bases: string[] = [];
  for (const pattern of patterns) {
    const p = pattern.split('/');
    const firstWild = p.findIndex((x) => wild.test(x));
    const base = firstWild < 0 ? dirname(pattern) : p.slice(0, firstWild).join('/') || (pattern.startsWith('/') ? '/' : '.');
    if (!existsSync(base) || !statSync(base).isDirectory()) {
      throw new ConfigError(`Expected an existing folder before the wildcard in ${option} but received ${JSON.stringify(spec)}: ${JSON.stringify(base)} does not exist`, 'E_SOURCE');
    }
    bases.push(join(base, 'x'));
    const re = firstWild < 0 ? undefined : globToRegExp(p.slice(firstWild).join('/'));
    let found: string[];
    try {
      found = re ? walk(base).filter((rel) => re.test(rel)) : existsSync(pattern) ? [relative(base, pattern)] : [];
    } catch (e) {
      throw new ConfigError(`Expected a readable folder under ${JSON.stringify(base)} for ${option} ${JSON.stringify(spec)} but received an error: ${(e as Error).message}`, 'E_SOURCE');
    }
    for (const rel of found) files.add(join(base, rel));
  }
  const root = commonFolder(bases);
  const sorted = [...files].sort();
  if (sorted.length === 0) throw new ConfigError(`Expected ${option} ${JSON.stringify(spec)} to match parquet files but received no match under ${JSON.stringify(root)}`, 'E_SOURCE');
  return { root, files: sorted };
}

/** The deepest folder holding every file (a brace range may sit in a folder name). */
function commonFolder(paths: string[]): string {
  const split = paths.map((f) => dirname(f).split('/'));
  let n = 0;
  while (split.every((s) => n < s.length && s[n] === split[0]![n])) n++;
  return split[0]!.slice(0, n).join('/') || (paths[0]!.startsWith('/') ? '/' : '.');
}

/** Relative paths of the regular files under a folder (symlinked folders are not entered). */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else if (e.isFile() || (e.isSymbolicLink() && statSync(join(dir, r), { throwIfNoEntry: false })?.isFile())) out.push(r);
  }
  return out;
}

/** Consecutive rows read together: whole row groups merged up to WINDOW_ROWS, big ones split by bytes. */
export interface Window { start: number; end: number }

export function planWindows(metadata: FileMetaData, column: string, limits = { rows: WINDOW_ROWS, bytes: WINDOW_BYTES }): Window[] {
  const windows: Window[] = [];
  let start = 0;
  let open: { start: number; end: number; bytes: number } | undefined;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    const bytes = group.columns.filter((c) => c.meta_data?.path_in_schema[0] === column).reduce((s, c) => s + Number(c.meta_data!.total_uncompressed_size), 0);
    if (rows === 0) continue;
    if (open && open.end === start && open.end - open.start + rows <= limits.rows && open.bytes + bytes <= limits.bytes) {
      open.end += rows;
      open.bytes += bytes;
    } else if (bytes <= limits.bytes) {
      if (open) windows.push({ start: open.start, end: open.end });
      open = { start, end: start + rows, bytes };
    } else {
      // One row group too big to hold: split it. Rows are read with the offset index when the
      // file has one; without it each part reads the whole column chunk again (I/O, not memory).
      if (open) windows.push({ start: open.start, end: open.end });
      open = undefined;
      const per = Math.max(1, Math.floor((rows * limits.bytes) / bytes));
      for (let s = start; s < start + rows; s += per) windows.push({ start: s, end: Math.min(s + per, start + rows) });
    }
    start += rows;
  }
  if (open) windows.push({ start: open.start, end: open.end });
  return windows;
}

function windowOf(windows: Window[], row: number): Window | undefined {
  let lo = 0;
  let hi = windows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const w = windows[mid]!;
    if (row < w.start) hi = mid - 1;
    else if (row >= w.end) lo = mid + 1;
    else return w;
  }
  return undefined;
}

async function readRows(file: AsyncBuffer, metadata: FileMetaData, columns: string[], w: Window): Promise<ParquetRow[]> {
  const rows = await parquetReadObjects({ file, metadata, columns, rowStart: w.start, rowEnd: w.end, utf8: false, compressors, useOffsetIndex: true });
  if (rows.length !== w.end - w.start) throw new Error(`read ${rows.length} rows where rows ${w.start}–${w.end - 1} were asked for`);
  return rows;
}

/**
 * The rows of a window, or for each row the Error that kept it from being read. A merged window
 * that fails is read again one row group at a time, so damage in one group costs only its rows.
 */
async function readWindow(file: AsyncBuffer, metadata: FileMetaData, columns: string[], w: Window): Promise<(ParquetRow | Error)[]> {
  const failed = (range: Window, e: unknown) => Array.from({ length: range.end - range.start }, () => (e instanceof Error ? e : new Error(String(e))));
  try {
    return await readRows(file, metadata, columns, w);
  } catch (e) {
    const parts = groupsWithin(metadata, w);
    if (parts.length <= 1) return failed(w, e);
    const out: (ParquetRow | Error)[] = [];
    for (const part of parts) out.push(...(await readRows(file, metadata, columns, part).catch((err: unknown) => failed(part, err))));
    return out;
  }
}

/** The row groups overlapping a window, clipped to it. */
function groupsWithin(metadata: FileMetaData, w: Window): Window[] {
  const parts: Window[] = [];
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    if (end > w.start && start < w.end && end > start) parts.push({ start: Math.max(start, w.start), end: Math.min(end, w.end) });
    start = end;
  }
  return parts;
}

/** Every image row of a parquet source, a window of rows at a time, in file then row order. */
export async function* listParquet(p: ParquetSpec, pageSize: number): AsyncGenerator<ListingPage> {
  const pager = new Pager(pageSize);
  for (const file of p.files) {
    const rel = relative(p.root, file);
    // Rows that could not be read (damaged pages): counted, reported once for the file.
    let damaged: { first: number; count: number; message: string } | undefined;
    try {
      const { mtimeMs } = await stat(file);
      const metadata = readParquetMetadataSync(file);
      const chosen = imageColumn(metadata, p.column);
      if ('error' in chosen) throw new Error(chosen.error);
      const column = chosen.column;
      const meta = metaColumns(parquetSchema(metadata), column);
      const buffer = await asyncBufferFromFile(file);
      const digits = Math.max(6, String(Number(metadata.num_rows) - 1).length);
      const container = `${file}#${encodeURIComponent(column)}`;
      for (const w of planWindows(metadata, column)) {
        const rows = await readWindow(buffer, metadata, [column, ...meta], w);
        for (let i = 0; i < rows.length; i++) {
          const row = w.start + i;
          const cells = rows[i]!;
          if (cells instanceof Error) {
            damaged ??= { first: row, count: 0, message: cells.message };
            damaged.count++;
            continue;
          }
          const key = `${rel}/${String(row).padStart(digits, '0')}`;
          const bytes = cellBytes(cells[column]);
          if (!bytes || bytes.length === 0) {
            pager.error({ key, path: join(p.root, key), error: `row ${row} has no image bytes in column ${column}` });
          } else {
            const m: ImageMeta = {};
            for (const c of meta) {
              const v = metaValue(cells[c]);
              if (v !== undefined) m[c] = v;
            }
            pager.file({ key, path: join(p.root, key), bytes: bytes.length, mtimeMs, container, offset: row, format: 'parquet', ...(Object.keys(m).length > 0 ? { meta: m } : {}) });
          }
          yield* pager.full();
        }
      }
      if (damaged) {
        const rows = damaged.count === 1 ? `row ${damaged.first}` : `${damaged.count} rows from row ${damaged.first}`;
        pager.error({ key: rel, path: file, error: `unreadable parquet file: ${rows} cannot be read (${damaged.message})` });
        yield* pager.full();
      }
    } catch (e) {
      pager.error({ key: rel, path: file, error: `unreadable parquet file: ${(e as Error).message}` });
      yield* pager.full();
    }
  }
  yield* pager.rest();
}

interface OpenFile { buffer: AsyncBuffer; metadata: FileMetaData; windows: Map<string, Window[]> }
const files = new Map<string, Promise<OpenFile>>();
const windows = new Map<string, Promise<(Uint8Array | Error | null)[]>>();

/** Least-recently-used get-or-load over a Map (insertion order is recency). */
function cached<T>(map: Map<string, Promise<T>>, key: string, limit: number, load: () => Promise<T>): Promise<T> {
  let hit = map.get(key);
  if (hit) {
    map.delete(key);
    map.set(key, hit);
    return hit;
  }
  // A failed load stays cached too (until evicted): the other rows of its window fail at once.
  hit = load();
  hit.catch(() => undefined);
  map.set(key, hit);
  while (map.size > limit) map.delete(map.keys().next().value!);
  return hit;
}

/**
 * The image bytes of one parquet row (an ImageRef with format 'parquet'), or why there are none.
 * Rows are loaded a window at a time and the last few windows are kept, with loads in flight
 * shared: the embed stage decodes pages of consecutive rows concurrently, and each window is read
 * and decompressed once.
 */
export async function readParquetImage(ref: { container?: string | null; offset?: number | null }): Promise<Buffer | string> {
  const container = ref.container ?? '';
  const hash = container.lastIndexOf('#');
  const row = ref.offset ?? -1;
  if (hash < 0 || row < 0) return `not a parquet image reference (${JSON.stringify(container)}, row ${row})`;
  const file = container.slice(0, hash);
  const column = decodeURIComponent(container.slice(hash + 1));
  try {
    // Keyed by size and mtime too: a rewritten file is never served from an old plan or window.
    const { size, mtimeMs } = await stat(file);
    const fileKey = `${size}:${mtimeMs}:${file}`;
    const open = await cached(files, fileKey, CACHED_FILES, async () => {
      const metadata = readParquetMetadataSync(file);
      return { buffer: await asyncBufferFromFile(file), metadata, windows: new Map<string, Window[]>() };
    });
    let plan = open.windows.get(column);
    if (!plan) open.windows.set(column, (plan = planWindows(open.metadata, column)));
    const w = windowOf(plan, row);
    if (!w) return `row ${row} is past the end of the parquet file (${open.metadata.num_rows} rows): the file changed since it was listed`;
    const cells = await cached(windows, `${w.start}:${w.end}:${column}:${fileKey}`, CACHED_WINDOWS, async () => {
      const rows = await readWindow(open.buffer, open.metadata, [column], w);
      return rows.map((r) => (r instanceof Error ? r : cellBytes(r[column])));
    });
    const bytes = cells[row - w.start];
    if (bytes instanceof Error) return `cannot read parquet file: ${bytes.message}`;
    if (!bytes || bytes.length === 0) return `row ${row} has no image bytes in column ${column}`;
    if (bytes.length > MAX_IMAGE_BYTES) return `parquet image too large (${bytes.length} bytes > ${MAX_IMAGE_BYTES})`;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'parquet file vanished since scan (ENOENT)';
    return `cannot read parquet file: ${(e as Error).message}`;
  }
}

/** Forget cached files and windows (tests; a long-lived process after files were rewritten). */
export function clearParquetCache(): void {
  files.clear();
  windows.clear();
}

/** How many windows are cached now (tests check that memory stays bounded). */
export const cachedParquetWindows = (): number => windows.size;
