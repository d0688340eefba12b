import { existsSync, lstatSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';
import type { ListedFile } from '../state/catalog.js';
import { Pager } from './pager.js';
import { listArchive, parseArchive, type ArchiveSpec } from './archives.js';
import { listParquet, parseParquet, type ParquetSpec } from './parquet.js';

/** Extensions we hand to the decoder; anything else in a folder is not an image and is ignored. */
export const IMAGE_EXTENSIONS = Object.freeze(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg', '.bmp', '.ico', '.tga']);

export type SourceKind = 'folder' | 'list' | 'glob' | 'archive' | 'parquet';

/** A source spec resolved once at the boundary: what to walk and how keys are formed. */
export interface SourceSpec {
  /** As the user wrote it; part of the catalog identity of the source. */
  spec: string;
  kind: SourceKind;
  /** Keys are paths relative to this folder. */
  root: string;
  /** For lists: the file listing paths. For globs: the pattern relative to root. */
  target?: string;
  archive?: ArchiveSpec;
  parquet?: ParquetSpec;
}

export type { ImageMeta, MemberFormat } from '../state/catalog.js';
export type ListedEntry = ListedFile;
export interface ListingError { key: string; path: string; error: string }
export interface ListingPage { files: ListedEntry[]; errors: ListingError[] }

/**
 * ImageNet-style folder per class: a key with a folder component gets `{class: <first folder>}`
 * (`n01443537/img1.jpg` -> `n01443537`); files at the root, and list lines that leave the root
 * (`../x/y.jpg`), get none.
 */
export function classOf(key: string): string | undefined {
  const parts = key.split('/').filter((p) => p !== '.' && p !== '');
  return parts.length > 1 && parts[0] !== '..' ? parts[0] : undefined;
}
const withClass = (f: ListedEntry): ListedEntry => {
  const c = classOf(f.key);
  return c === undefined ? f : { ...f, meta: { class: c } };
};

const isGlob = (s: string) => /[*?[\]{}]/.test(s);
const hasImageExtension = (name: string) => IMAGE_EXTENSIONS.includes(name.slice(name.lastIndexOf('.')).toLowerCase());

/** Parse `tar:`/`cifar10:`/`cifar100:` archives, `parquet:` files, `list:<file>`, `glob:<pattern>`, a pattern with wildcards, a `.txt` list or a folder. */
export function parseSource(spec: string, option = 'source'): SourceSpec {
  const archive = parseArchive(spec, option);
  if (archive) return { spec, kind: 'archive', root: archive.root, archive };
  const parquet = parseParquet(spec, option);
  if (parquet) return { spec, kind: 'parquet', root: parquet.root, parquet };
  if (spec.startsWith('list:') || (spec.endsWith('.txt') && !spec.startsWith('glob:'))) {
    const file = spec.startsWith('list:') ? spec.slice(5) : spec;
    if (!existsSync(file) || !statSync(file).isFile()) {
      throw new ConfigError(`File list ${JSON.stringify(file)} for ${option} does not exist: give a file with one image path per line`, 'E_SOURCE');
    }
    return { spec, kind: 'list', root: dirname(file), target: file };
  }
  if (spec.startsWith('glob:') || isGlob(spec)) {
    const pattern = spec.startsWith('glob:') ? spec.slice(5) : spec;
    const parts = pattern.split('/');
    const firstWild = parts.findIndex(isGlob);
    const base = parts.slice(0, firstWild).join('/') || '.';
    if (!existsSync(base) || !statSync(base).isDirectory()) {
      throw new ConfigError(`The folder ${JSON.stringify(base)} before the wildcard in ${option} ${JSON.stringify(spec)} does not exist`, 'E_SOURCE');
    }
    return { spec, kind: 'glob', root: base, target: parts.slice(firstWild).join('/') };
  }
  if (!existsSync(spec)) {
    throw new ConfigError(`Expected an existing folder, file list (.txt or list:<file>) or glob for ${option} but received ${JSON.stringify(spec)}, which does not exist`, 'E_SOURCE');
  }
  if (!statSync(spec).isDirectory()) {
    throw new ConfigError(`${option} ${JSON.stringify(spec)} is a file: pass its folder, or a file list as list:${spec}`, 'E_SOURCE');
  }
  return { spec, kind: 'folder', root: spec.replace(/\/+$/, '') || '/' };
}

/** Translate a glob (`**`, `*`, `?`, `[...]`, `{a,b}`) into an anchored RegExp over `/` paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += pattern[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i);
      re += end > i ? pattern.slice(i, end + 1) : '\\[';
      i = end > i ? end : i;
    } else if (c === '{') {
      const end = pattern.indexOf('}', i);
      re += `(?:${pattern.slice(i + 1, end).split(',').map(escapeRe).join('|')})`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}
const escapeRe = (s: string) => s.replace(/[.+^$()|\\]/g, '\\$&');

const isInside = (root: string, p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

function validUtf8(name: Buffer): boolean {
  return Buffer.from(name.toString('utf8'), 'utf8').equals(name);
}

interface WalkOptions { followLinks: boolean; pageSize: number }

/**
 * Walk a folder recursively in key order (a folder sorts as "name/"), yielding pages of files.
 * Symlinks are only followed inside the root (or anywhere with followLinks); loops and links
 * that leave the root become listing errors, so nothing outside the source is ever read unless
 * the user asked for it.
 */
async function* walkFolder(root: string, match: (key: string) => boolean, o: WalkOptions): AsyncGenerator<ListingPage> {
  const realRoot = realpathSync(root);
  const seenDirs = new Set<string>([realRoot]);
  const pager = new Pager(o.pageSize);

  async function* visit(relDir: string): AsyncGenerator<ListingPage> {
    const entries = await readEntries(root, relDir, realRoot, o.followLinks).catch((e: Error) => e);
    if (entries instanceof Error) {
      pager.error({ key: relDir, path: join(root, relDir), error: `cannot read folder: ${entries.message}` });
      return;
    }
    for (const entry of entries) {
      const { key, kind, name } = entry;
      if (kind.type === 'dir') {
        if (seenDirs.has(kind.real)) continue;
        seenDirs.add(kind.real);
        yield* visit(key);
      } else if (kind.type === 'file') {
        if (match(key)) pager.file(withClass({ key, path: join(root, key), bytes: kind.bytes, mtimeMs: kind.mtimeMs }));
      } else if (kind.type === 'error' && hasImageExtension(name)) {
        pager.error({ key, path: join(root, key), error: kind.error });
      }
      yield* pager.full();
    }
  }

  yield* visit('');
  yield* pager.rest();
}

interface Entry { key: string; name: string; kind: Classified }

/** One folder's entries, classified, sorted by key with folders compared as "name/". */
async function readEntries(root: string, relDir: string, realRoot: string, followLinks: boolean): Promise<Entry[]> {
  const dir = await opendir(join(root, relDir), { encoding: 'buffer' as BufferEncoding });
  const entries: Entry[] = [];
  for await (const dirent of dir) {
    const raw = dirent.name as unknown as Buffer;
    const name = raw.toString('utf8');
    const key = relDir ? `${relDir}/${name}` : name;
    const kind: Classified = validUtf8(raw)
      ? classify(join(root, key), realRoot, followLinks)
      : { type: 'error', error: `file name is not valid UTF-8 (bytes ${raw.toString('hex')}): rename the file to process it` };
    entries.push({ key, name, kind });
  }
  const sortKey = (e: Entry) => (e.kind.type === 'dir' ? `${e.name}/` : e.name);
  return entries.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
}

type Classified = { type: 'dir'; real: string } | { type: 'file'; bytes: number; mtimeMs: number } | { type: 'error'; error: string } | { type: 'other' };

/**
 * What a directory entry is. Synchronous, like every per-file call on neardup's hot paths: an
 * async fs call costs ~0.15 ms of round trip through libuv's pool, a direct one ~5 µs, and
 * listing a million files makes a million of them.
 */
function classify(path: string, realRoot: string, followLinks: boolean): Classified {
  try {
    const l = lstatSync(path);
    if (l.isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return { type: 'error', error: code === 'ELOOP' ? 'symlink loop (not followed)' : `broken symlink (${code})` };
      }
      if (!followLinks && !isInside(realRoot, real)) {
        return { type: 'error', error: 'symlink points outside the source root (not followed; pass --follow-links to follow)' };
      }
      const s = statSync(path);
      if (s.isDirectory()) return { type: 'dir', real };
      return s.isFile() ? { type: 'file', bytes: s.size, mtimeMs: s.mtimeMs } : { type: 'other' };
    }
    if (l.isDirectory()) return { type: 'dir', real: realpathSync(path) };
    if (l.isFile()) return { type: 'file', bytes: l.size, mtimeMs: l.mtimeMs };
    return { type: 'other' };
  } catch (e) {
    return { type: 'error', error: `cannot stat: ${(e as Error).message}` };
  }
}

async function* listFile(spec: SourceSpec, pageSize: number): AsyncGenerator<ListingPage> {
  const lines = readFileSync(spec.target!, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const pager = new Pager(pageSize);
  for (const line of lines) {
    const path = isAbsolute(line) ? line : join(spec.root, line);
    const key = isAbsolute(line) ? relative(resolve(spec.root), line) : line;
    try {
      const s = statSync(path); // synchronous: see classify
      if (s.isFile()) pager.file(withClass({ key, path, bytes: s.size, mtimeMs: s.mtimeMs }));
      else pager.error({ key, path, error: 'listed path is not a regular file' });
    } catch (e) {
      pager.error({ key, path, error: `listed file cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
    }
    yield* pager.full();
  }
  yield* pager.rest();
}

/** Every image of a source, in a stable order, a page at a time. */
export function listSource(spec: SourceSpec, options: { followLinks?: boolean; pageSize?: number } = {}): AsyncGenerator<ListingPage> {
  const o = { followLinks: options.followLinks ?? false, pageSize: options.pageSize ?? 1000 };
  if (spec.kind === 'archive') return listArchive(spec.archive!, o.pageSize);
  if (spec.kind === 'parquet') return listParquet(spec.parquet!, o.pageSize);
  if (spec.kind === 'list') return listFile(spec, o.pageSize);
  if (spec.kind === 'glob') {
    const re = globToRegExp(spec.target!);
    return walkFolder(spec.root, (key) => re.test(key), o);
  }
  return walkFolder(spec.root, hasImageExtension, o);
}
