/**
 * decisions.csv, exported by report.html's review view, into the catalog's reviews table
 * (`purge --decisions`, also on report and audit). The whole file is checked before anything is
 * written: one bad line and no decision is recorded, and the error names every bad line.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { parseCsvLines } from '../report/csv.js';
import type { Catalog } from '../state/catalog.js';
import { hashesByPath, recordReviews, REVIEW_DECISIONS, type ReviewDecision, type ReviewRow } from '../state/reviews.js';

export const DECISIONS_HEADER = Object.freeze(['upstream', 'downstream', 'decision'] as const);
/** Bad lines named in the error at most; the rest are counted. */
const MAX_LISTED = 20;

export interface DecisionsResult { file: string; recorded: number; accepted: number; rejected: number }

interface Line { line: number; upstream: string; downstream: string; decision: ReviewDecision }

/**
 * Check decisions.csv against the catalog and record its decisions (a pair decided again is
 * replaced). Keys are the paths matches.csv prints: the upstream one among the upstream
 * sources, the downstream one among the downstream sources, each a usable (decoded) image.
 * @throws ConfigError (E_DECISIONS) naming the bad lines; nothing is recorded then.
 */
export function applyDecisions(catalog: Catalog, file: string, upstreamIds: number[], downstreamIds: number[]): DecisionsResult {
  const { lines, problems } = readDecisions(file);
  const up = hashesByPath(catalog, upstreamIds, lines.map((l) => l.upstream));
  const down = hashesByPath(catalog, downstreamIds, lines.map((l) => l.downstream));
  const rows = new Map<string, ReviewRow & { line: number }>();
  for (const l of lines) {
    const u = up.get(l.upstream);
    const d = down.get(l.downstream);
    if (!u) problems.push(`line ${l.line}: unknown upstream image ${JSON.stringify(l.upstream)} (not a decoded image of the catalog's upstream sources)`);
    if (!d) problems.push(`line ${l.line}: unknown downstream image ${JSON.stringify(l.downstream)} (not a decoded image of the catalog's downstream sources)`);
    if (!u || !d) continue;
    const key = `${u}\0${d}`;
    const before = rows.get(key);
    if (before && before.decision !== l.decision) problems.push(`line ${l.line}: ${l.decision} contradicts line ${before.line} (${before.decision}) for the same pair`);
    rows.set(key, { upstreamHash: u, downstreamHash: d, decision: l.decision, upstream: l.upstream, downstream: l.downstream, line: l.line });
  }
  if (problems.length > 0) throw decisionsError(file, problems);
  const all = [...rows.values()];
  recordReviews(catalog, all);
  const accepted = all.filter((r) => r.decision === 'accept').length;
  return { file, recorded: all.length, accepted, rejected: all.length - accepted };
}

/** The file's well-formed lines and what is wrong with the others. */
function readDecisions(file: string): { lines: Line[]; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`Cannot read --decisions ${file}: ${(e as Error).message}`, 'E_DECISIONS', { cause: e });
  }
  let records;
  try {
    records = parseCsvLines(text);
  } catch (e) {
    throw new ConfigError(`--decisions ${file}: ${(e as Error).message}`, 'E_DECISIONS', { cause: e });
  }
  const [head, ...body] = records;
  if (!head || head.fields.join(',') !== DECISIONS_HEADER.join(',')) {
    throw decisionsError(file, [`line 1: expected the header ${DECISIONS_HEADER.join(',')} but found ${JSON.stringify(head?.fields.join(',') ?? '')}`]);
  }
  const lines: Line[] = [];
  const problems: string[] = [];
  for (const { fields, line } of body) {
    if (fields.length === 1 && fields[0] === '') continue;
    if (fields.length !== DECISIONS_HEADER.length) {
      problems.push(`line ${line}: expected 3 fields (upstream,downstream,decision) but found ${fields.length}`);
      continue;
    }
    const [upstream, downstream, decision] = fields as [string, string, string];
    if (!(REVIEW_DECISIONS as readonly string[]).includes(decision)) {
      problems.push(`line ${line}: expected decision ${REVIEW_DECISIONS.join(' or ')} but found ${JSON.stringify(decision)}`);
      continue;
    }
    lines.push({ line, upstream, downstream, decision: decision as ReviewDecision });
  }
  return { lines, problems };
}

function decisionsError(file: string, problems: string[]): ConfigError {
  const listed = problems.slice(0, MAX_LISTED).map((p) => `  ${p}`).join('\n');
  const more = problems.length > MAX_LISTED ? `\n  ... and ${problems.length - MAX_LISTED} more` : '';
  return new ConfigError(`--decisions ${file}: ${problems.length} bad line${problems.length === 1 ? '' : 's'}, nothing recorded:\n${listed}${more}`, 'E_DECISIONS');
}
