// movierec web page: plain JS; its one library is uPlot (web/vendor/, the Runs chart). All API text goes through
// textContent / createElement; URLs are used only when they start with https://.
'use strict';
(() => {
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};
const safeUrl = (u) => (typeof u === 'string' && u.startsWith('https://') ? u : null);
const str = (v) => (v == null ? '' : String(v));
const yr = (m) => (m && Number.isFinite(m.year) ? ' (' + m.year + ')' : '');
// MovieLens lists a few films under a placeholder until their title is known ("Untitled
// Spider-Man Reboot (2017)"): said as such wherever a title is shown.
const placeholder = (m) => /^untitled\b/i.test(str(m && m.title));
const label = (m) => str(m && m.title) + yr(m) + (placeholder(m) ? ' (working title)' : '');
const num = (n) => Number(n).toLocaleString();
const genresOf = (m) => (Array.isArray(m.genres) ? m.genres.map(str).filter((g) => g && g !== '(no genres listed)') : []);
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const plural = (n, w) => num(n) + ' ' + w + (n === 1 ? '' : 's');
// "Drama, Romance · 16 ratings · avg 4.0 / 5"
const metaText = (m, mean) => [
  genresOf(m).join(', '),
  Number.isFinite(m.ratingCount) ? plural(m.ratingCount, 'rating') : '',
  mean && Number.isFinite(m.ratingMean) ? 'avg ' + m.ratingMean.toFixed(1) + ' / 5' : '',
].filter(Boolean).join(' · ');

// ---------- API + errors ----------
async function api(path, opts) {
  let res, body = null;
  try {
    res = await fetch(path, Object.assign({ headers: { Accept: 'application/json' } }, opts));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Error('Cannot reach the movierec server. Is it running?');
  }
  if (res.status === 204) return {};
  try { body = await res.json(); } catch (e) { if (e.name === 'AbortError') throw e; }
  if (!res.ok) {
    const msg = body && body.error && typeof body.error.message === 'string' && body.error.message;
    throw new Error(msg || 'Request failed (' + res.status + (res.statusText ? ' ' + res.statusText : '') + ').');
  }
  if (!body || typeof body !== 'object') throw new Error('The server sent an invalid response.');
  return body;
}
const errBox = $('error');
const showError = (msg) => errBox.replaceChildren(el('p', 'alert', msg));
const clearError = () => errBox.replaceChildren();

// ---------- tabs ----------
const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
function selectTab(tab, focus) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
  if (tab.id === 'tab-plot') plot.show(); else plot.hide();
  if (tab.id === 'tab-runs') runsView.show();
  remember({ tab: tab.id === 'tab-rec' ? null : tab.id.slice(4) }, false);
}
$('tabs').addEventListener('click', (e) => {
  const t = e.target.closest('[role="tab"]');
  if (t) selectTab(t, false);
});
$('tabs').addEventListener('keydown', (e) => {
  const i = tabs.indexOf(document.activeElement), n = tabs.length;
  const j = { ArrowRight: i + 1, ArrowLeft: i - 1 + n, Home: 0, End: n - 1 }[e.key];
  if (i < 0 || j == null) return;
  e.preventDefault();
  selectTab(tabs[j % n], true);
});

// ---------- recommender form ----------
const form = $('rec-form'), input = $('movie'), list = $('suggestions'), comboStatus = $('combo-status');
const modelSel = $('model'), indexSel = $('index'), kRange = $('k'), kOut = $('k-out');
const summary = $('summary'), alts = $('alternatives'), recList = $('rec-list'), results = $('results');
const state = { chosen: null, last: null, seq: 0, alts: [] };
// The URL keeps the tab and the last pick (`?movie=1&model=similar&index=exact&k=10&tab=plot`),
// so a result can be bookmarked or shared and Back returns to the previous pick.
let restoring = false;
function remember(changes, push) {
  if (restoring) return;
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(changes)) {
    if (v == null || v === '') url.searchParams.delete(k); else url.searchParams.set(k, String(v));
  }
  url.searchParams.sort();
  const now = new URL(location.href);
  now.searchParams.sort();
  if (url.href === now.href) return;
  if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
}
const touched = new Set();

function params() {
  return { k: Number(kRange.value), model: modelSel.value, index: indexSel.value };
}
// ---------- filters ----------
const yearMin = $('year-min'), yearMax = $('year-max'), minRatings = $('min-ratings');
function checkedGenres(box) {
  return Array.from(box.querySelectorAll('input:checked'), (c) => c.value);
}
// The API's filter object; empty fields are left out.
function filterBody() {
  const f = {};
  const only = checkedGenres($('genres-in')), never = checkedGenres($('genres-out'));
  if (only.length) f.genres = only;
  if (never.length) f.exclude_genres = never;
  const year = (i) => (i.value.trim() && Number.isInteger(Number(i.value)) ? Number(i.value) : null);
  if (year(yearMin) != null) f.year_min = year(yearMin);
  if (year(yearMax) != null) f.year_max = year(yearMax);
  const m = Number(minRatings.value);
  if (Number.isInteger(m) && m > 0) f.min_ratings = m;
  const n = Object.keys(f).length;
  $('filter-count').textContent = n ? '(' + n + ' active)' : '';
  return f;
}
function genreChecks(box, genres, prefix) {
  box.replaceChildren(...genres.map((g, i) => {
    const id = prefix + i, c = el('input'), l = el('label', 'check');
    Object.assign(c, { type: 'checkbox', id, value: g });
    l.htmlFor = id;
    l.append(c, ' ', str(g));
    return l;
  }));
}
function filtersChanged() {
  filterBody();
  if (state.last && state.last.query) recommend(state.last.query.movieId, input.value, state.alts, state.last.loose);
}
$('filters').addEventListener('change', filtersChanged);
$('filters-clear').addEventListener('click', () => {
  for (const c of $('filters').querySelectorAll('input[type=checkbox]')) c.checked = false;
  yearMin.value = yearMax.value = '';
  minRatings.value = '0';
  filtersChanged();
});
kRange.addEventListener('input', () => { kOut.textContent = kRange.value; });
// Neighbour-list models answer from lists computed exactly at training time: no index to pick.
// /api/health says which names are lists (collaborative depends on the model directory).
let listModels = new Set(['similar', 'collaborative', 'item_knn', 'ease']);
let chosenIndex = indexSel.value;
function syncIndex() {
  const lists = listModels.has(modelSel.value);
  if (lists && !indexSel.disabled) { chosenIndex = indexSel.value; indexSel.value = 'exact'; }
  if (!lists && indexSel.disabled) indexSel.value = chosenIndex;
  indexSel.disabled = lists;
  $('index-note').hidden = !lists;
}
syncIndex();
for (const c of [modelSel, indexSel, kRange]) {
  c.addEventListener('change', () => {
    touched.add(c.id);
    if (c === modelSel) syncIndex();
    // Re-run the current pick with the new settings.
    if (state.last && state.last.query) recommend(state.last.query.movieId, input.value, state.alts, state.last.loose);
  });
}

