/**
 * The static HTML contamination report: one self-contained page with inline CSS and SVG, no
 * scripts and no external resources, so it can be mailed or archived next to a purge plan.
 * Every caller-supplied string (file names especially) is escaped; thumbnails and overlays are
 * accepted only as base64 image data URIs.
 */
import { createHash } from 'node:crypto';
import { invalidOption } from '../errors.js';
import type { ReviewSection } from './review.js';
import { REVIEW_CSS, REVIEW_SCRIPT } from './review-app.js';
import { CERTIFICATE_CSS, renderCertificateHtml } from '../certificate/html.js';
import type { Certificate } from '../certificate/types.js';

/** One decided match: an upstream image that copies a downstream (test-set) image. */
export interface ReportPair {
  upstream: string;
  downstream: string;
  downstreamSource: string;
  score: number;
  view: string;
  reason: string;
  /** `data:image/jpeg;base64,...` made by the caller; anything else is not rendered. */
  upstreamThumb?: string;
  /** `data:image/jpeg;base64,...` made by the caller; anything else is not rendered. */
  downstreamThumb?: string;
  /** What each side's source says about the image (label, class, ...), shown as small text. */
  upstreamMeta?: Readonly<Record<string, string | number>>;
  downstreamMeta?: Readonly<Record<string, string | number>>;
  /** The verify stage's score (absent or null: not verified, e.g. exact duplicates, `--verify off`). */
  verifyScore?: number | null;
  /**
   * The downstream image warped onto the upstream one by the alignment found (report/overlay.ts),
   * as a base64 image data URI; absent when the pair has no transform or a file is unreadable.
   */
  overlay?: string;
  /** 'human': a reviewer accepted this pair (purge --decisions); absent or 'model': the threshold decided. */
  decidedBy?: 'human' | 'model';
}

/** Everything the report shows; the renderer computes only bins, sorting and percentages. */
export interface ReportData {
  title: string;
  generatedAt: string;
  modelId: string;
  threshold: number;
  counts: { upstream: number; downstream: number; matched: number; kept: number; errors: number };
  /** Contamination per downstream set, rendered in the given order. */
  perDownstream: { source: string; images: number; contaminated: number; matches: number }[];
  /** Contamination per downstream label (CIFAR label, class folder), in the given order; absent or empty: no table. */
  contaminationByLabel?: { label: string | number; images: number; contaminated: number }[];
  /** Decided matches, in any order: the report sorts them by score, descending. */
  pairs: ReportPair[];
  /** Every candidate score above the search floor, matched or not (for the histogram). */
  candidateScores: number[];
  errorsByReason: { reason: string; count: number }[];
  /** Cap on rendered pairs (default 500); the page says how many were left out. */
  maxPairs?: number;
  /**
   * The review view (review.ts wrote its data file and pictures beside the page): when present
   * the page carries its script; absent, the page has no script at all.
   */
  review?: ReviewSection;
  /** The run's certificate.json: rendered as a printable section (src/certificate/html.ts). */
  certificate?: Certificate;
}

/** One histogram bin `[from, to)`, split at the threshold (the last bin also holds 1.0 and above). */
export interface HistogramBin {
  from: number;
  to: number;
  below: number;
  matched: number;
}

/** Default cap on rendered pairs: beyond this the page gets slow and nobody scrolls that far. */
export const DEFAULT_MAX_PAIRS = 500;

