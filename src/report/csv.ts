/**
 * RFC 4180 CSV: writing fields and rows, parsing whole documents, and writing files atomically.
 * Image keys are user file names, so any of them may hold commas, quotes or newlines; everything
 * here round-trips through `parseCsv`.
 */
import { open, rename, rm } from 'node:fs/promises';
import { ConfigError, invalidOption } from '../errors.js';

/** A value that can be written as one CSV field; `null` and `undefined` become an empty field. */
export type CsvValue = string | number | null | undefined;

// Quote on separators and line breaks (required by RFC 4180) and on edge whitespace, which
// spreadsheet importers and some parsers otherwise trim away.
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

/** Encodes one field, quoting it (and doubling inner quotes) only when RFC 4180 needs it. */
export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(v) : v;
  return NEEDS_QUOTES.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Encodes one record, terminated by `'\n'`. */
export function csvRow(values: readonly CsvValue[]): string {
  // A record holding one empty field would otherwise be a blank line, which many readers skip.
  if (values.length === 1 && csvField(values[0]) === '') return '""\n';
  return values.map(csvField).join(',') + '\n';
}

/** Mutable cursor state shared by the parser helpers. */
interface ParseState {
  readonly text: string;
  pos: number;
  line: number;
}

/**
 * Parses a whole CSV document into records of string fields.
 * Accepts CRLF, LF or CR record ends, quoted fields spanning lines, and a leading UTF-8 BOM.
 * A final line break does not start an empty record; an empty document has no records.
 * @throws ConfigError (`E_CSV`) on an unterminated quoted field or text after a closing quote.
 */
export function parseCsv(text: string): string[][] {
  return parseCsvLines(text).map((r) => r.fields);
}

/** parseCsv, each record with the line it starts on (1-based), for error messages about its content. */
export function parseCsvLines(text: string): { fields: string[]; line: number }[] {
  const st: ParseState = { text: text.startsWith('\uFEFF') ? text.slice(1) : text, pos: 0, line: 1 };
  const records: { fields: string[]; line: number }[] = [];
  while (st.pos < st.text.length) {
    const line = st.line;
    records.push({ fields: parseRecord(st), line });
  }
  return records;
}

function parseRecord(st: ParseState): string[] {
  const fields: string[] = [];
  for (;;) {
    fields.push(st.text[st.pos] === '"' ? parseQuoted(st) : parseBare(st));
    const c = st.text[st.pos];
    if (c === ',') {
      st.pos++;
      continue;
    }
    if (c === '\r' && st.text[st.pos + 1] === '\n') st.pos++;
    if (c !== undefined) st.pos++; // consume the record end
    st.line++;
    return fields;
  }
}

function parseBare(st: ParseState): string {
  const start = st.pos;
  let c = st.text[st.pos];
  while (c !== undefined && c !== ',' && c !== '\n' && c !== '\r') c = st.text[++st.pos];
  // A stray quote inside a bare field is kept literally: lenient, and loses nothing.
  return st.text.slice(start, st.pos);
}

function parseQuoted(st: ParseState): string {
  const startLine = st.line;
  let out = '';
  let from = ++st.pos; // skip the opening quote
  for (;;) {
    const q = st.text.indexOf('"', st.pos);
    if (q < 0) throw csvError(`unterminated quoted field starting on line ${startLine}`);
    countLines(st, from, q);
    out += st.text.slice(from, q);
    if (st.text[q + 1] === '"') {
      out += '"';
      st.pos = from = q + 2;
      continue;
    }
    st.pos = q + 1;
    const next = st.text[st.pos];
    if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
      throw csvError(`unexpected ${JSON.stringify(next)} after closing quote on line ${st.line}`);
    }
    return out;
  }
}

// Keeps `line` right for error messages when quoted fields span several lines.
function countLines(st: ParseState, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const c = st.text[i];
    if (c === '\n' || (c === '\r' && st.text[i + 1] !== '\n')) st.line++;
  }
}

function csvError(detail: string): ConfigError {
  return new ConfigError(`Malformed CSV: ${detail}`, 'E_CSV');
}

// Rows are buffered into chunks of about this many characters to keep write calls few.
const CHUNK_CHARS = 1 << 16;

/**
 * Writes a header and rows to `path` atomically: everything goes to `path + '.tmp'`, is synced
 * to disk, then renamed over `path`, so a killed process never leaves a half-written file.
 * Accepts sync or async iterables so callers can stream rows straight from the catalog.
 * @throws ConfigError when a row's length differs from the header's.
 */
export async function writeCsvFile(
  path: string,
  header: readonly string[],
  rows: Iterable<readonly CsvValue[]> | AsyncIterable<readonly CsvValue[]>,
): Promise<void> {
  const tmp = path + '.tmp';
  const fh = await open(tmp, 'w');
  try {
    await writeRows(fh, header, rows);
    await fh.sync();
    await fh.close();
  } catch (error) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  await rename(tmp, path);
}

type FileHandle = Awaited<ReturnType<typeof open>>;

async function writeRows(
  fh: FileHandle,
  header: readonly string[],
  rows: Iterable<readonly CsvValue[]> | AsyncIterable<readonly CsvValue[]>,
): Promise<void> {
  let buf = csvRow(header);
  let index = 0;
  for await (const row of rows) {
    if (row.length !== header.length) {
      throw invalidOption(`csv rows[${index}].length`, `${header.length} (the header's length)`, row.length);
    }
    buf += csvRow(row);
    index++;
    if (buf.length >= CHUNK_CHARS) {
      await fh.write(buf);
      buf = '';
    }
  }
  if (buf.length > 0) await fh.write(buf);
}