// Combobox (ARIA 1.2 pattern: focus stays in the input, aria-activedescendant marks the option).
let sugg = [], active = -1, timer = 0, searchCtl = null;
const isOpen = () => !list.hidden;
function openList() { list.hidden = false; input.setAttribute('aria-expanded', 'true'); }
function closeList() {
  list.hidden = true;
  input.setAttribute('aria-expanded', 'false');
  input.removeAttribute('aria-activedescendant');
  active = -1;
}
function cancelSearch() {
  clearTimeout(timer);
  if (searchCtl) searchCtl.abort();
  searchCtl = null;
}
async function search(q) {
  if (searchCtl) searchCtl.abort();
  const ctl = (searchCtl = new AbortController());
  try {
    const r = await api('/api/movies/search?q=' + encodeURIComponent(q) + '&limit=8', { signal: ctl.signal });
    if (ctl !== searchCtl || document.activeElement !== input) return;
    renderSuggestions(Array.isArray(r.results) ? r.results : []);
  } catch (e) {
    if (e.name === 'AbortError') return;
    closeList();
    showError(e.message);
  }
}
function renderSuggestions(items) {
  sugg = items.filter((m) => m && m.title != null);
  active = -1;
  input.removeAttribute('aria-activedescendant');
  list.replaceChildren();
  if (!sugg.length) {
    const li = el('li', 'empty', 'No matching titles. Press Enter to try anyway.');
    li.setAttribute('role', 'option');
    li.setAttribute('aria-disabled', 'true');
    list.append(li);
    openList();
    comboStatus.textContent = 'No matching titles.';
    return;
  }
  sugg.forEach((m, i) => {
    const li = el('li');
    li.id = 'sugg-' + i;
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', 'false');
    const sub = metaText(m, false);
    li.append(el('span', 'opt-title', label(m)), el('span', 'sub', sub));
    li.setAttribute('aria-label', label(m) + (sub ? ', ' + sub : ''));
    li.addEventListener('click', () => choose(i));
    list.append(li);
  });
  openList();
  comboStatus.textContent = plural(sugg.length, 'suggestion') + '. Use up and down arrows to review, Enter to choose.';
}
function setActive(i) {
  active = i;
  Array.from(list.children).forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
  if (i >= 0) {
    const li = list.children[i];
    input.setAttribute('aria-activedescendant', li.id);
    li.scrollIntoView({ block: 'nearest' });
  } else input.removeAttribute('aria-activedescendant');
}
function choose(i) {
  const m = sugg[i];
  if (!m) return;
  input.value = str(m.title);
  state.chosen = { movieId: m.movieId, title: input.value };
  closeList();
  submit();
}
list.addEventListener('mousedown', (e) => e.preventDefault()); // keep focus in the input
input.addEventListener('input', () => {
  state.chosen = null;
  clearTimeout(timer);
  const q = input.value.trim();
  if (!q) { cancelSearch(); closeList(); return; }
  timer = setTimeout(() => search(q), 150);
});
input.addEventListener('blur', () => closeList());
input.addEventListener('keydown', (e) => {
  if (e.isComposing) return;
  const n = sugg.length;
  switch (e.key) {
    case 'ArrowDown':
    case 'ArrowUp': {
      e.preventDefault();
      if (!isOpen()) {
        if (n) { openList(); setActive(e.key === 'ArrowDown' ? 0 : n - 1); }
        else if (input.value.trim()) search(input.value.trim());
        return;
      }
      if (!n) return;
      const d = e.key === 'ArrowDown' ? 1 : -1;
      setActive(active < 0 ? (d > 0 ? 0 : n - 1) : (active + d + n) % n);
      break;
    }
    case 'Enter':
      if (isOpen() && active >= 0) { e.preventDefault(); choose(active); }
      break;
    case 'Escape':
      if (isOpen()) { e.preventDefault(); cancelSearch(); closeList(); }
      break;
    case 'Tab':
      closeList();
      break;
  }
});

form.addEventListener('submit', (e) => { e.preventDefault(); submit(); });
function submit() {
  cancelSearch();
  closeList();
  const text = input.value.trim();
  if (!text) {
    showError('Type a movie title first.');
    input.focus();
    return;
  }
  const movie = state.chosen && state.chosen.title === input.value ? state.chosen.movieId : text;
  recommend(movie, input.value);
}

// `guessed`: a re-run (new settings or filters) of a movie that was a loose match, still a guess.
async function recommend(movie, typed, altFallback, guessed) {
  const p = params();
  const seq = ++state.seq;
  clearError();
  results.setAttribute('aria-busy', 'true');
  summary.replaceChildren(spinner(), 'Finding recommendations…');
  try {
    const r = await api('/api/recommendations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ movie, k: p.k, model: p.model, index: p.index, filter: filterBody() }),
    });
    if (seq !== state.seq) return;
    renderResults(r, p, typed, altFallback, guessed);
  } catch (e) {
    if (seq !== state.seq) return;
    showError(e.message);
    summary.textContent = 'No recommendations to show.';
    alts.hidden = true;
    recList.replaceChildren();
  } finally {
    if (seq === state.seq) results.removeAttribute('aria-busy');
  }
}
function spinner() {
  const s = el('span', 'spinner');
  s.setAttribute('aria-hidden', 'true');
  return s;
}

function renderResults(r, p, typed, altFallback, guessed) {
  const q = r.query && typeof r.query === 'object' ? r.query : null;
  const recs = Array.isArray(r.results) ? r.results.filter((m) => m && typeof m === 'object') : [];
  const model = str(r.model || p.model), index = str(r.index || p.index);
  // A loose match is a guess: never shown as certain, and what was typed stays in the box.
  const loose = !!q && (r.match === 'loose' || guessed === true);
  state.last = { query: q, results: recs, model, loose };
  if (q) {
    // Show what the (fuzzy) title resolved to, unless the user kept typing meanwhile.
    if (!loose && input.value === typed) input.value = str(q.title);
    state.chosen = loose ? null : { movieId: q.movieId, title: input.value };
    document.title = label(q) + ' · movierec';
  }
  const s = [];
  if (q) s.push(recs.length ? 'Because you picked ' : 'No recommendations found for ', el('strong', null, label(q)));
  else s.push('Results');
  // An approximate index says how good it is: its recall@10 against exact, measured at build time.
  const recall = typeof r.recall === 'number' && Number.isFinite(r.recall) && r.recall < 1
    ? ' (recall ≈ ' + r.recall.toFixed(2) + ')' : '';
  // A neighbour-list model answers from lists computed when it was trained: no index applies.
  const how = index === 'lists' ? ' model, from its lists' : ' model, ' + index + ' index';
  s.push(' — ' + model + how + recall + (recs.length ? ' · ' + plural(recs.length, 'movie') : ''));
  summary.replaceChildren(...s);

  let alt = Array.isArray(r.alternatives) ? r.alternatives.filter((m) => m && m.movieId != null) : [];
  // A pick from "Did you mean" is an id query with no alternatives: keep offering the siblings.
  if (!alt.length && altFallback) alt = altFallback.filter((m) => !q || m.movieId !== q.movieId);
  state.alts = alt;
  alts.replaceChildren();
  alts.hidden = !alt.length && !loose;
  alts.classList.toggle('loose', loose);
  if (loose) {
    alts.append('Showing results for ', el('strong', null, label(q)), ' — not what you meant?');
    if (alt.length) alts.append(' Try: ');
  } else if (alt.length) alts.append('Did you mean: ');
  if (alt.length) {
    alt.forEach((m, i) => {
      const b = el('button', 'linkish', label(m)), w = el('span', 'nowrap');
      b.type = 'button';
      b.addEventListener('click', () => {
        input.value = str(m.title);
        state.chosen = { movieId: m.movieId, title: input.value };
        input.focus();
        recommend(m.movieId, input.value, q ? [q, ...state.alts] : state.alts);
      });
      w.append(b, i < alt.length - 1 ? ',' : loose ? '' : '?');
      alts.append(w, ' ');
    });
  }

  recList.replaceChildren(...recs.map(itemsOf(recs)));
  secondRow(q, p, model);
  plot.update();
  if (q && !loose) remember({ movie: q.movieId, model: p.model, index: p.index, k: p.k }, true);
  // On a narrow screen the results start below the form: bring them into view.
  const panel = $('panel-rec');
  if (!panel.hidden && window.matchMedia('(max-width: 560px)').matches) {
    const top = summary.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.6 || top < 0) {
      const smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
      summary.scrollIntoView({ block: 'start', behavior: smooth ? 'smooth' : 'auto' });
    }
  }
}

// Two answers for two questions: under "More like this", what fans of the movie also liked
// (the `collaborative` model), asked for separately with the same k and filters.
const fansBox = $('fans'), fansSummary = $('fans-summary'), fansList = $('fans-list');
let fansSeq = 0;
async function secondRow(q, p, model) {
  const seq = ++fansSeq;
  $('rec-heading').textContent = model === 'similar' ? 'More like this'
    : p.model === 'collaborative' ? 'Fans also liked' : 'Movies like this';
  if (!q || model !== 'similar') { fansBox.hidden = true; fansList.replaceChildren(); return; }
  fansBox.hidden = false;
  fansSummary.replaceChildren(spinner(), 'Finding what fans also liked…');
  try {
    const r = await api('/api/recommendations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ movie: q.movieId, k: p.k, model: 'collaborative', filter: filterBody() }),
    });
    if (seq !== fansSeq) return;
    const recs = Array.isArray(r.results) ? r.results.filter((m) => m && typeof m === 'object') : [];
    fansSummary.replaceChildren('What people who liked ', el('strong', null, label(q)),
      ' watched next — ' + str(r.model) + ' model · ' + plural(recs.length, 'movie'));
    fansList.replaceChildren(...recs.map(itemsOf(recs)));
  } catch (e) {
    if (seq !== fansSeq) return;
    fansSummary.textContent = 'No "fans also liked" answer: ' + e.message;
    fansList.replaceChildren();
  }
}

