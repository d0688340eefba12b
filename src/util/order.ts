/**
 * Path order shared by SQL and JS: SQLite's BINARY collation compares UTF-8 bytes, JS `<`
 * compares UTF-16 code units, and the two disagree past the BMP. Outputs written from SQL and
 * from merged shards must sort identically, so JS sorts by UTF-8 bytes too.
 */
export const byPath = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** Scores as printed (6 decimals), so that printed ties order the same wherever they are sorted. */
export const printedScore = (s: number): number => Math.round(s * 1e6) / 1e6;