/** Histogram bin width, as bins per unit of score so bin edges stay exact integers. */
const BINS_PER_UNIT = 50;

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values alike. */
export function escapeHtml(s: string): string {
  return String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

const int = new Intl.NumberFormat('en-US');
const fmtInt = (n: number): string => int.format(n);
const fmtScore = (n: number): string => (Number.isFinite(n) ? n.toFixed(4) : String(n));

/** Percentage with two decimals; '—' when there is nothing to divide by. */
export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(2)}%` : '—';
}

// Integer bin index on a 0.02 grid; the epsilon keeps 0.9 (= 44.999… × 0.02) in bin 45.
const binIndex = (s: number): number => Math.floor(s * BINS_PER_UNIT + 1e-9);

/**
 * Bins scores on a 0.02 grid from the bin holding the lowest score (but not below -1) up to 1.0.
 * Scores outside the range land in the first or last bin. A score counts as matched when it is
 * at or above the threshold. Non-finite scores are ignored.
 */
export function scoreBins(scores: readonly number[], threshold: number): HistogramBin[] {
  let min = Infinity;
  for (const s of scores) if (Number.isFinite(s) && s < min) min = s;
  if (min === Infinity) return [];
  // Cosine scores live in [-1, 1]; clamping keeps a stray value from allocating millions of bins.
  const lo = Math.min(Math.max(binIndex(min), -BINS_PER_UNIT), BINS_PER_UNIT - 1);
  const bins: HistogramBin[] = [];
  for (let i = lo; i < BINS_PER_UNIT; i++) {
    bins.push({ from: i / BINS_PER_UNIT, to: (i + 1) / BINS_PER_UNIT, below: 0, matched: 0 });
  }
  for (const s of scores) {
    if (!Number.isFinite(s)) continue;
    const bin = bins[Math.min(Math.max(binIndex(s), lo), BINS_PER_UNIT - 1) - lo];
    if (s >= threshold) bin.matched++;
    else bin.below++;
  }
  return bins;
}

/**
 * Renders the whole report as one HTML document.
 * @throws ConfigError when `maxPairs` is not a non-negative integer.
 */
export function renderReport(data: ReportData): string {
  const maxPairs = data.maxPairs ?? DEFAULT_MAX_PAIRS;
  if (!Number.isInteger(maxPairs) || maxPairs < 0) {
    throw invalidOption('report.maxPairs', 'a non-negative integer', maxPairs);
  }
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    renderHead(data.title, data.review !== undefined),
    '<body>',
    renderSummary(data),
    renderContamination(data.perDownstream) + renderLabelContamination(data.contaminationByLabel),
    data.certificate ? renderCertificateHtml(data.certificate) : '',
    renderHistogram(data.candidateScores, data.threshold),
    data.review ? renderReview(data.review, data.threshold) : '',
    renderPairs(data.pairs, maxPairs),
    renderErrors(data.errorsByReason),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// The CSP is belt and braces: even a missed escape cannot load or run anything. With the review
// view the page runs its own script (by hash) and loads review-data.js and thumbs/ beside it.
function renderHead(title: string, review: boolean): string {
  const csp = review
    ? `default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; script-src 'self' '${scriptHash(REVIEW_SCRIPT)}'`
    : "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
  return `<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${escapeHtml(title)}</title>
<style>${CSS}${CERTIFICATE_CSS}${review ? REVIEW_CSS : ''}</style>
</head>`;
}

const scriptHash = (source: string) => `sha256-${createHash('sha256').update(source).digest('base64')}`;

/**
 * The review view: every match and near miss, a page at a time, decided with the keyboard
 * (review-app.ts). The pairs come from review-data.js, the pictures from thumbs/.
 */
function renderReview(r: ReviewSection, threshold: number): string {
  const keys = [['j', '↓', '→'], ['k', '↑', '←']].map((k) => k.map((x) => `<kbd>${x}</kbd>`).join(' '));
  return `<h2>Review (${fmtInt(r.pairs)} pairs: ${fmtInt(r.matches)} matches, ${fmtInt(r.nearMisses)} near misses)</h2>
<section id="review">
<p class="note">Every match and every near miss (deciding score within ${r.margin} below the threshold ${fmtScore(threshold)})${r.omitted ? ` (the ${fmtInt(r.omitted)} lowest-scoring near misses are left out to keep the page quick; candidates.csv lists them)` : ''}, ${r.pageSize} to a page.
Keys: ${keys[0]} next pair, ${keys[1]} previous, <kbd>a</kbd> accept (it is a copy), <kbd>r</kbd> reject (not a copy), <kbd>u</kbd> clear,
<kbd>n</kbd>/<kbd>p</kbd> next/previous page, <kbd>1</kbd>–<kbd>4</kbd> filter. Decisions stay in this browser until exported:
run <code>neardup purge --decisions decisions.csv</code> with the same --db to apply them.</p>
<div class="rv-bar"><button type="button" data-filter="all">1 all</button><button type="button" data-filter="matches">2 matches</button>` +
    `<button type="button" data-filter="near">3 near misses</button><button type="button" data-filter="undecided">4 undecided</button>` +
    `<button type="button" data-action="prev-page">◀ page</button><button type="button" data-action="next-page">page ▶</button>` +
    `<button type="button" data-action="export">Export decisions.csv</button></div>