function extLink(url, text, aria) {
  const a = el('a', null, text);
  Object.assign(a, { href: url, target: '_blank', rel: 'noopener noreferrer' });
  if (aria) a.setAttribute('aria-label', aria + ' (opens in a new tab)');
  return a;
}
// Scores are on each model's own scale (a cosine, a sum of votes), so a card shows a bar relative
// to the list's best, and the number only on hover.
function itemsOf(recs) {
  const best = Math.max(0, ...recs.map((m) => (typeof m.score === 'number' && Number.isFinite(m.score) ? m.score : 0)));
  return (m) => renderItem(m, best);
}
// How alike two movies' genres, era and tags are (the content cosine), in words.
function contentWords(c) {
  if (typeof c !== 'number' || !Number.isFinite(c)) return '';
  if (c >= 0.8) return 'very alike in genres, era and tags';
  if (c >= 0.5) return 'alike in genres, era and tags';
  if (c >= 0.25) return 'somewhat alike in genres, era and tags';
  return '';
}
function renderItem(m, best) {
  const li = el('li', 'rec');
  const imdb = safeUrl(m.imdbUrl);
  const href = imdb || safeUrl(m.movielensUrl);
  const t = href ? extLink(href, str(m.title)) : el('span', null, str(m.title));
  t.classList.add('rec-title');
  if (yr(m)) t.append(el('span', 'year', yr(m)));
  if (placeholder(m)) t.append(el('span', 'year', ' · working title'));
  if (href) t.append(el('span', 'sr-only', ' (opens in a new tab)'));
  li.append(t);

  if (typeof m.score === 'number' && Number.isFinite(m.score)) {
    const share = best > 0 ? clamp(m.score / best, 0, 1) : 0;
    const sc = el('span', 'score');
    sc.title = 'score ' + m.score.toFixed(3) + ' (on this model\'s own scale; the bar is relative to the best of the list)';
    sc.append(el('span', 'sr-only', 'match ' + Math.round(share * 100) + '% of the best'));
    const meter = el('span', 'meter'), fill = el('span');
    meter.setAttribute('aria-hidden', 'true');
    fill.style.width = (share * 100).toFixed(1) + '%';
    meter.append(fill);
    sc.append(meter);
    li.append(sc);
  }

  const meta = metaText(m, true);
  if (meta) li.append(el('div', 'meta', meta));
  // Why it was picked: shared genres and decade, co-likes (the API's sentence), and how alike the
  // two are in content, in words, the cosine on hover (text, never HTML).
  if (m.why && typeof m.why.text === 'string') {
    const text = m.why.text.replace(/(^|\s·\s)content match -?[\d.]+$/, '');
    const words = contentWords(m.why.contentSimilarity);
    if (text || words) {
      const why = el('div', 'why');
      why.append(el('span', 'why-label', 'Why: '), text);
      if (words) {
        if (text) why.append(' · ');
        const w = el('span', 'content-match', words);
        w.title = 'content similarity ' + m.why.contentSimilarity.toFixed(2) + ' (cosine of genres, decade and tags, from −1 to 1)';
        why.append(w);
      }
      li.append(why);
    }
  }

  if (Number.isInteger(m.movieId)) li.append(starRating(m));

  const links = el('div', 'links');
  const name = label(m);
  const tmdb = safeUrl(m.tmdbUrl), ml = safeUrl(m.movielensUrl);
  if (imdb) links.append(extLink(imdb, 'IMDb', 'IMDb: ' + name));
  if (tmdb) links.append(extLink(tmdb, 'TMDb', 'TMDb: ' + name));
  if (ml) links.append(extLink(ml, 'MovieLens', 'MovieLens: ' + name));
  if (links.childElementCount) li.append(links);
  return li;
}

// ---------- plot ----------
const canvas = $('plot'), wrap = $('plot-wrap'), tip = $('tip'), status = $('plot-status'), sel = $('plot-model');
const ctx = canvas.getContext('2d');
const off = document.createElement('canvas'), octx = off.getContext('2d');
const cache = new Map();
let titles = null, titlesP = null, P = null, loadSeq = 0, userModel = false, visible = false;
let W = 0, H = 0, dpr = 1, view = { cx: 0, cy: 0, z: 1 }, base = 1;
let bgDirty = true, frame = 0, hover = -1, colors = null, img = null, buf = null, cnt = null;
// The base layer: every point rasterised into `img` and put into the off-screen canvas `off`,
// which covers the view plus PAD CSS px on each side. Panning only moves where `off` is drawn;
// the points are rasterised again when the scale, data, size or colours change or a pan goes past
// the pad. A zoom frame rasterises only the visible part (pad 0); the next pan refills the pad.
// `bg` says what `off` holds: the view it was drawn for, its pad and its region (device px).
const PAD = 192;
let bg = null;
let drag = null;

function loadTitles() {
  if (!titlesP) {
    titlesP = api('/api/movies/titles').then((t) => {
      const ids = Array.isArray(t.movieIds) ? t.movieIds : [];
      const byId = new Map();
      ids.forEach((id, i) => byId.set(id, i));
      titles = { byId, titles: Array.isArray(t.titles) ? t.titles : [], years: Array.isArray(t.years) ? t.years : [] };
      return titles;
    }, (e) => { titlesP = null; showError('Titles for the plot: ' + e.message); return null; });
  }
  return titlesP;
}
function loadProj(model) {
  if (!cache.has(model)) {
    const p = api('/api/projection?model=' + encodeURIComponent(model)).then((r) => prepare(r, model));
    p.catch(() => cache.delete(model));
    cache.set(model, p);
  }
  return cache.get(model);
}
function prepare(r, model) {
  const ids = r.movieIds, xs = r.x, ys = r.y;
  if (!Array.isArray(ids) || !Array.isArray(xs) || !Array.isArray(ys)) throw new Error('The projection response is malformed.');
  const m = Math.min(ids.length, xs.length, ys.length);
  const id = new Float64Array(m), x = new Float32Array(m), y = new Float32Array(m);
  let n = 0;
  for (let i = 0; i < m; i++) {
    const a = +xs[i], b = +ys[i];
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    id[n] = ids[i]; x[n] = a; y[n] = b; n++;
  }
  if (!n) throw new Error('The projection is empty.');
  const idx = new Map();
  for (let i = 0; i < n; i++) idx.set(id[i], i);
  const X = x.subarray(0, n), Y = y.subarray(0, n);
  const bx = range(X), by = range(Y);
  // Hover grid: uniform buckets over the full extent, ~4 points per cell.
  const G = Math.max(1, Math.ceil(Math.sqrt(n / 4)));
  const gx0 = bx.min, gy0 = by.min, gw = (bx.max - bx.min || 1) / G, gh = (by.max - by.min || 1) / G;
  const cell = new Int32Array(n), start = new Int32Array(G * G + 1), items = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = clamp(Math.floor((X[i] - gx0) / gw), 0, G - 1) + G * clamp(Math.floor((Y[i] - gy0) / gh), 0, G - 1);
    cell[i] = c; start[c + 1]++;
  }
  for (let c = 0; c < G * G; c++) start[c + 1] += start[c];
  const fill = start.slice(0, G * G);
  for (let i = 0; i < n; i++) items[fill[cell[i]]++] = i;
  return { model, n, id, x: X, y: Y, idx, view: { bx, by }, grid: { G, gx0, gy0, gw, gh, start, items } };
}
// Extent; ignore a few far outliers so they do not squash the cloud.
function range(a) {
  const s = Float32Array.from(a).sort(), n = s.length, min = s[0], max = s[n - 1];
  const lo = s[Math.floor(n * 0.001)], hi = s[Math.ceil(n * 0.999) - 1], core = hi - lo || 1;
  return { min, max, vmin: lo - min > core / 2 ? lo : min, vmax: max - hi > core / 2 ? hi : max };
}

