import { parquetWriteFile, type SchemaElement } from 'hyparquet-writer';

/** One row: the image (null for a missing one) and any scalar or binary columns beside it. */
export type ImageRow = { image: Buffer | null } & Record<string, Buffer | string | number | boolean | null>;

export interface ImageParquetOptions {
  /** Store images as a Hugging Face image struct `{bytes, path}` instead of a plain binary column. */
  struct?: boolean;
  /** Name of the image column (default `image`). */
  column?: string;
  /** Rows per row group (default: everything in one group). */
  rowGroupSize?: number;
  /** Target page size in bytes (hyparquet-writer's default is 1 MiB). */
  pageSize?: number;
}

/**
 * Write a parquet file of images, Hugging Face datasets style — test fixture maker for the parquet
 * source. Other columns are typed from their first non-null value: Buffer → binary, string →
 * UTF8, boolean, integer → INT32, other numbers → DOUBLE. All columns are nullable.
 */
export function writeImageParquet(path: string, rows: ImageRow[], options: ImageParquetOptions = {}): void {
  const column = options.column ?? 'image';
  const others = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'image');
  const schema: SchemaElement[] = [{ name: 'root', num_children: 1 + others.length }];
  if (options.struct) {
    schema.push(
      { name: column, repetition_type: 'OPTIONAL', num_children: 2 },
      { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
      { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    );
  } else {
    schema.push({ name: column, type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' });
  }
  for (const name of others) {
    const sample = rows.map((r) => r[name]).find((v) => v !== null && v !== undefined);
    const element: SchemaElement = Buffer.isBuffer(sample) ? { name, type: 'BYTE_ARRAY' }
      : typeof sample === 'string' ? { name, type: 'BYTE_ARRAY', converted_type: 'UTF8' }
      : typeof sample === 'boolean' ? { name, type: 'BOOLEAN' }
      : typeof sample === 'number' && Number.isInteger(sample) ? { name, type: 'INT32' }
      : { name, type: 'DOUBLE' };
    schema.push({ ...element, repetition_type: 'OPTIONAL' });
  }
  const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  const columnData = [
    {
      name: column,
      data: rows.map((r, i) => (r.image === null ? null : options.struct ? { bytes: u8(r.image), path: `${i}.img` } : u8(r.image))),
    },
    ...others.map((name) => ({ name, data: rows.map((r) => { const v = r[name]; return v === undefined || v === null ? null : Buffer.isBuffer(v) ? u8(v) : v; }) })),
  ];
  parquetWriteFile({
    filename: path,
    columnData,
    schema,
    rowGroupSize: options.rowGroupSize ?? Math.max(1, rows.length),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });
}