<p class="rv-status">Loading the review (needs ${escapeHtml(r.dataFile)} and thumbs/ beside this page, and scripts enabled)…</p>
<div class="rv-list"></div>
</section>
<script src="${escapeHtml(r.dataFile)}"></script>
<script>${REVIEW_SCRIPT}</script>`;
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d2329; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; border-bottom: 1px solid #d8dde3; padding-bottom: 4px; }
.meta { color: #57606a; margin: 0 0 12px; }
.stats { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; }
.stats div { border: 1px solid #d8dde3; border-radius: 6px; padding: 6px 12px; }
.stats dt { font-size: 12px; color: #57606a; }
.stats dd { margin: 0; font-size: 18px; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d8dde3; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 600; }
.key { white-space: pre-wrap; word-break: break-all; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -1px; }
.note { color: #57606a; font-size: 12px; }
.pairs { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 12px; }
.pairs.overlays { grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); }
.pair { border: 1px solid #d8dde3; border-radius: 6px; padding: 8px; }
.pair header { font-variant-numeric: tabular-nums; margin-bottom: 6px; }
.pair .sides { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 8px; }
.pair .reason { margin: 0 0 6px; color: #57606a; font-size: 12px; }
.swatch { display: inline-block; width: 9px; height: 9px; vertical-align: 0; margin-right: 2px; }
.pair figure { margin: 0; min-width: 0; }
.pair img, .pair .nothumb { width: 160px; height: 160px; object-fit: contain; background: #f3f5f7; display: block; }
.pair .nothumb { line-height: 160px; text-align: center; color: #8c959f; font-size: 12px; }
.pair figcaption { margin-top: 4px; }
.imeta { color: #57606a; font-size: 11px; word-break: break-all; }
.empty { color: #57606a; }
.pair .human { background: #d1242f; color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; }
`;

function renderSummary(data: ReportData): string {
  const c = data.counts;
  const stats: [string, string][] = [
    ['Upstream images', fmtInt(c.upstream)],
    ['Downstream images', fmtInt(c.downstream)],
    ['Matched', fmtInt(c.matched)],
    ['Kept', fmtInt(c.kept)],
    ['Errors', fmtInt(c.errors)],
  ];
  const items = stats.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('');
  return `<h1>${escapeHtml(data.title)}</h1>
<p class="meta">Model <code>${escapeHtml(data.modelId)}</code> · threshold ${fmtScore(data.threshold)} · generated ${escapeHtml(data.generatedAt)}</p>
<dl class="stats">${items}</dl>`;
}

function renderContamination(rows: ReportData['perDownstream']): string {
  const head = '<h2>Contamination per downstream set</h2>';
  if (rows.length === 0) return `${head}\n<p class="empty">No downstream sets.</p>`;
  const body = rows.map((r) => contaminationRow(escapeHtml(r.source), r)).join('\n');
  const total = rows.reduce(
    (t, r) => ({ images: t.images + r.images, contaminated: t.contaminated + r.contaminated, matches: t.matches + r.matches }),
    { images: 0, contaminated: 0, matches: 0 },
  );
  const foot = rows.length > 1 ? `<tfoot>${contaminationRow('All sets', total)}</tfoot>` : '';
  return `${head}
<table class="contamination">
<thead><tr><th>Downstream set</th><th>Images</th><th>Contaminated images</th><th>% contaminated</th><th>Matches</th></tr></thead>
<tbody>
${body}
</tbody>${foot}
</table>`;
}