// Canvas colours come from the CSS custom properties (all #rrggbb), so light/dark match the legend.
function readColors() {
  const cs = getComputedStyle(document.documentElement), v = (n) => cs.getPropertyValue(n).trim();
  const h = parseInt(v('--pt').slice(1), 16) || 0x777777;
  colors = { pt: [h >> 16, (h >> 8) & 255, h & 255], q: v('--q'), rec: v('--rec'), bg: v('--surface'), text: v('--text') };
}
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { readColors(); schedule(true); });

function resize() {
  const w = wrap.clientWidth, h = wrap.clientHeight;
  const d = window.devicePixelRatio || 1;
  if (!w || !h || (w === W && h === H && d === dpr)) return;
  W = w; H = h; dpr = d;
  canvas.width = Math.round(W * dpr);
  canvas.height = Math.round(H * dpr);
  off.width = Math.round((W + 2 * PAD) * dpr);
  off.height = Math.round((H + 2 * PAD) * dpr);
  if (P) fitBase();
  schedule(true);
}
new ResizeObserver(resize).observe(wrap);
window.addEventListener('resize', resize);

function fitBase() {
  const { bx, by } = P.view;
  base = Math.min(W / (bx.vmax - bx.vmin || 1), H / (by.vmax - by.vmin || 1)) * 0.92;
}
function resetView() {
  if (!P) return;
  const { bx, by } = P.view;
  view = { cx: (bx.vmin + bx.vmax) / 2, cy: (by.vmin + by.vmax) / 2, z: 1 };
  fitBase();
  schedule(false);
}
const scale = () => base * view.z;
const toX = (x) => W / 2 + (x - view.cx) * scale();
const toY = (y) => H / 2 - (y - view.cy) * scale();

function schedule(bg) {
  if (bg) bgDirty = true;
  if (!frame && visible) frame = requestAnimationFrame(draw);
}

function renderBg(pad) {
  const w = off.width, h = off.height, n = P.n;
  if (!img || img.width !== w || img.height !== h) {
    img = octx.createImageData(w, h);
    buf = new Uint32Array(img.data.buffer);
    cnt = new Uint8Array(w * h);
  }
  // The region drawn: the view and `pad` CSS px around it, in device pixels of `off`.
  const e = Math.round((PAD - pad) * dpr), rx0 = e, ry0 = e, rx1 = w - e, ry1 = h - e;
  if (e === 0) { buf.fill(0); cnt.fill(0); }
  else for (let y = ry0; y < ry1; y++) { buf.fill(0, y * w + rx0, y * w + rx1); cnt.fill(0, y * w + rx0, y * w + rx1); }
  // Colour lookup: n overlapping points -> alpha 1-(1-a)^n (ImageData is RGBA bytes, little-endian words).
  const a = n > 30000 ? 0.28 : 0.45, [r, g, b] = colors.pt, lut = new Uint32Array(256);
  for (let i = 1; i < 256; i++) {
    const al = Math.round(255 * Math.min(0.92, 1 - Math.pow(1 - a, i)));
    lut[i] = ((al << 24) | (b << 16) | (g << 8) | r) >>> 0;
  }
  const size = Math.max(1, Math.round(dpr * Math.min(5, (n > 30000 ? 1.6 : 2.2) * (1 + 0.3 * Math.log2(Math.max(1, view.z))))));
  const S = scale() * dpr, ox = (W / 2 + PAD) * dpr - view.cx * S, oy = (H / 2 + PAD) * dpr + view.cy * S, half = size / 2;
  const X = P.x, Y = P.y;
  for (let i = 0; i < n; i++) {
    const px = Math.floor(X[i] * S + ox - half), py = Math.floor(oy - Y[i] * S - half);
    if (px <= rx0 - size || py <= ry0 - size || px >= rx1 || py >= ry1) continue;
    const x0 = Math.max(rx0, px), x1 = Math.min(rx1, px + size), y1 = Math.min(ry1, py + size);
    for (let yy = Math.max(ry0, py); yy < y1; yy++) {
      let k = yy * w + x0;
      for (let xx = x0; xx < x1; xx++, k++) {
        const c = cnt[k];
        if (c < 255) { cnt[k] = c + 1; buf[k] = lut[c + 1]; }
      }
    }
  }
  octx.putImageData(img, 0, 0, rx0, ry0, rx1 - rx0, ry1 - ry0);
  bg = { s: scale(), cx: view.cx, cy: view.cy, pad, x: rx0, y: ry0, w: rx1 - rx0, h: ry1 - ry0 };
}

function highlights() {
  const L = state.last;
  if (!P || !L || !L.query) return { q: -1, recs: [] };
  const q = P.idx.has(L.query.movieId) ? P.idx.get(L.query.movieId) : -1;
  const recs = [];
  L.results.forEach((m, rank) => { if (P.idx.has(m.movieId)) recs.push({ i: P.idx.get(m.movieId), rank, m }); });
  return { q, recs };
}
function dot(x, y, r, fill, stroke, lw) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = lw;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}
function draw() {
  frame = 0;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!P || !W) return;
  if (!colors) readColors();
  // Where the view moved since the base layer was drawn (CSS px); within the pad, a blit will do.
  const s = scale();
  let dx = 0, dy = 0;
  if (!bgDirty && bg && bg.s === s) {
    dx = (bg.cx - view.cx) * s;
    dy = (view.cy - bg.cy) * s;
    if (Math.abs(dx) > bg.pad || Math.abs(dy) > bg.pad) bgDirty = true;
  }
  if (bgDirty || !bg || bg.s !== s) {
    renderBg(bg && bg.s !== s && !bgDirty ? 0 : PAD);
    bgDirty = false;
    dx = dy = 0;
  }
  const shift = Math.round(PAD * dpr);
  ctx.drawImage(off, bg.x, bg.y, bg.w, bg.h,
    bg.x - shift + Math.round(dx * dpr), bg.y - shift + Math.round(dy * dpr), bg.w, bg.h);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const h = highlights();
  ctx.font = '600 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.lineJoin = 'round';
  for (let j = h.recs.length - 1; j >= 0; j--) {
    const i = h.recs[j].i, x = toX(P.x[i]), y = toY(P.y[i]);
    dot(x, y, 4.5, colors.rec, colors.bg, 1.5);
    // Each recommendation is labelled with its rank in the list (its title on hover or tap).
    const t = String(h.recs[j].rank + 1);
    ctx.lineWidth = 3;
    ctx.strokeStyle = colors.bg;
    ctx.strokeText(t, x + 7, y - 7);
    ctx.fillStyle = colors.text;
    ctx.fillText(t, x + 7, y - 7);
  }
  if (h.q >= 0) {
    const x = toX(P.x[h.q]), y = toY(P.y[h.q]);
    ctx.beginPath();
    ctx.arc(x, y, 11, 0, Math.PI * 2);
    ctx.lineWidth = 2;
    ctx.strokeStyle = colors.q;
    ctx.stroke();
    dot(x, y, 7, colors.q, colors.bg, 2.5);
    const t = label(state.last.query);
    ctx.font = '600 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    ctx.textBaseline = 'middle';
    const tw = ctx.measureText(t).width, left = x + 16 + tw > W - 4;
    const tx = left ? x - 16 - tw : x + 16;
    ctx.lineJoin = 'round';
    ctx.lineWidth = 4;
    ctx.strokeStyle = colors.bg;
    ctx.strokeText(t, tx, y);
    ctx.fillStyle = colors.text;
    ctx.fillText(t, tx, y);
  }
  if (hover >= 0) {
    ctx.beginPath();
    ctx.arc(toX(P.x[hover]), toY(P.y[hover]), 6, 0, Math.PI * 2);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = colors.text;
    ctx.stroke();
  }
}

