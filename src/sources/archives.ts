import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { ImageMeta, ListingPage } from './list.js';
import { Pager } from './pager.js';

/**
 * Archive sources, read in place by byte range: nothing is extracted to disk and memory stays
 * bounded. A member is catalogued with its container file, offset and length, so decoding reads
 * exactly its bytes. Uncompressed tar (what img2dataset/WebDataset write) stores each member
 * contiguously after a 512-byte header; CIFAR binary batches are fixed-size records.
 */

export const IMAGE_MEMBER = /\.(jpe?g|png|webp|gif|tiff?|avif|bmp|ico|tga)$/i;

/** `shard-{00000..00099}.tar` → every name, zero padding kept; other braces pass through. */
export function expandBraces(pattern: string): string[] {
  const m = /\{(\d+)\.\.(\d+)\}/.exec(pattern);
  if (!m) return [pattern];
  const [lo, hi] = [Number(m[1]), Number(m[2])];
  const width = m[1]!.length;
  const out: string[] = [];
  for (let i = lo; i <= hi; i++) out.push(...expandBraces(pattern.slice(0, m.index) + String(i).padStart(width, '0') + pattern.slice(m.index + m[0].length)));
  return out;
}

/** Parse a tar number field: octal text, or GNU base-256 when the high bit is set. */
function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text ? Number.parseInt(text, 8) : 0;
}

const cString = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');

/** The `path=` record of a pax extended header, if any. */
function paxPath(data: Buffer): string | undefined {
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number.parseInt(data.subarray(pos, space).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    if (record.startsWith('path=')) return record.slice(5);
    pos += len;
  }
  return undefined;
}

export interface TarMember { name: string; offset: number; size: number; mtimeMs: number }

/** Walk a tar file's headers (no member data is read except pax/GNU long names). */
export async function* tarMembers(file: string): AsyncGenerator<TarMember> {
  const fh: FileHandle = await open(file, 'r');
  try {
    const { size: total } = await fh.stat();
    const header = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    while (pos + 512 <= total) {
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) return;
      const size = tarNumber(header.subarray(124, 136));
      const type = String.fromCharCode(header[156]!);
      const dataAt = pos + 512;
      if (dataAt + size > total) throw new Error(`tar member at byte ${pos} runs past the end of the file (truncated archive)`);
      if (type === 'x' || type === 'L') {
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataAt);
        longName = type === 'x' ? paxPath(data) : cString(data);
      } else if (type === '0' || type === '\0' || type === '7') {
        const prefix = cString(header.subarray(345, 500));
        const short = cString(header.subarray(0, 100));
        const name = longName ?? (prefix ? `${prefix}/${short}` : short);
        longName = undefined;
        yield { name, offset: dataAt, size, mtimeMs: tarNumber(header.subarray(136, 148)) * 1000 };
      } else {
        longName = undefined;
      }
      pos = dataAt + Math.ceil(size / 512) * 512;
    }
  } finally {
    await fh.close();
  }
}

export interface ArchiveSpec { kind: 'tar' | 'cifar10' | 'cifar100'; root: string; files: string[] }

/** `tar:<dir>/shard-{00000..00009}.tar` (or a glob-free list of shards), `cifar10:<dir|file>`, `cifar100:<dir|file>`. */
export function parseArchive(spec: string, option: string): ArchiveSpec | undefined {
  const m = /^(tar|cifar10|cifar100):(.+)$/.exec(spec);
  if (!m) return undefined;
  const kind = m[1] as ArchiveSpec['kind'];
  const target = m[2]!;
  if (kind === 'tar') {
    const files = expandBraces(target);
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length > 0) throw new ConfigError(`${option} ${JSON.stringify(spec)}: ${missing.length} shard(s) do not exist, first ${JSON.stringify(missing[0])}`, 'E_SOURCE');
    return { kind, root: dirname(files[0]!), files };
  }
  if (!existsSync(target)) throw new ConfigError(`${option} ${JSON.stringify(spec)}: ${JSON.stringify(target)} does not exist; give the folder holding the CIFAR binary batches`, 'E_SOURCE');
  const names = kind === 'cifar10' ? /^(data_batch_[1-5]|test_batch)\.bin$/ : /^(train|test)\.bin$/;
  const files = statSync(target).isDirectory() ? readdirSync(target).filter((f) => names.test(f)).sort().map((f) => join(target, f)) : [target];
  if (files.length === 0) throw new ConfigError(`${option} ${JSON.stringify(spec)}: no ${kind} batch files (${names.source}) in ${target}`, 'E_SOURCE');
  return { kind, root: statSync(target).isDirectory() ? target : dirname(target), files };
}

const CIFAR_PIXELS = 3072;