function renderLabelContamination(rows: ReportData['contaminationByLabel']): string {
  if (!rows || rows.length === 0) return '';
  const body = rows.map((r) => `<tr><td class="key">${escapeHtml(String(r.label))}</td><td class="num">${fmtInt(r.images)}</td>` +
    `<td class="num">${fmtInt(r.contaminated)}</td><td class="num">${percent(r.contaminated, r.images)}</td></tr>`);
  return `\n<h2>Contamination per downstream label</h2>
<table class="by-label">
<thead><tr><th>Label</th><th>Images</th><th>Contaminated images</th><th>% contaminated</th></tr></thead>
<tbody>
${body.join('\n')}
</tbody>
</table>`;
}

function contaminationRow(label: string, r: { images: number; contaminated: number; matches: number }): string {
  return `<tr><td>${label}</td><td class="num">${fmtInt(r.images)}</td><td class="num">${fmtInt(r.contaminated)}</td>` +
    `<td class="num">${percent(r.contaminated, r.images)}</td><td class="num">${fmtInt(r.matches)}</td></tr>`;
}

const COLOR_MATCHED = '#d1495b';
const COLOR_BELOW = '#8fa8c8';
const SVG = { width: 760, height: 270, left: 16, right: 16, top: 28, bottom: 40 };

function renderHistogram(scores: readonly number[], threshold: number): string {
  const head = '<h2>Candidate score histogram</h2>';
  const bins = scoreBins(scores, threshold);
  if (bins.length === 0) return `${head}\n<p class="empty">No candidate scores.</p>`;
  const matched = bins.reduce((n, b) => n + b.matched, 0);
  const total = bins.reduce((n, b) => n + b.matched + b.below, 0);
  return `${head}
<p class="legend">${fmtInt(total)} candidates, ${fmtInt(matched)} at or above the threshold.
<span style="background:${COLOR_MATCHED}"></span>at/above threshold<span style="background:${COLOR_BELOW}"></span>below threshold</p>
${histogramSvg(bins, threshold)}
<p class="note">Bins of 0.02. Bar heights are log-scaled so rare high scores stay visible; exact counts are labelled.</p>`;
}

function histogramSvg(bins: readonly HistogramBin[], threshold: number): string {
  const plotW = SVG.width - SVG.left - SVG.right;
  const plotH = SVG.height - SVG.top - SVG.bottom;
  const barW = plotW / bins.length;
  const totals = bins.map((b) => b.matched + b.below);
  const maxCount = Math.max(...totals);
  // One orientation for all labels (vertical when the longest does not fit across a bar), and
  // headroom above the tallest bar so its label stays inside the plot.
  const maxChars = fmtInt(maxCount).length;
  const rotated = barW < LABEL_CHAR_PX * maxChars + 4;
  const barMaxH = plotH - (rotated ? LABEL_CHAR_PX * maxChars + 6 : 14);
  const height = (n: number): number => (n > 0 ? (barMaxH * Math.log1p(n)) / Math.log1p(maxCount) : 0);
  const baseY = SVG.top + plotH;
  const parts = bins.map((b, i) => barSvg(b, SVG.left + i * barW, barW, baseY, height, rotated));
  const lo = bins[0].from;
  const span = bins[bins.length - 1].to - lo;
  const tx = SVG.left + plotW * Math.min(1, Math.max(0, (threshold - lo) / span));
  return `<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="${SVG.width}" height="${SVG.height}" viewBox="0 0 ${SVG.width} ${SVG.height}" font-family="system-ui, sans-serif" font-size="10" role="img" aria-label="Candidate score histogram">
<line x1="${SVG.left}" y1="${baseY}" x2="${SVG.left + plotW}" y2="${baseY}" stroke="#57606a"/>
${parts.join('\n')}
${axisLabels(bins, barW, baseY)}
<line class="threshold" x1="${r1(tx)}" y1="${SVG.top - 14}" x2="${r1(tx)}" y2="${baseY}" stroke="#1d2329" stroke-width="1.5" stroke-dasharray="4 3"/>
<text x="${r1(tx)}" y="${SVG.top - 18}" text-anchor="middle" font-size="11">threshold ${fmtScore(threshold)}</text>
</svg>`;
}