// Nearest point within ~12 CSS px, highlighted points first; grid lookup keeps it O(points nearby).
function nearest(px, py) {
  const R = 12, h = highlights();
  let best = -1, bd = R * R;
  for (const i of [h.q, ...h.recs.map((r) => r.i)]) {
    if (i < 0) continue;
    const dx = toX(P.x[i]) - px, dy = toY(P.y[i]) - py, d = dx * dx + dy * dy;
    if (d < bd) { bd = d; best = i; }
  }
  if (best >= 0) return best;
  const s = scale(), g = P.grid;
  const x = (px - W / 2) / s + view.cx, y = view.cy - (py - H / 2) / s, rd = R / s;
  const c0 = clamp(Math.floor((x - rd - g.gx0) / g.gw), 0, g.G - 1), c1 = clamp(Math.floor((x + rd - g.gx0) / g.gw), 0, g.G - 1);
  const r0 = clamp(Math.floor((y - rd - g.gy0) / g.gh), 0, g.G - 1), r1 = clamp(Math.floor((y + rd - g.gy0) / g.gh), 0, g.G - 1);
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const cell = r * g.G + c;
      for (let k = g.start[cell], e = g.start[cell + 1]; k < e; k++) {
        const i = g.items[k];
        const dx = (P.x[i] - x) * s, dy = (P.y[i] - y) * s, d = dx * dx + dy * dy;
        if (d < bd) { bd = d; best = i; }
      }
    }
  }
  return best;
}
function showTip(i, px, py) {
  if (i !== hover) { hover = i; schedule(false); }
  if (i < 0) { tip.hidden = true; return; }
  const id = P.id[i];
  let name = 'Movie ' + id;
  if (titles && titles.byId.has(id)) {
    const j = titles.byId.get(id);
    name = str(titles.titles[j]) + (Number.isFinite(titles.years[j]) ? ' (' + titles.years[j] + ')' : '');
  }
  const kids = [el('strong', null, name)];
  const L = state.last;
  if (L && L.query && L.query.movieId === id) kids.push(el('span', 'sub', 'Your pick'));
  else if (L) {
    const rank = L.results.findIndex((m) => m.movieId === id);
    if (rank >= 0) kids.push(el('span', 'sub', 'Recommendation #' + (rank + 1)));
  }
  tip.replaceChildren(...kids);
  tip.hidden = false;
  const tw = tip.offsetWidth, th = tip.offsetHeight;
  const left = px + 14 + tw > W ? px - 14 - tw : px + 14;
  const top = py + 14 + th > H ? py - 14 - th : py + 14;
  tip.style.transform = 'translate(' + Math.max(2, left) + 'px,' + Math.max(2, top) + 'px)';
}
function pickFromPlot(i) {
  const id = P.id[i];
  if (titles && titles.byId.has(id)) {
    input.value = str(titles.titles[titles.byId.get(id)]);
    state.chosen = { movieId: id, title: input.value };
  }
  hideTip();
  recommend(id, input.value);
}
function hideTip() { tip.hidden = true; if (hover >= 0) { hover = -1; schedule(false); } }

function zoomAt(px, py, f) {
  if (!P) return;
  const s = scale(), x = (px - W / 2) / s + view.cx, y = view.cy - (py - H / 2) / s;
  view.z = clamp(view.z * f, 0.5, 500);
  const s2 = scale();
  view.cx = x - (px - W / 2) / s2;
  view.cy = y + (py - H / 2) / s2;
  schedule(false);
}
const local = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };

canvas.addEventListener('wheel', (e) => {
  if (!P) return;
  e.preventDefault();
  const d = e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1);
  const [px, py] = local(e);
  zoomAt(px, py, Math.exp(-clamp(d, -300, 300) * 0.002));
  hideTip();
}, { passive: false });
canvas.addEventListener('dblclick', (e) => { const [px, py] = local(e); zoomAt(px, py, 2); });
canvas.addEventListener('pointerdown', (e) => {
  if (!P || drag || (e.pointerType === 'mouse' && e.button !== 0)) return;
  canvas.setPointerCapture(e.pointerId);
  const [px, py] = local(e);
  drag = { id: e.pointerId, px, py, cx: view.cx, cy: view.cy, moved: false };
  if (bg && bg.pad < PAD) schedule(true);
  canvas.classList.add('dragging');
  hideTip();
});
canvas.addEventListener('pointermove', (e) => {
  if (!P) return;
  const [px, py] = local(e);
  if (drag && drag.id === e.pointerId) {
    if (Math.abs(px - drag.px) + Math.abs(py - drag.py) > 3) drag.moved = true;
    if (!drag.moved) return;
    view.cx = drag.cx - (px - drag.px) / scale();
    view.cy = drag.cy + (py - drag.py) / scale();
    schedule(false);
  } else if (!drag && e.pointerType === 'mouse') showTip(nearest(px, py), px, py);
});
const endDrag = (e) => {
  if (!drag || drag.id !== e.pointerId) return;
  // A click (no drag) picks the movie under the pointer; on a touch screen the first tap shows
  // its title and a second tap on it picks it.
  if (!drag.moved && e.type === 'pointerup') {
    const i = nearest(drag.px, drag.py);
    if (i >= 0 && (e.pointerType === 'mouse' || i === hover)) pickFromPlot(i);
    else showTip(i, drag.px, drag.py);
  }
  drag = null;
  canvas.classList.remove('dragging');
};
canvas.addEventListener('pointerup', endDrag);
canvas.addEventListener('pointercancel', endDrag);
canvas.addEventListener('pointerleave', (e) => { if (e.pointerType === 'mouse' && !drag) hideTip(); });
canvas.addEventListener('keydown', (e) => {
  if (!P) return;
  const step = Math.min(W, H) * 0.1 / scale();
  const k = e.key;
  if (k === 'ArrowLeft') view.cx -= step;
  else if (k === 'ArrowRight') view.cx += step;
  else if (k === 'ArrowUp') view.cy += step;
  else if (k === 'ArrowDown') view.cy -= step;
  else if (k === '+' || k === '=') return e.preventDefault(), zoomAt(W / 2, H / 2, 1.5);
  else if (k === '-' || k === '_') return e.preventDefault(), zoomAt(W / 2, H / 2, 1 / 1.5);
  else if (k === '0') return e.preventDefault(), resetView();
  else return;
  e.preventDefault();
  schedule(false);
});
$('zoom-in').addEventListener('click', () => zoomAt(W / 2, H / 2, 1.5));
$('zoom-out').addEventListener('click', () => zoomAt(W / 2, H / 2, 1 / 1.5));
$('zoom-reset').addEventListener('click', resetView);
sel.addEventListener('change', () => { userModel = true; load(sel.value); });

function setStatus() {
  if (!P) return;
  const L = state.last, h = highlights();
  const parts = [num(P.n) + ' movies, ' + P.model + ' model. '];
  if (!L || !L.query) parts.push('Pick a movie in the Recommender tab to highlight it.');
  else {
    parts.push(h.q >= 0 ? 'Highlighting ' : 'Your pick ', el('strong', null, label(L.query)));
    parts.push(h.q >= 0 ? ' and ' + plural(h.recs.length, 'recommendation') : ' is not on this map; showing ' + plural(h.recs.length, 'recommendation'));
    parts.push(L.model !== P.model ? ' from the ' + L.model + ' model.' : '.');
  }
  status.replaceChildren(...parts);
  canvas.setAttribute('aria-label', 'Scatter plot of ' + num(P.n) + ' movies, ' + P.model + ' model');
}
async function load(model) {
  const seq = ++loadSeq;
  if (P && P.model === model) { setStatus(); return; }
  status.replaceChildren(spinner(), 'Loading the ' + model + ' map…');
  wrap.setAttribute('aria-busy', 'true');
  try {
    const [p] = await Promise.all([loadProj(model), loadTitles()]);
    if (seq !== loadSeq) return;
    P = p;
    hover = -1;
    tip.hidden = true;
    resetView();
    schedule(true);
    setStatus();
  } catch (e) {
    if (seq !== loadSeq) return;
    showError(e.message);
    status.textContent = 'Could not load the plot.';
  } finally {
    if (seq === loadSeq) wrap.removeAttribute('aria-busy');
  }
}
function plotShow() {
  visible = true;
  const want = state.last ? state.last.model : modelSel.value;
  if (!userModel && Array.from(sel.options).some((o) => o.value === want)) sel.value = want;
  resize();
  load(sel.value);
  schedule(false);
}
function plotHide() { visible = false; hideTip(); }
function plotUpdate() { userModel = false; if (visible) { setStatus(); schedule(false); } }
const plot = { show: plotShow, hide: plotHide, update: plotUpdate };

