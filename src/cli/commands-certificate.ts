import { ConfigError, EXIT } from '../errors.js';
import type { CertificateCheck, KeyDifferences, SourceCheck } from '../certificate/check.js';
import { FLAGS as F } from './flags.js';
import { command } from './command.js';

export const certificateCommand = command('certificate', 'neardup certificate --check <certificate.json> [--upstream <source>...] [--downstream <source>...] [--db <file>] [--json]',
  'Check that the data is still what a certificate.json (written by audit, report and purge) describes: list its sources (or those given, one per certified source, in its order), hash every file as the scan does and compare each side\'s fingerprint. No model runs. When the run\'s catalog is still there (or --db names it) the first added, removed and changed keys are named. Exit 0 when both sides are the same, 12 when one differs.',
  [F.check, F.upstream, F.downstream, { ...F.db, description: "catalog of the certified run, naming the keys that differ (default: the one the certificate names)" }, { ...F.followLinks, description: 'follow symlinks that leave a source folder (default: as the certified run listed)' }, { ...F.json, description: 'print the check as JSON on stdout' }, F.help], false,
  async (o, _p, io) => {
    if (typeof o.check !== 'string') throw new ConfigError('Missing --check <certificate.json>: the certificate an audit wrote into its --out folder', 'E_CONFIG');
    const { checkCertificate } = await import('../certificate/check.js');
    const r = await checkCertificate(o.check, { upstream: o.upstream, downstream: o.downstream, db: o.db, followLinks: o.followLinks });
    io.stdout(o.json ? `${JSON.stringify(r, null, 2)}\n` : checkText(r));
    return r.same ? EXIT.ok : EXIT.dataChanged;
  });

const short = (sha: string) => sha.slice(0, 12);

/** The check as lines: a verdict, then each side and source with what differs. */
export function checkText(r: CertificateCheck): string {
  const lines = [`${r.certificate}: ${r.same ? 'the data is the same' : 'the data differs'}`];
  for (const side of r.sides) {
    lines.push(`${side.side}: ${side.same ? `same (${short(side.actual)})` : `differs (certified ${short(side.expected)}, now ${short(side.actual)})`}`);
    for (const s of side.sources) lines.push(...sourceLines(s));
  }
  return `${lines.join('\n')}\n`;
}

function sourceLines(s: SourceCheck): string[] {
  const name = `  ${s.source}${s.shard ? ` [shard ${s.shard}]` : ''}${s.given ? ` (read from ${s.checked})` : ''}`;
  if (s.same) return [`${name}: same, ${s.actual.ok} usable, ${s.actual.errors} unusable`];
  const head = `${name}: differs: usable ${s.expected.ok} → ${s.actual.ok}, unusable ${s.expected.errors} → ${s.actual.errors}`;
  return [head, ...(s.differences ? differenceLines(s.differences) : [`    ${s.note ?? ''}`])];
}

function differenceLines(d: KeyDifferences): string[] {
  const kind = (label: string, n: number, first: string[]) => (n === 0 ? [] : [`    ${n} ${label}: ${first.map((k) => JSON.stringify(k)).join(', ')}${n > first.length ? ', …' : ''}`]);
  return [...kind('changed', d.changed, d.firstChanged), ...kind('added', d.added, d.firstAdded), ...kind('removed', d.removed, d.firstRemoved)];
}