/** Rough width of one digit at font-size 10, for label fitting. */
const LABEL_CHAR_PX = 6;

const r1 = (n: number): string => (Math.round(n * 10) / 10).toString();

function barSvg(
  b: HistogramBin, x: number, w: number, baseY: number, height: (n: number) => number, rotated: boolean,
): string {
  const n = b.matched + b.below;
  const h = height(n);
  const belowH = n > 0 ? (h * b.below) / n : 0;
  const gap = w > 3 ? 1 : 0;
  const rect = (y: number, hh: number, color: string): string =>
    hh > 0 ? `<rect x="${r1(x + gap / 2)}" y="${r1(y)}" width="${r1(w - gap)}" height="${r1(hh)}" fill="${color}"/>` : '';
  const title = `<title>${b.from.toFixed(2)}–${b.to.toFixed(2)}: ${fmtInt(n)} (${fmtInt(b.matched)} at/above threshold)</title>`;
  return `<g class="bin">${title}${rect(baseY - belowH, belowH, COLOR_BELOW)}${rect(baseY - h, h - belowH, COLOR_MATCHED)}${countLabel(n, x + w / 2, baseY - h - 3, rotated)}</g>`;
}

function countLabel(n: number, cx: number, y: number, rotated: boolean): string {
  if (n === 0) return '';
  if (!rotated) return `<text x="${r1(cx)}" y="${r1(y)}" text-anchor="middle">${fmtInt(n)}</text>`;
  return `<text x="${r1(cx + 3)}" y="${r1(y)}" transform="rotate(-90 ${r1(cx + 3)} ${r1(y)})">${fmtInt(n)}</text>`;
}

function axisLabels(bins: readonly HistogramBin[], barW: number, baseY: number): string {
  const every = Math.max(1, Math.ceil(bins.length / 10));
  const labels: string[] = [];
  const lo = Math.round(bins[0].from * BINS_PER_UNIT);
  for (let i = 0; i <= bins.length; i += every) labels.push(tick(SVG.left + i * barW, baseY, (lo + i) / BINS_PER_UNIT));
  if (bins.length % every !== 0) labels.push(tick(SVG.left + bins.length * barW, baseY, 1));
  return labels.join('\n');
}

function tick(x: number, baseY: number, value: number): string {
  return `<line x1="${r1(x)}" y1="${baseY}" x2="${r1(x)}" y2="${baseY + 4}" stroke="#57606a"/>` +
    `<text x="${r1(x)}" y="${baseY + 16}" text-anchor="middle">${value.toFixed(2)}</text>`;
}

// NaN scores sort last instead of making the comparator inconsistent.
const sortKey = (s: number): number => (Number.isNaN(s) ? -Infinity : s);
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Pairs by score descending; ties broken by keys so the page is deterministic. */
export function sortPairs(pairs: readonly ReportPair[]): ReportPair[] {
  return [...pairs].sort(
    (a, b) => sortKey(b.score) - sortKey(a.score) || byText(a.downstream, b.downstream) || byText(a.upstream, b.upstream),
  );
}

function renderPairs(pairs: readonly ReportPair[], maxPairs: number): string {
  const head = `<h2>Matched pairs (${fmtInt(pairs.length)})</h2>`;
  if (pairs.length === 0) return `${head}\n<p class="empty">No matched pairs.</p>`;
  const shown = sortPairs(pairs).slice(0, maxPairs);
  const omitted = pairs.length - shown.length;
  const note = omitted > 0
    ? `<p class="omitted">${fmtInt(omitted)} more pairs omitted (showing the top ${fmtInt(shown.length)} by score).</p>`
    : '';
  const cls = shown.some(hasOverlay) ? 'pairs overlays' : 'pairs';
  return `${head}\n<div class="${cls}">\n${shown.map(pairCard).join('\n')}\n</div>${note ? '\n' + note : ''}`;
}