// ---------- runs ----------
// The metric chart is uPlot (web/vendor/, the version web/package-lock.json pins): one point per
// run that recorded the metric, oldest on the left; its legend shows the run and value under the
// cursor, which the arrow keys move too (announced in a live region).
const runsView = (() => {
  const metricSel = $('run-metric'), box = $('run-chart'), rstatus = $('runs-status'), live = $('run-chart-live');
  const tbody = document.querySelector('#runs-table tbody');
  let runs = [], loaded = false, seq = 0, chart = null, shown = [], at = -1;
  const metricOf = (r, m) => {
    const v = r && r.metrics ? r.metrics[m] : undefined;
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  const fmt = (v) => (v == null ? '' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4));
  const runText = (r) => str(r.started_at).replace('T', ' ').slice(0, 16) + ' ' + str(r.kind)
    + (r.status === 'failed' ? ' (failed)' : '');
  function fillMetrics() {
    const names = new Set();
    for (const r of runs) for (const k of Object.keys((r && r.metrics) || {})) names.add(k);
    const sorted = Array.from(names).sort();
    const keep = metricSel.value;
    metricSel.replaceChildren(...sorted.map((n) => { const o = el('option', null, n); o.value = n; return o; }));
    const preferred = [keep, 'item_knn.ndcg_at_10', 'training_seconds'].find((n) => n && names.has(n));
    if (preferred) metricSel.value = preferred;
  }
  function drawChart() {
    const m = metricSel.value;
    $('runs-metric-col').textContent = m || 'Metric';
    shown = runs.slice().reverse().map((r) => ({ r, v: metricOf(r, m) })).filter((p) => p.v != null);
    box.setAttribute('data-points', String(shown.length));
    if (chart) chart.destroy();
    chart = null;
    at = -1;
    live.textContent = '';
    if (!shown.length) {
      box.setAttribute('aria-label', m ? 'No run recorded ' + m : 'No metric to chart');
      return;
    }
    const ys = shown.map((p) => p.v), xs = ys.map((_, i) => i + 1);
    box.setAttribute('aria-label', 'Chart of ' + m + ' across ' + plural(shown.length, 'run') + ', from '
      + fmt(ys[0]) + ' (oldest) to ' + fmt(ys[ys.length - 1]) + ' (newest); lowest ' + fmt(Math.min(...ys))
      + ', highest ' + fmt(Math.max(...ys)));
    if (typeof window.uPlot !== 'function') { showError('The chart library did not load.'); return; }
    const cs = getComputedStyle(document.documentElement), css = (n) => cs.getPropertyValue(n).trim();
    const axis = {
      stroke: css('--muted'), font: '11px system-ui, sans-serif',
      grid: { stroke: css('--border'), width: 1 }, ticks: { stroke: css('--border'), width: 1 },
    };
    chart = new window.uPlot({
      width: chartWidth(), height: 220,
      scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.5, hi + 0.5] } },
      series: [
        { label: 'Run', value: (u, x) => (shown[x - 1] ? '#' + x + ' · ' + runText(shown[x - 1].r) : '–') },
        {
          label: m, stroke: css('--rec'), width: 2,
          points: { show: true, size: 8, width: 2, fill: css('--rec'), stroke: css('--rec') },
          value: (u, y) => (y == null ? '–' : fmt(y)),
        },
      ],
      axes: [
        {
          ...axis, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
          values: (u, splits) => splits.map((x) => (Number.isInteger(x) && x >= 1 && x <= shown.length ? '#' + x : '')),
        },
        { ...axis, size: 64, values: (u, splits) => splits.map(fmt) },
      ],
      cursor: { drag: { x: false, y: false }, points: { size: 11 } },
      legend: { live: true },
    }, [xs, ys], box);
  }
  const chartWidth = () => Math.max(200, box.clientWidth);
  new ResizeObserver(() => {
    if (chart && chart.width !== chartWidth()) chart.setSize({ width: chartWidth(), height: 220 });
  }).observe(box);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { if (chart) drawChart(); });
  // Keyboard: step the cursor (and so the legend) through the points.
  box.addEventListener('keydown', (e) => {
    if (!chart || !shown.length) return;
    const n = shown.length;
    const to = { ArrowRight: at + 1, ArrowLeft: at < 0 ? n - 1 : at - 1, Home: 0, End: n - 1 }[e.key];
    if (to == null) return;
    e.preventDefault();
    at = clamp(to, 0, n - 1);
    chart.setCursor({ left: chart.valToPos(at + 1, 'x'), top: chart.valToPos(shown[at].v, 'y') });
    live.textContent = 'Run ' + (at + 1) + ' of ' + n + ', ' + runText(shown[at].r) + ': ' + metricSel.value + ' ' + fmt(shown[at].v);
  });
  function drawTable() {
    const m = metricSel.value;
    tbody.replaceChildren(...runs.map((r) => {
      const tr = el('tr', r.status === 'failed' ? 'failed' : null);
      const fp = str(r.dataset && r.dataset.fingerprint);
      const mlflow = r.mlflow && typeof r.mlflow === 'object' ? str(r.mlflow.run_id) : '';
      const cells = [
        str(r.started_at).replace('T', ' ').slice(0, 19),
        str(r.kind),
        r.status === 'failed' && r.tags && r.tags.error ? 'failed: ' + str(r.tags.error) : str(r.status),
        Number.isFinite(r.duration_seconds) ? r.duration_seconds.toFixed(2) : '',
        fp.slice(0, 16),
        fmt(metricOf(r, m)),
        str(r.code_version),
        mlflow,
      ];
      tr.append(...cells.map((c) => el('td', null, c)));
      return tr;
    }));
  }
  async function load() {
    const mine = ++seq;
    rstatus.replaceChildren(spinner(), 'Loading runs…');
    try {
      const body = await api('/api/runs');
      if (mine !== seq) return;
      runs = Array.isArray(body.runs) ? body.runs.filter((r) => r && typeof r === 'object') : [];
      loaded = true;
      fillMetrics();
      drawChart();
      drawTable();
      const skipped = Array.isArray(body.skipped) ? body.skipped.filter((x) => typeof x === 'string') : [];
      rstatus.textContent = runs.length
        ? plural(runs.length, 'run') + ' recorded' + (skipped.length ? ' (' + plural(skipped.length, 'unreadable line') + ' skipped)' : '') + '.'
        : skipped.length ? 'No runs could be read: ' + skipped[0] : 'No runs recorded yet: run movierec train or movierec evaluate.';
    } catch (e) {
      if (mine !== seq) return;
      showError(e.message);
      rstatus.textContent = 'Could not load the runs.';
    }
  }
  metricSel.addEventListener('change', () => { drawChart(); drawTable(); });
  $('runs-refresh').addEventListener('click', load);
  return { show: () => { if (!loaded) load(); } };
})();

// ---------- for me ----------
const meForm = $('me-form'), meSummary = $('me-summary'), meList = $('me-list');
let meSeq = 0, meFromProfile = false;
// k and the filter as the query string of GET /api/users/{userId}/recommendations.
function personalQuery(k, filter) {
  const q = new URLSearchParams({ k: String(k) });
  if (filter.genres) q.set('genres', filter.genres.join(','));
  if (filter.exclude_genres) q.set('exclude_genres', filter.exclude_genres.join(','));
  for (const key of ['year_min', 'year_max', 'min_ratings']) if (filter[key] != null) q.set(key, String(filter[key]));
  return q;
}
meForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const likes = $('me-likes').value.split('\n').map((t) => t.trim()).filter(Boolean);
  const user = $('me-user').value.trim();
  const k = params().k, filter = filterBody();
  let path, opts;
  if (user) {
    if (!/^[0-9]+$/.test(user)) { showError('The user id must be a whole number.'); return; }
    path = '/api/users/' + user + '/recommendations?' + personalQuery(k, filter);
    opts = undefined;
  } else if (likes.length) {
    path = '/api/recommendations/for-likes';
    opts = {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ likes, k, filter }),
    };
  } else if (profile && myRatings.size) {
    path = '/api/users/' + profile.userId + '/recommendations?' + personalQuery(k, filter);
    opts = { headers: Object.assign({ Accept: 'application/json' }, authHeaders()) };
  } else {
    showError('List at least one movie you liked, give a user id, or rate a few movies with their stars.');
    return;
  }
  meFromProfile = !user && !likes.length;
  const seq = ++meSeq;
  clearError();
  meSummary.replaceChildren(spinner(), 'Finding recommendations…');
  try {
    const r = await api(path, opts);
    if (seq !== meSeq) return;
    const recs = Array.isArray(r.results) ? r.results.filter((m) => m && typeof m === 'object') : [];
    const liked = Array.isArray(r.liked) ? r.liked.filter((m) => m && typeof m === 'object').map(label) : [];
    const who = meFromProfile ? 'you (from your ' + plural(r.rated, 'rating') + ')'
      : r.user != null ? 'user ' + str(r.user) + ' (who rated ' + num(r.rated) + ' movies)'
      : 'someone who liked ' + liked.join('; ');
    meSummary.textContent = recs.length
      ? plural(recs.length, 'movie') + ' for ' + who + ' — ' + str(r.model) + ' model'
      : 'No movie passes the filters.';
    meList.replaceChildren(...recs.map(itemsOf(recs)));
  } catch (err) {
    if (seq !== meSeq) return;
    showError(err.message);
    meSummary.textContent = 'No recommendations to show.';
    meList.replaceChildren();
  }
});

