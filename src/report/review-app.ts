/**
 * The review view's script, run in the browser from report.html. It is written here as a
 * function (so tsc checks its syntax and it ships in dist) and embedded as its source text; it
 * must not use anything outside itself. The project compiles without DOM types, hence `any` for
 * browser objects.
 *
 * Data: window.NEARDUP_REVIEW from review-data.js (see review.ts ReviewData). Decisions made in
 * the page are kept in localStorage under the run's key, over the ones recorded in the catalog,
 * and exported as decisions.csv (upstream,downstream,decision) for `neardup purge --decisions`.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
export function reviewApp(win: any): void {
  const doc = win.document;
  const root = doc.getElementById('review');
  const data = win.NEARDUP_REVIEW;
  if (!root) return;
  const list = root.querySelector('.rv-list');
  const status = root.querySelector('.rv-status');
  if (!data) {
    status.textContent = 'review-data.js was not found beside report.html: keep report.html, review-data.js and thumbs/ together.';
    return;
  }
  const images: [string, string, string][] = data.images;
  const pairs: [number, number, number, number | null, string, number, string, string, string][] = data.pairs;
  const pageSize: number = data.pageSize;
  const storeKey = `neardup-review:${data.run}`;
  const keys = pairs.map((p) => `${images[p[0]]![0]}\u0000${images[p[1]]![0]}`);
  let saved: Record<string, string> = {};
  try {
    saved = JSON.parse(win.localStorage.getItem(storeKey) || '{}');
  } catch {
    saved = {};
  }
  const FILTERS: Record<string, (i: number) => boolean> = {
    all: () => true,
    matches: (i) => pairs[i]![5] === 1,
    near: (i) => pairs[i]![5] === 0,
    undecided: (i) => decisionOf(i) === '',
  };
  let filter = 'all';
  let order: number[] = [];
  let cur = 0;
  let shownPage = -1;

  function decisionOf(i: number): string {
    return saved[keys[i]!] ?? pairs[i]![6];
  }
  function esc(s: string): string {
    return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }
  function metaText(text: string): string {
    if (!text) return '';
    try {
      return Object.entries(JSON.parse(text)).map(([k, v]) => `${k}: ${String(v)}`).join(', ');
    } catch {
      return text;
    }
  }
  function picture(file: string, caption: string, key: string, meta: string): string {
    const img = file ? `<img src="${esc(file)}" alt="" width="96" height="96" loading="lazy" decoding="async">` : '<div class="nothumb">no preview</div>';
    const m = metaText(meta);
    return `<figure>${img}<figcaption><span class="note">${esc(caption)}</span>${key ? `<br><span class="key">${esc(key)}</span>` : ''}${m ? `<br><span class="imeta">${esc(m)}</span>` : ''}</figcaption></figure>`;
  }
  function badge(i: number): string {
    const d = decisionOf(i);
    const mine = saved[keys[i]!] !== undefined;
    if (d === 'a') return `<span class="rv-badge rv-accept">accepted${mine ? '' : ' (recorded)'}</span>`;
    if (d === 'r') return `<span class="rv-badge rv-reject">rejected${mine ? '' : ' (recorded)'}</span>`;
    return '<span class="rv-badge rv-open">undecided</span>';
  }
  function card(i: number, pos: number): string {
    const p = pairs[i]!;
    const up = images[p[0]]!;
    const down = images[p[1]]!;
    const verified = p[3] === null ? '' : ` · verified <b>${p[3].toFixed(3)}</b>`;
    const kind = p[5] === 1 ? '<span class="rv-kind rv-match">match</span>' : '<span class="rv-kind rv-near">near miss</span>';
    const overlay = p[8] ? picture(p[8], 'overlay (aligned): grey agrees, magenta upstream only, green downstream only', '', '') : '';
    return `<article class="rv-pair" id="rv-${pos}" data-i="${i}" data-upstream="${esc(up[0])}" data-downstream="${esc(down[0])}" tabindex="-1">` +
      `<header>#${pos + 1} ${kind} ${badge(i)} cosine ${p[2].toFixed(4)}${verified} · view ${esc(p[4])}</header>` +
      `<p class="reason">${esc(p[7])}</p><div class="sides">${picture(up[1], 'upstream', up[0], up[2])}${picture(down[1], 'downstream', down[0], down[2])}${overlay}</div></article>`;
  }
  function decidedCount(): number {
    let n = 0;
    for (const k in saved) if (saved[k]) n++;
    return n;
  }
  function updateStatus(): void {
    const pages = Math.max(1, Math.ceil(order.length / pageSize));
    const page = Math.floor(cur / pageSize) + 1;
    status.textContent = order.length === 0
      ? `No pairs in this filter (${filter}).`
      : `Pair ${cur + 1} of ${order.length} · page ${page} of ${pages} · ${decidedCount()} decided in this page (export decisions.csv, then neardup purge --decisions decisions.csv)`;
    for (const b of root.querySelectorAll('[data-filter]')) b.setAttribute('aria-pressed', String(b.dataset.filter === filter));
  }
  function render(): void {
    const page = Math.floor(cur / pageSize);
    if (page !== shownPage) {
      const start = page * pageSize;
      list.innerHTML = order.slice(start, start + pageSize).map((i, k) => card(i, start + k)).join('');
      shownPage = page;
    }
    const old = list.querySelector('.rv-pair.current');
    if (old) old.classList.remove('current');
    const el = doc.getElementById(`rv-${cur}`);
    if (el) {
      el.classList.add('current');
      el.focus({ preventScroll: true });
      el.scrollIntoView({ block: 'nearest' });
    }
    updateStatus();
  }
  function setFilter(name: string): void {
    filter = name;
    order = [];
    for (let i = 0; i < pairs.length; i++) if (FILTERS[name]!(i)) order.push(i);
    cur = 0;
    shownPage = -1;
    render();
  }
  function move(to: number): void {
    if (order.length === 0) return;
    cur = Math.min(order.length - 1, Math.max(0, to));
    render();
  }
  function decide(d: string): void {
    if (order.length === 0) return;
    const i = order[cur]!;
    if (d) saved[keys[i]!] = d;
    else delete saved[keys[i]!];
    try {
      win.localStorage.setItem(storeKey, JSON.stringify(saved));
    } catch {
      status.textContent = 'Could not save in this browser (localStorage full or disabled): export decisions.csv now.';
    }
    const el = doc.getElementById(`rv-${cur}`);
    if (el) el.querySelector('.rv-badge').outerHTML = badge(i);
    if (d) move(cur + 1);
    else updateStatus();
  }
  function csvField(s: string): string {
    return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }
  function exportCsv(): void {
    const all: Record<string, string> = {};
    pairs.forEach((p, i) => { if (p[6]) all[keys[i]!] = p[6]; });
    for (const k in saved) all[k] = saved[k]!;
    const rows = ['upstream,downstream,decision'];
    for (const k in all) {
      if (!all[k]) continue;
      const [u, d] = k.split('\u0000');
      rows.push(`${csvField(u!)},${csvField(d!)},${all[k] === 'a' ? 'accept' : 'reject'}`);
    }
    const url = win.URL.createObjectURL(new win.Blob([`${rows.join('\n')}\n`], { type: 'text/csv' }));
    const a = doc.createElement('a');
    a.href = url;
    a.download = 'decisions.csv';
    doc.body.appendChild(a);
    a.click();
    a.remove();
    win.setTimeout(() => win.URL.revokeObjectURL(url), 10_000);
  }
  const KEYS: Record<string, () => void> = {
    j: () => move(cur + 1), ArrowDown: () => move(cur + 1), ArrowRight: () => move(cur + 1),
    k: () => move(cur - 1), ArrowUp: () => move(cur - 1), ArrowLeft: () => move(cur - 1),
    n: () => move((Math.floor(cur / pageSize) + 1) * pageSize), PageDown: () => move((Math.floor(cur / pageSize) + 1) * pageSize),
    p: () => move((Math.floor(cur / pageSize) - 1) * pageSize), PageUp: () => move((Math.floor(cur / pageSize) - 1) * pageSize),
    a: () => decide('a'), r: () => decide('r'), u: () => decide(''),
    1: () => setFilter('all'), 2: () => setFilter('matches'), 3: () => setFilter('near'), 4: () => setFilter('undecided'),
  };
  doc.addEventListener('keydown', (e: any) => {
    if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName)) return;
    const action = KEYS[e.key];
    if (!action) return;
    e.preventDefault();
    action();
  });
  root.addEventListener('click', (e: any) => {
    const b = e.target.closest('button');
    if (!b) {
      const art = e.target.closest('.rv-pair');
      if (art) move(Number(art.id.slice(3)));
      return;
    }
    if (b.dataset.filter) setFilter(b.dataset.filter);
    else if (b.dataset.action === 'export') exportCsv();
    else if (b.dataset.action === 'next-page') KEYS.n!();
    else if (b.dataset.action === 'prev-page') KEYS.p!();
  });
  setFilter('all');
  // When the review became usable, in ms since navigation start (scripts/bench-report.ts reads it).
  root.dataset.readyMs = String(Math.round(win.performance.now()));
  root.dataset.ready = '1';
}

/** The script as embedded in report.html (its SHA-256 goes into the page's CSP). */
export const REVIEW_SCRIPT = `(${reviewApp.toString()})(window);`;