/** Split and first index of a CIFAR batch file: keys are `<split>/<index>` with the canonical index. */
function cifarSplit(kind: 'cifar10' | 'cifar100', file: string): { split: string; first: number } {
  const name = basename(file);
  if (kind === 'cifar100') return { split: name.startsWith('train') ? 'train' : 'test', first: 0 };
  const batch = /data_batch_(\d)/.exec(name);
  return batch ? { split: 'train', first: (Number(batch[1]) - 1) * 10_000 } : { split: 'test', first: 0 };
}

/** Label names from the official side files next to the batches; absent files give no names. */
interface CifarNames { label?: string[]; coarse?: string[]; fine?: string[] }

function readNames(file: string): string[] | undefined {
  if (!existsSync(file)) return undefined;
  // One name per line; the official files end in blank lines, which name nothing.
  const lines = readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function cifarLabelNames(kind: 'cifar10' | 'cifar100', dir: string): CifarNames {
  if (kind === 'cifar10') return { label: readNames(join(dir, 'batches.meta.txt')) };
  return { coarse: readNames(join(dir, 'coarse_label_names.txt')), fine: readNames(join(dir, 'fine_label_names.txt')) };
}

/** `{label, label_name?}` (CIFAR-10) or `{coarse_label, fine_label, coarse_label_name?, fine_label_name?}` (CIFAR-100). */
function cifarMeta(label: Buffer, names: CifarNames): ImageMeta {
  const name = (list: string[] | undefined, i: number) => (list?.[i] ? list[i] : undefined);
  if (label.length === 1) {
    const meta: ImageMeta = { label: label[0]! };
    const n = name(names.label, label[0]!);
    if (n !== undefined) meta.label_name = n;
    return meta;
  }
  const meta: ImageMeta = { coarse_label: label[0]!, fine_label: label[1]! };
  const coarse = name(names.coarse, label[0]!);
  const fine = name(names.fine, label[1]!);
  if (coarse !== undefined) meta.coarse_label_name = coarse;
  if (fine !== undefined) meta.fine_label_name = fine;
  return meta;
}

/** Records read per chunk while collecting labels: about 0.8 MB at a time, whatever the file size. */
const CIFAR_CHUNK_RECORDS = 256;

/** The label bytes of each of a batch file's `count` records, read a bounded chunk at a time. */
async function* cifarLabels(file: string, record: number, labels: number, count: number): AsyncGenerator<{ index: number; label: Buffer }> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(count, CIFAR_CHUNK_RECORDS) * record);
    for (let i0 = 0; i0 < count; i0 += CIFAR_CHUNK_RECORDS) {
      const n = Math.min(CIFAR_CHUNK_RECORDS, count - i0);
      const { bytesRead } = await fh.read(buf, 0, n * record, i0 * record);
      if (bytesRead < n * record) throw new Error(`file shrank while being listed (record ${i0 + Math.floor(bytesRead / record)} is incomplete)`);
      for (let j = 0; j < n; j++) yield { index: i0 + j, label: Buffer.from(buf.subarray(j * record, j * record + labels)) };
    }
  } finally {
    await fh.close();
  }
}

/** Every image of an archive source, a page at a time. */
export async function* listArchive(a: ArchiveSpec, pageSize: number): AsyncGenerator<ListingPage> {
  const pager = new Pager(pageSize);
  const namesByDir = new Map<string, CifarNames>();
  for (const file of a.files) {
    const rel = file.slice(a.root.length).replace(/^\/+/, '');
    if (a.kind === 'tar') {
      try {
        for await (const m of tarMembers(file)) {
          if (!IMAGE_MEMBER.test(m.name)) continue;
          const key = `${rel}/${m.name}`;
          pager.file({ key, path: join(a.root, key), bytes: m.size, mtimeMs: m.mtimeMs, container: file, offset: m.offset, format: 'bytes' });
          yield* pager.full();
        }
      } catch (e) {
        pager.error({ key: rel, path: file, error: `unreadable tar archive: ${(e as Error).message}` });
      }
    } else {
      const labels = a.kind === 'cifar10' ? 1 : 2;
      const record = labels + CIFAR_PIXELS;
      const { size, mtimeMs } = statSync(file);
      const { split, first } = cifarSplit(a.kind, file);
      if (size % record !== 0) pager.error({ key: rel, path: file, error: `not a ${a.kind} batch: ${size} bytes is not a multiple of the ${record}-byte record` });
      const names = namesByDir.get(dirname(file)) ?? cifarLabelNames(a.kind, dirname(file));
      namesByDir.set(dirname(file), names);
      try {
        for await (const { index: i, label } of cifarLabels(file, record, labels, Math.floor(size / record))) {
          const key = `${split}/${String(first + i).padStart(6, '0')}`;
          pager.file({ key, path: join(a.root, key), bytes: CIFAR_PIXELS, mtimeMs, container: file, offset: i * record + labels, format: 'cifar', meta: cifarMeta(label, names) });
          yield* pager.full();
        }
      } catch (e) {
        pager.error({ key: rel, path: file, error: `unreadable ${a.kind} batch: ${(e as Error).message}` });
      }
    }
  }
  yield* pager.rest();
}