// ---------- online metrics (Runs tab) ----------
(() => {
  const box = $('online-chart'), table = $('online-table'), status = $('online-status');
  let chart = null;
  $('online-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $('online-token').value.trim();
    if (!token) { showError('The online metrics need the server\'s admin token.'); return; }
    clearError();
    status.replaceChildren(spinner(), 'Loading the online metrics…');
    let r;
    try {
      r = await api('/api/admin/online-metrics?days=90', { headers: { Accept: 'application/json', Authorization: 'Bearer ' + token } });
    } catch (err) {
      status.textContent = '';
      showError(err.message);
      return;
    }
    const rows = Array.isArray(r.days) ? r.days.filter((d) => d && typeof d.day === 'string') : [];
    const shown = rows.reduce((n, d) => n + (Number(d.impressions) || 0), 0);
    const liked = rows.reduce((n, d) => n + (Number(d.liked) || 0), 0);
    status.textContent = rows.length
      ? plural(shown, 'movie') + ' recommended over ' + plural(new Set(rows.map((d) => d.day)).size, 'day') + '; '
        + num(liked) + ' rated ' + str(r.likedRating) + '+ within ' + str(r.windowDays) + ' days ('
        + (shown ? (100 * liked / shown).toFixed(1) : '0') + '%).'
      : 'Nothing recommended to anyone in the last 90 days.';
    table.hidden = !rows.length;
    table.tBodies[0].replaceChildren(...rows.map((d) => {
      const tr = el('tr');
      for (const v of [d.day, d.model, num(d.impressions), num(d.rated), num(d.liked), (100 * (Number(d.hitRate) || 0)).toFixed(1) + '%']) tr.append(el('td', null, str(v)));
      return tr;
    }));
    if (chart) { chart.destroy(); chart = null; }
    if (!rows.length || typeof window.uPlot !== 'function') return;
    const days = Array.from(new Set(rows.map((d) => d.day))).sort();
    const models = Array.from(new Set(rows.map((d) => str(d.model)))).sort();
    const cs = getComputedStyle(document.documentElement), css = (n) => cs.getPropertyValue(n).trim();
    const palette = [css('--rec'), css('--accent'), '#d69e00', '#8250df', '#cf222e'];
    const data = [days.map((_, i) => i)].concat(models.map((m) => days.map((day) => {
      const d = rows.find((x) => x.day === day && x.model === m);
      return d ? 100 * (Number(d.hitRate) || 0) : null;
    })));
    const axis = { stroke: css('--muted'), font: '11px system-ui, sans-serif', grid: { stroke: css('--border'), width: 1 }, ticks: { stroke: css('--border'), width: 1 } };
    box.setAttribute('aria-label', 'Online hit rate per day of ' + models.join(', ') + ' from ' + days[0] + ' to ' + days[days.length - 1] + '; the table below lists every value');
    chart = new window.uPlot({
      width: Math.max(200, box.clientWidth), height: 200,
      scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.5, hi + 0.5] } },
      series: [{ label: 'Day', value: (u, x) => days[x] || '–' }].concat(models.map((m, i) => ({
        label: m, stroke: palette[i % palette.length], width: 2,
        points: { show: true, size: 7 }, value: (u, y) => (y == null ? '–' : y.toFixed(1) + '%'),
      }))),
      axes: [
        { ...axis, incrs: [1, 2, 7, 14, 30], values: (u, splits) => splits.map((x) => days[x] || '') },
        { ...axis, size: 56, values: (u, splits) => splits.map((y) => y + '%') },
      ],
      cursor: { drag: { x: false, y: false } },
    }, data, box);
  });
})();

// ---------- my profile and ratings ----------
// The profile (an id and its secret token) lives in this browser's localStorage; ratings live on
// the server. A profile is created with the first rating.
const PROFILE_KEY = 'movierec.profile';
let profile = null;
const myRatings = new Map(); // movieId -> stars
const ratedTitles = new Map(); // movieId -> label, for the list
let undo = null; // { movieId, before, name }
const STARS = [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5];
const authHeaders = () => ({ Authorization: 'Bearer ' + profile.token });
const starsText = (v) => (v === 1 ? '1 star' : v + ' stars');