export const REVIEW_CSS = `
#review .rv-bar { position: sticky; top: 0; background: #fff; padding: 6px 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; border-bottom: 1px solid #d8dde3; }
#review button { font: inherit; padding: 2px 10px; border: 1px solid #afb8c1; border-radius: 6px; background: #f6f8fa; cursor: pointer; }
#review button[aria-pressed="true"] { background: #0969da; color: #fff; border-color: #0969da; }
#review .rv-status { color: #57606a; margin: 6px 0; font-variant-numeric: tabular-nums; }
#review .rv-list { display: grid; gap: 10px; }
#review .rv-pair { border: 1px solid #d8dde3; border-radius: 6px; padding: 8px; outline: none; }
#review .rv-pair.current { outline: 3px solid #0969da; outline-offset: 1px; background: #f6faff; }
#review .rv-pair header { font-variant-numeric: tabular-nums; margin-bottom: 4px; }
#review .rv-pair .sides { display: flex; flex-wrap: wrap; gap: 10px; }
#review .rv-pair figure { margin: 0; width: 200px; }
#review .rv-pair img, #review .rv-pair .nothumb { width: 96px; height: 96px; object-fit: contain; background: #f3f5f7; display: block; }
#review .rv-pair .nothumb { line-height: 96px; text-align: center; color: #8c959f; font-size: 11px; }
#review .rv-pair .reason { margin: 0 0 6px; color: #57606a; font-size: 12px; }
.rv-badge, .rv-kind { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; margin-right: 4px; }
.rv-match { background: #ffebe9; color: #a40e26; } .rv-near { background: #fff8c5; color: #7d4e00; }
.rv-accept { background: #d1242f; color: #fff; } .rv-reject { background: #1a7f37; color: #fff; } .rv-open { background: #eaeef2; color: #57606a; }
kbd { border: 1px solid #afb8c1; border-bottom-width: 2px; border-radius: 4px; padding: 0 4px; font-size: 12px; }
`;
