import { escapeHtml } from '../report/html.js';
import { abbreviate } from './fingerprint.js';
import type { Certificate, DownstreamSet } from './types.js';

/**
 * The certificate's printable section of report.html. Only what a shard merge reproduces is
 * shown (no creation time, run id or upstream digest, which differ between a merged and an
 * unsharded run of the same data): the full record is certificate.json.
 */

const int = new Intl.NumberFormat('en-US');
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

export function renderCertificateHtml(c: Certificate): string {
  const d = c.decision;
  const rule = d.decidedBy === 'verified' ? `verified alignment score ≥ ${d.threshold} (${d.verifier})` : `cosine ≥ ${d.threshold} (no alignment)`;
  const up = c.upstream;
  return `<section class="certificate">
<h2>Certificate</h2>
<p class="meta">neardup ${escapeHtml(c.neardup)} · model <code>${escapeHtml(c.model.id)}</code>, weights sha256 <code>${escapeHtml(abbreviate(c.model.sha256, 16))}</code></p>
<p class="meta">Decision: ${escapeHtml(rule)}, among the ${d.k} nearest downstream images at cosine ≥ ${d.floor}; byte-identical copies always; a reviewer's decision overrides the model's.</p>
<table>
<thead><tr><th>Downstream set</th><th>Images</th><th>Contaminated</th><th>By a reviewer</th><th>Share</th><th>Share, 95% precision interval</th><th>Fingerprint</th></tr></thead>
<tbody>
${c.downstream.sets.map(setRow).join('\n')}
</tbody>
</table>
<p>Upstream: ${int.format(up.images)} images (${int.format(up.ok)} usable, ${int.format(up.errors)} errors), ${int.format(up.removed)} removed (${int.format(up.removedByHuman)} decided by a reviewer).</p>
<p>${estimateText(c)}</p>
${c.complete ? '' : '<p class="warn">Incomplete: some images were still pending (not decoded) when this was written.</p>\n'}<p class="note">Share: contaminated images (with at least one removed upstream copy) over the set's usable images. Fingerprint: SHA-256 over the set's sorted (key, content hash) pairs, with the keys of unusable files hashed apart; full digests, the upstream side's included, are in certificate.json. Check them against the data with <code>neardup certificate --check certificate.json</code>.</p>
</section>`;
}

function setRow(s: DownstreamSet): string {
  const interval = s.shareInterval ? `${pct(s.shareInterval[0])} – ${pct(s.shareInterval[1])}` : '—';
  const errors = s.errors > 0 ? ` (${int.format(s.errors)} errors)` : '';
  const cells = [
    `<td class="key">${escapeHtml(s.source)}</td>`,
    `<td class="num">${int.format(s.images)}${errors}</td>`,
    `<td class="num">${int.format(s.contaminated.images)}</td>`,
    `<td class="num">${int.format(s.contaminated.byHuman)}</td>`,
    `<td class="num">${pct(s.share)}</td>`,
    `<td class="num">${interval}</td>`,
    `<td class="key">${escapeHtml(abbreviate(s.fingerprint?.sha256))}</td>`,
  ];
  return `<tr>${cells.join('')}</tr>`;
}

function estimateText(c: Certificate): string {
  const e = c.estimate;
  if (!e || e.precision === null) return `Precision estimate: none. ${escapeHtml(c.estimateNote)}.`;
  const interval = e.interval ? ` (95% interval ${e.interval[0].toFixed(3)} – ${e.interval[1].toFixed(3)})` : '';
  return `Precision estimate: ${e.precision.toFixed(3)}${interval}, ${e.falseMatches.toFixed(1)} false matches expected.`;
}

/**
 * Print rules for the whole page: it prints as a document (no shadows, no interactive controls,
 * no card or table split across pages) and the certificate starts on a page of its own.
 */
export const CERTIFICATE_CSS = `
.certificate .warn { color: #9a3412; font-weight: 600; }
@media print {
  @page { margin: 14mm; }
  body { margin: 0; font-size: 10pt; color: #000; }
  .certificate { break-before: page; }
  h2 { break-after: avoid; }
  table, tr, .pair, figure, svg { break-inside: avoid; }
  th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .pairs, .pairs.overlays { grid-template-columns: repeat(2, 1fr); }
  button, input, select, textarea, nav, [data-noprint] { display: none !important; }
}
`;