function readProfile(text) {
  const m = /^\s*(\d+):([0-9a-f]{64})\s*$/.exec(str(text));
  return m ? { userId: Number(m[1]), token: m[2] } : null;
}
function loadProfile() {
  try { profile = readProfile(localStorage.getItem(PROFILE_KEY)); } catch (e) { profile = null; }
}
function saveProfile(p) {
  profile = p;
  try { localStorage.setItem(PROFILE_KEY, p.userId + ':' + p.token); } catch (e) { /* private mode: this page only */ }
}
async function ensureProfile() {
  if (!profile) {
    const r = await api('/api/users', { method: 'POST', headers: { Accept: 'application/json' } });
    if (!Number.isInteger(r.userId) || typeof r.token !== 'string') throw new Error('The server sent an invalid profile.');
    saveProfile({ userId: r.userId, token: r.token });
  }
  return profile;
}
async function fetchRatings() {
  if (!profile) return;
  const r = await api('/api/users/' + profile.userId + '/ratings?limit=10000', { headers: Object.assign({ Accept: 'application/json' }, authHeaders()) });
  myRatings.clear();
  for (const x of Array.isArray(r.ratings) ? r.ratings : []) {
    if (Number.isInteger(x.movieId) && Number.isFinite(x.rating)) myRatings.set(x.movieId, x.rating);
  }
  await titleLabels();
  renderMyRatings();
  refreshStars();
}
// Labels of rated movies from the title list the plot also uses.
async function titleLabels() {
  try {
    const t = await loadTitles();
    if (!t) return;
    for (const id of myRatings.keys()) {
      const i = t.byId.get(id);
      if (i != null && !ratedTitles.has(id)) ratedTitles.set(id, label({ title: t.titles[i], year: t.years[i] }));
    }
  } catch (e) { /* the list shows ids */ }
}
async function setRating(movieId, stars, name) {
  const before = myRatings.has(movieId) ? myRatings.get(movieId) : null;
  clearError();
  try {
    await ensureProfile();
    const path = '/api/users/' + profile.userId + '/ratings/' + movieId;
    if (stars == null) {
      await api(path, { method: 'DELETE', headers: authHeaders() });
      myRatings.delete(movieId);
    } else {
      await api(path, {
        method: 'PUT',
        headers: Object.assign({ 'Content-Type': 'application/json', Accept: 'application/json' }, authHeaders()),
        body: JSON.stringify({ rating: stars }),
      });
      myRatings.set(movieId, stars);
    }
  } catch (err) {
    showError(err.message);
    refreshStars(movieId);
    return;
  }
  if (name) ratedTitles.set(movieId, name);
  undo = { movieId, before, name };
  $('my-status').textContent = (stars == null ? 'Removed your rating of ' : 'You rated ') + (name || 'movie ' + movieId)
    + (stars == null ? '.' : ' ' + starsText(stars) + '.');
  renderMyRatings();
  refreshStars(movieId);
  // "For me" from the profile follows every rating.
  if (meFromProfile && myRatings.size) meForm.requestSubmit();
}
function renderMyRatings() {
  const list = $('my-list');
  const items = Array.from(myRatings, ([id, v]) => {
    const li = el('li', 'my-item');
    li.append(el('span', 'my-title', ratedTitles.get(id) || 'movie ' + id), el('span', 'my-stars', '★ ' + v));
    const b = el('button', 'linkish', 'Remove');
    b.type = 'button';
    b.setAttribute('aria-label', 'Remove your rating of ' + (ratedTitles.get(id) || 'movie ' + id));
    b.addEventListener('click', () => setRating(id, null, ratedTitles.get(id)));
    li.append(b);
    return li;
  });
  list.replaceChildren(...items);
  $('my-undo').hidden = !undo;
  $('my-copy').hidden = !profile;
  if (profile && !myRatings.size && !undo) $('my-status').textContent = 'Your profile has no ratings yet: rate movies with the stars on any card.';
}
// A star rating: a radio group of ten half stars. Arrow keys move (and rate), Delete clears.
function starRating(m) {
  const id = m.movieId, name = label(m);
  const box = el('div', 'stars');
  box.setAttribute('role', 'radiogroup');
  box.setAttribute('aria-label', 'Your rating of ' + name);
  box.dataset.movie = String(id);
  const buttons = STARS.map((v, i) => {
    const b = el('button', 'star ' + (i % 2 ? 'half-r' : 'half-l'), '★');
    b.type = 'button';
    b.setAttribute('role', 'radio');
    b.setAttribute('aria-label', starsText(v));
    b.dataset.value = String(v);
    b.addEventListener('click', () => setRating(id, v, name));
    b.addEventListener('keydown', (e) => {
      let j = null;
      if (e.key === 'ArrowRight' || e.key === 'ArrowUp') j = Math.min(i + 1, 9);
      else if (e.key === 'ArrowLeft' || e.key === 'ArrowDown') j = Math.max(i - 1, 0);
      else if (e.key === 'Home') j = 0;
      else if (e.key === 'End') j = 9;
      else if (e.key === 'Delete' || e.key === 'Backspace') { e.preventDefault(); if (myRatings.has(id)) setRating(id, null, name); return; }
      if (j == null) return;
      e.preventDefault();
      buttons[j].focus();
      setRating(id, STARS[j], name);
    });
    return b;
  });
  box.append(el('span', 'stars-label', 'Rate:'), ...buttons);
  paintStars(box);
  return box;
}
function paintStars(box) {
  const v = myRatings.get(Number(box.dataset.movie));
  const buttons = box.querySelectorAll('.star');
  buttons.forEach((b, i) => {
    const on = v != null && STARS[i] <= v;
    b.classList.toggle('on', on);
    b.setAttribute('aria-checked', String(v != null && STARS[i] === v));
    // Roving focus: the checked star (else the first) is the one Tab reaches.
    b.tabIndex = (v != null ? STARS[i] === v : i === 0) ? 0 : -1;
  });
}
function refreshStars(movieId) {
  const sel = movieId == null ? '.stars' : '.stars[data-movie="' + movieId + '"]';
  document.querySelectorAll(sel).forEach(paintStars);
}
$('my-undo').addEventListener('click', () => {
  if (!undo) return;
  const { movieId, before, name } = undo;
  setRating(movieId, before, name).then(() => { undo = null; $('my-undo').hidden = true; });
});
$('my-copy').addEventListener('click', async () => {
  if (!profile) return;
  const key = profile.userId + ':' + profile.token;
  try {
    await navigator.clipboard.writeText(key);
    $('my-status').textContent = 'Your profile key is copied: paste it under “Use my profile from another browser” there. Keep it private.';
  } catch (e) {
    $('my-key').value = key;
    $('my-status').textContent = 'Copy your profile key from the field below. Keep it private.';
  }
});
$('my-use').addEventListener('click', async () => {
  const p = readProfile($('my-key').value);
  if (!p) { showError('A profile key is the user id, a colon and 64 hex digits, as “Copy my profile key” gives it.'); return; }
  const old = profile;
  profile = p;
  try {
    await fetchRatings();
  } catch (err) {
    profile = old;
    showError('That profile key does not open a profile here: ' + err.message);
    return;
  }
  saveProfile(p);
  clearError();
  $('my-key').value = '';
  $('my-status').textContent = 'Using profile ' + p.userId + ' (' + plural(myRatings.size, 'rating') + ').';
});
loadProfile();
fetchRatings().catch((err) => { $('my-status').textContent = 'Your ratings could not be loaded: ' + err.message; });

// ---------- startup ----------
function setSelect(select, v) {
  if (v != null && Array.from(select.options).some((o) => o.value === String(v))) select.value = String(v);
}
// The menus list the models and indexes the server has (/api/health), so one added to the server
// appears here without a change to the page; known names get a friendly label.
const MODEL_LABELS = {
  similar: 'More like this', collaborative: 'Fans also liked', content: 'Content', hybrid: 'Hybrid',
  item_knn: 'Item-kNN', ease: 'EASE', als: 'ALS', svd: 'SVD',
};
const INDEX_LABELS = { exact: 'Exact', annoy: 'Annoy', hnsw: 'HNSW' };
function fillSelect(select, names, labels) {
  const valid = Array.isArray(names) ? names.filter((n) => typeof n === 'string' && n) : [];
  if (!valid.length) return;
  const kept = select.value;
  select.replaceChildren(...valid.map((n) => {
    const o = document.createElement('option');
    o.value = n;
    o.textContent = Object.prototype.hasOwnProperty.call(labels, n) ? labels[n] : n;
    return o;
  }));
  if (valid.includes(kept)) select.value = kept;
}
api('/api/health').then((h) => {
  const d = h.defaults || {};
  fillSelect(modelSel, h.models, MODEL_LABELS);
  fillSelect(indexSel, h.indexes, INDEX_LABELS);
  if (h.modelShapes && typeof h.modelShapes === 'object' && Array.isArray(h.models)) {
    // The plot shows stored embedding models (not an alias of one).
    const shapes = h.modelShapes;
    fillSelect(sel, h.models.filter((m) => shapes[m] && shapes[m].shape === 'embeddings' && shapes[m].model === m), MODEL_LABELS);
    if (!userModel) setSelect(sel, d.plotModel);
  }
  if (Number.isFinite(h.latestYear)) $('data-year').textContent = ', films up to ' + h.latestYear;
  if (Number.isFinite(h.movies)) $('stats').textContent = num(h.movies) + ' movies';
  if (h.modelShapes && typeof h.modelShapes === 'object') {
    listModels = new Set(Object.keys(h.modelShapes).filter((m) => h.modelShapes[m] && h.modelShapes[m].shape === 'neighbour_lists'));
  }
  if (!touched.has('model')) setSelect(modelSel, d.model);
  if (!touched.has('index')) { setSelect(indexSel, d.index); chosenIndex = indexSel.value; }
  syncIndex();
  if (!touched.has('k') && Number.isFinite(d.k)) { kRange.value = String(clamp(Math.round(d.k), 1, 15)); kOut.textContent = kRange.value; }
  if (Array.isArray(h.genres)) {
    const genres = h.genres.filter((g) => typeof g === 'string');
    genreChecks($('genres-in'), genres, 'gin-');
    genreChecks($('genres-out'), genres, 'gout-');
  }
}, (e) => showError(e.message)).then(restoreFromUrl);
// A bookmarked or shared URL, and Back and Forward: the tab, the settings and the pick it names.
function restoreFromUrl() {
  const u = new URL(location.href).searchParams;
  restoring = true;
  try {
    for (const [select, name] of [[modelSel, 'model'], [indexSel, 'index']]) {
      if (u.has(name)) { setSelect(select, u.get(name)); touched.add(name); }
    }
    if (u.has('index')) chosenIndex = indexSel.value;
    syncIndex();
    const k = Number(u.get('k'));
    if (u.has('k') && Number.isInteger(k) && k >= 1 && k <= 15) {
      kRange.value = String(k);
      kOut.textContent = kRange.value;
      touched.add('k');
    }
    const tab = tabs.find((t) => t.id === 'tab-' + u.get('tab')) || tabs[0];
    selectTab(tab, false);
  } finally {
    restoring = false;
  }
  const movie = Number(u.get('movie'));
  if (Number.isInteger(movie) && movie > 0 && !(state.last && state.last.query && state.last.query.movieId === movie)) {
    input.value = '';
    state.chosen = null;
    restoring = true;
    recommend(movie, '').finally(() => { restoring = false; });
  }
}
window.addEventListener('popstate', restoreFromUrl);

})();