const hasOverlay = (p: ReportPair): boolean => p.overlay !== undefined && SAFE_THUMB.test(p.overlay);

/**
 * A pair: the cosine (bold, what pairs are sorted by), the view and, when verified, the verified
 * score; the reason on a line of its own; the two thumbnails and, for a verified pair with an
 * overlay, the aligned overlay as a third picture.
 */
function pairCard(p: ReportPair): string {
  const verified = typeof p.verifyScore === 'number' ? ` · verified ${fmtVerified(p.verifyScore)}` : '';
  const overlay = hasOverlay(p) ? overlayFigure(p.overlay!) : '';
  const human = p.decidedBy === 'human' ? ' · <span class="human">accepted by reviewer</span>' : '';
  return `<article class="pair${p.decidedBy === 'human' ? ' human' : ''}"><header><b>${fmtScore(p.score)}</b> · view ${escapeHtml(p.view)}${verified}${human}</header>` +
    `<p class="reason">${escapeHtml(p.reason)}</p>` +
    `<div class="sides">${side('upstream', p.upstream, p.upstreamThumb, p.upstreamMeta)}` +
    `${side(`downstream · ${p.downstreamSource}`, p.downstream, p.downstreamThumb, p.downstreamMeta)}${overlay}</div></article>`;
}

const fmtVerified = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : String(n));

/** The colours are overlay.ts's: upstream in magenta, the warped downstream in green, grey where they agree. */
function overlayFigure(uri: string): string {
  const swatch = (color: string) => `<span class="swatch" style="background:${color}"></span>`;
  return `<figure class="overlay"><img src="${uri}" alt="downstream image warped onto the upstream image" width="160" height="160" loading="lazy" decoding="async">` +
    `<figcaption><span class="note">overlay (aligned)</span><br><span class="imeta">${swatch('#8c8c8c')}grey: both agree · ` +
    `${swatch('#c000c0')}magenta: upstream only · ${swatch('#00b000')}green: downstream only · dimmed: outside the aligned copy</span></figcaption></figure>`;
}

// Only base64 image data URIs: a caller bug must not turn into a remote fetch or script URL.
const SAFE_THUMB = /^data:image\/(?:jpeg|png|webp|gif);base64,[A-Za-z0-9+/]+={0,2}$/;

/** `label_name: cat, label: 3`: key order as the source wrote it. */
export function metaText(meta: Readonly<Record<string, string | number>> | undefined): string {
  return meta ? Object.entries(meta).map(([k, v]) => `${k}: ${String(v)}`).join(', ') : '';
}

function side(label: string, key: string, thumb: string | undefined, meta?: Readonly<Record<string, string | number>>): string {
  const img = thumb !== undefined && SAFE_THUMB.test(thumb)
    ? `<img src="${thumb}" alt="" width="160" height="160" loading="lazy" decoding="async">`
    : '<div class="nothumb">no preview</div>';
  const text = metaText(meta);
  const metaLine = text ? `<br><span class="imeta">${escapeHtml(text)}</span>` : '';
  return `<figure>${img}<figcaption><span class="note">${escapeHtml(label)}</span><br><span class="key">${escapeHtml(key)}</span>${metaLine}</figcaption></figure>`;
}

function renderErrors(rows: ReportData['errorsByReason']): string {
  const head = '<h2>Errors by reason</h2>';
  if (rows.length === 0) return `${head}\n<p class="empty">No errors.</p>`;
  const sorted = [...rows].sort((a, b) => b.count - a.count || byText(a.reason, b.reason));
  const body = sorted.map((r) => `<tr><td class="key">${escapeHtml(r.reason)}</td><td class="num">${fmtInt(r.count)}</td></tr>`);
  const total = rows.reduce((n, r) => n + r.count, 0);
  return `${head}
<table class="errors">
<thead><tr><th>Reason</th><th>Images</th></tr></thead>
<tbody>
${body.join('\n')}
</tbody><tfoot><tr><td>Total</td><td class="num">${fmtInt(total)}</td></tr></tfoot>
</table>`;
}
