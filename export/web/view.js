// The circuit viewer's script (circuit view; docs/graphs.md). It binds the data
// blob (#circuit-data, format "circuit.view" in export/include/circuit/export/
// view.h) to Graphviz's SVG, whose groups have ids "n<row>" (nodes) and
// "e<src>_<dst>" (edges). Text from the data only ever enters the page as
// textContent. With "#selftest" in the address it drives its own controls and
// writes the results into #selftest-result (the browser test reads them).
(function () {
  'use strict';

  const data = JSON.parse(document.getElementById('circuit-data').textContent);
  const ex = data.explanations;  // null when the circuit file has none
  const tokens = data.tokens;
  const svg = document.getElementById('graph-svg');
  const $ = (id) => document.getElementById(id);
  const hoverCard = $('hover-card');

  // row -> {n: node, i: position in data.nodes, el: its <g>, ex: explanation, ins, outs}
  const byRow = new Map();
  data.nodes.forEach((n, i) => {
    byRow.set(n.row, {n, i, el: $('n' + n.row), ex: ex ? ex.nodes[i] : null, ins: [], outs: []});
  });
  const edges = data.edges.map(([s, d, w, k]) => ({s, d, w, k, el: $('e' + s + '_' + d)}));
  for (const e of edges) {
    byRow.get(e.s).outs.push(e);
    byRow.get(e.d).ins.push(e);
  }
  const weightEdges = edges.filter((e) => e.k === 0);
  // Graphviz's <title>s would show as browser tooltips over the cards.
  svg.querySelectorAll('title').forEach((t) => t.remove());

  const state = {sel: null, pins: [], t: 0, p: 0, q: '', v: null};

  // ---- small helpers ----
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(3)));
  }
  function signed(v) { return (v > 0 ? '+' : '') + fmt(v); }
  function rowOf(g) {
    const m = g && /^n(\d+)$/.exec(g.id);
    return m && byRow.has(Number(m[1])) ? Number(m[1]) : null;
  }
  // A token as it reads in a list: spaces and line breaks made visible.
  function chipText(t) { return t.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥'); }
  function tokenSpan(id, cls) {
    return el('span', 'tok' + (cls ? ' ' + cls : ''), tokens[id].replace(/\n/g, '↵'));
  }
  // Background for activation v on a scale where |v| = max is full colour.
  function shade(v, max) {
    if (v === null || !(max > 0)) return '';
    const a = Math.min(1, Math.abs(v) / max) * 0.85;
    return v >= 0 ? `rgba(230, 85, 13, ${a})` : `rgba(31, 95, 191, ${a})`;
  }

  // ---- cards ----
  function facts(info) {
    const n = info.n;
    const table = el('table', 'facts');
    const rows = [['location', `${n.location} (layer ${n.layer})`], ['index', n.index],
      ['importance', fmt(n.importance) + ' nats/prompt'], ['mask logit', fmt(n.mask_logit)],
      ['edges', `${info.ins.length} in, ${info.outs.length} out`], ['row', n.row]];
    for (const [k, v] of rows) {
      const tr = el('tr');
      tr.append(el('td', '', k), el('td', '', String(v)));
      table.append(tr);
    }
    return table;
  }
  function edgeList(title, list, end, limit) {
    const frag = [el('h4', '', `${title} (${list.length})`)];
    if (!list.length) return frag;
    const ul = el('ul', 'edge-list');
    const sorted = list.slice().sort((a, b) => Math.abs(b.w) * (1 - b.k) - Math.abs(a.w) * (1 - a.k));
    for (const e of sorted.slice(0, limit)) {
      const li = el('li', '', byRow.get(e[end]).n.label + ' ');
      li.append(e.k === 1 ? el('span', 'note', 'residual')
                          : el('span', e.w >= 0 ? 'pos' : 'neg', signed(e.w)));
      ul.append(li);
    }
    if (sorted.length > limit) ul.append(el('li', 'note', `and ${sorted.length - limit} more`));
    frag.push(ul);
    return frag;
  }
  function contexts(title, list, limit) {
    const frag = [el('h4', '', title)];
    for (const [value, marked, ids] of list.slice(0, limit)) {
      // The marked token stays in view: what precedes it is clipped on the left.
      const line = el('div', 'context');
      const before = el('span', 'before'), after = el('span', 'after');
      ids.forEach((id, k) => {
        if (k !== marked) (k < marked ? before : after).append(tokenSpan(id));
      });
      line.append(el('span', 'value', fmt(value)), before, tokenSpan(ids[marked], 'marked'), after);
      frag.push(line);
    }
    return frag;
  }
  function chips(title, list, limit) {
    const box = el('div', 'chips');
    for (const [id, score] of list.slice(0, limit)) {
      const chip = el('span', 'chip tok', chipText(tokens[id]));
      chip.append(el('span', 'score', signed(score)));
      box.append(chip);
    }
    return [el('h4', '', title), box];
  }
  function classMeans(means) {
    const grid = el('div', 'bars');
    const max = Math.max(...means.map((m) => Math.abs(m || 0)), 1e-12);
    means.forEach((m, k) => {
      const bar = el('div', 'bar' + (m < 0 ? ' negative' : ''));
      bar.style.width = (100 * Math.abs(m || 0) / max) + '%';
      grid.append(el('span', '', (ex.class_names[k] !== undefined ? ex.class_names[k] : 'class ' + k)),
                  bar, el('span', '', fmt(m)));
    });
    return [el('h4', '', 'mean activation by class (answer position)'), grid];
  }
  function histogram([binEdges, counts]) {
    const ns = 'http://www.w3.org/2000/svg';
    const h = document.createElementNS(ns, 'svg');
    const width = 240, height = 28, max = Math.max(...counts, 1);
    h.setAttribute('class', 'histogram');
    h.setAttribute('width', width);
    h.setAttribute('height', height);
    counts.forEach((c, k) => {
      const r = document.createElementNS(ns, 'rect');
      const w = width / counts.length;
      const bh = c > 0 ? Math.max(1, height * Math.log1p(c) / Math.log1p(max)) : 0;
      r.setAttribute('x', k * w);
      r.setAttribute('width', Math.max(0.5, w - 0.5));
      r.setAttribute('y', height - bh);
      r.setAttribute('height', bh);
      h.append(r);
    });
    const range = el('div', 'note', `${fmt(binEdges[0])} … ${fmt(binEdges[binEdges.length - 1])} (log counts)`);
    return [el('h4', '', 'activation histogram (corpus)'), h, range];
  }
  function attention(list, limit) {
    const frag = [el('h4', '', 'attention from the answer position')];
    for (const [p, weights] of list.slice(0, limit)) {
      const line = el('div', 'token-line');
      const max = Math.max(...weights, 1e-12);
      (ex.prompts[p] || []).forEach((id, k) => {
        const span = tokenSpan(id);
        span.style.background = `rgba(31, 95, 191, ${0.85 * (weights[k] || 0) / max})`;
        span.title = fmt(weights[k]);
        line.append(span);
      });
      frag.push(line);
    }
    return frag;
  }
  function explanation(e, full) {
    const parts = [];
    const many = full ? 1e9 : 4;
    if (e.means) parts.push(...classMeans(e.means));
    if (e.top) parts.push(...contexts('top activations', e.top, many));
    if (e.bottom) parts.push(...contexts('bottom activations', e.bottom, full ? 1e9 : 2));
    if (e.promoted) parts.push(...chips('promotes (output tokens)', e.promoted, full ? 1e9 : 8));
    if (e.suppressed) parts.push(...chips('suppresses', e.suppressed, full ? 1e9 : 8));
    if (e.inputs) parts.push(...chips('driven by input tokens', e.inputs, full ? 1e9 : 8));
    if (e.attention) parts.push(...attention(e.attention, full ? 1e9 : 2));
    if (e.hist) parts.push(...histogram(e.hist));
    return parts;
  }
  // Fills `card` with node `row`'s card; pinned cards are complete and closable.
  function fillCard(card, row, pinned) {
    const info = byRow.get(row);
    card.replaceChildren();
    card.dataset.row = row;
    const h = el('h3');
    const label = el('span', 'label', info.n.label);
    h.append(label);
    if (pinned) {
      label.title = 'select this node (colours the prompt by its activation)';
      label.addEventListener('click', () => { select(row); center(row); });
      const close = el('button', 'unpin', '×');
      close.title = 'unpin';
      close.addEventListener('click', () => togglePin(row));
      h.append(close);
    }
    card.append(h, facts(info));
    card.append(...edgeList('reads from', info.ins, 's', pinned ? 12 : 5));
    card.append(...edgeList('writes to', info.outs, 'd', pinned ? 12 : 5));
    if (!ex) {
      card.append(el('p', 'none', 'no explanations in this circuit file (circuit explain adds them)'));
    } else if (info.ex) {
      card.append(...explanation(info.ex, pinned));
    }
    return card;
  }

  // ---- hover ----
  function placeHover(x, y) {
    const w = hoverCard.offsetWidth, h = hoverCard.offsetHeight;
    hoverCard.style.left = Math.max(4, x + 18 + w > innerWidth ? x - 18 - w : x + 18) + 'px';
    hoverCard.style.top = Math.max(4, Math.min(y + 12, innerHeight - h - 4)) + 'px';
  }
  function setIncident(row, on) {
    const info = byRow.get(row);
    info.el.classList.toggle('hovered', on);
    for (const e of info.ins.concat(info.outs)) if (e.el) e.el.classList.toggle('incident', on);
  }
  let hovered = null;
  function showHover(row, x, y) {
    if (hovered !== null) setIncident(hovered, false);
    hovered = row;
    setIncident(row, true);
    fillCard(hoverCard, row, false);
    hoverCard.hidden = false;
    placeHover(x, y);
  }
  function hideHover() {
    if (hovered !== null) setIncident(hovered, false);
    hovered = null;
    hoverCard.hidden = true;
  }
  svg.addEventListener('mouseover', (e) => {
    const row = rowOf(e.target.closest('g.node'));
    if (row !== null && row !== hovered) showHover(row, e.clientX, e.clientY);
  });
  svg.addEventListener('mouseout', (e) => {
    const g = e.target.closest('g.node');
    if (g && !(e.relatedTarget && g.contains(e.relatedTarget))) hideHover();
  });
  svg.addEventListener('mousemove', (e) => { if (hovered !== null) placeHover(e.clientX, e.clientY); });

  // ---- pins, selection, prompt panel ----
  function renderPinned() {
    const box = $('pinned');
    box.replaceChildren(...state.pins.map((row) => {
      const card = fillCard(el('div', 'card'), row, true);
      card.classList.toggle('selected', row === state.sel);
      return card;
    }));
    if (!state.pins.length) box.append(el('p', 'note', 'click a node to pin its card here'));
    $('pinned-count').textContent = state.pins.length ? `(${state.pins.length})` : '';
    for (const [row, info] of byRow) info.el.classList.toggle('pinned', state.pins.includes(row));
  }
  function renderPrompt() {
    const head = $('prompt-head'), box = $('prompt-tokens');
    head.replaceChildren();
    box.replaceChildren();
    if (!ex || !ex.prompts.length) {
      head.append(el('span', 'note', 'no explanations in this circuit file: `circuit explain --circuit ' +
          'C.h5` adds them, and this panel then shows task prompts coloured by the selected node'));
      return;
    }
    const pick = el('select');
    pick.id = 'prompt-select';
    ex.prompts.forEach((p, k) => {
      const text = p.map((id) => tokens[id]).join('').replace(/\s+/g, ' ');
      pick.append(new Option(`prompt ${k + 1}: ${text.length > 50 ? text.slice(0, 50) + '…' : text}`, k));
    });
    pick.value = state.p;
    pick.addEventListener('change', () => { state.p = Number(pick.value); renderPrompt(); writeHash(); });
    const info = state.sel === null ? null : byRow.get(state.sel);
    // acts: percent of acts_scale, the node's largest |activation| on the prompts.
    const acts = info && info.ex && info.ex.acts ? info.ex.acts : null;
    const scale = acts ? info.ex.acts_scale : 0;
    head.append(pick, el('span', 'note', !info ? 'click a node to colour the prompt by its activation'
        : acts ? `activation of ${info.n.label} (orange +, blue −; full colour at |${fmt(scale)}|)`
               : `${info.n.label} has no activations on the prompts`));
    ex.prompts[state.p].forEach((id, k) => {
      const span = tokenSpan(id);
      if (acts && acts[state.p]) {
        const percent = acts[state.p][k];
        const v = percent === null || percent === undefined ? null : percent / 100 * scale;
        span.style.background = shade(v, scale);
        span.dataset.value = v === null ? '' : Number(v.toPrecision(2));
        span.title = fmt(v);
      }
      box.append(span);
    });
  }
  function select(row) {
    state.sel = row;
    for (const [r, info] of byRow) info.el.classList.toggle('selected', r === row);
    for (const card of $('pinned').querySelectorAll('.card')) {
      card.classList.toggle('selected', Number(card.dataset.row) === row);
    }
    renderPrompt();
    writeHash();
  }
  function togglePin(row) {
    const at = state.pins.indexOf(row);
    if (at >= 0) {
      state.pins.splice(at, 1);
    } else {
      state.pins.unshift(row);
      state.sel = row;
    }
    renderPinned();
    select(state.sel);
  }

  // ---- edge threshold ----
  const slider = $('threshold');
  const maxWeight = Math.max(0, ...weightEdges.map((e) => Math.abs(e.w)));
  slider.max = maxWeight;
  slider.step = maxWeight > 0 ? maxWeight / 500 : 1;
  function applyThreshold() {
    let shown = 0;
    for (const e of weightEdges) {
      const below = Math.abs(e.w) < state.t;
      if (e.el) e.el.classList.toggle('below-threshold', below);
      if (!below) ++shown;
    }
    $('threshold-value').textContent = `${fmt(state.t)}: ${shown} of ${weightEdges.length} weight edges`;
  }
  slider.addEventListener('input', () => { state.t = Number(slider.value); applyThreshold(); writeHash(); });

  // ---- search: labels, and the tokens a node reads, writes or fires on ----
  const search = $('search');
  function nodeTokens(info) {
    const e = info.ex;
    if (!e) return [];
    const ids = [];
    for (const key of ['promoted', 'suppressed', 'inputs']) if (e[key]) ids.push(...e[key].map((s) => s[0]));
    if (e.top) ids.push(...e.top.map(([, marked, t]) => t[marked]));
    return ids.map((id) => tokens[id].toLowerCase());
  }
  function matches() {
    const q = state.q.trim().toLowerCase();
    if (!q) return null;
    return data.nodes.filter((n) => {
      const info = byRow.get(n.row);
      return n.label.toLowerCase().includes(q) || nodeTokens(info).some((t) => t.includes(q));
    }).map((n) => n.row);
  }
  function applySearch() {
    const found = matches();
    const set = new Set(found || []);
    for (const [row, info] of byRow) {
      info.el.classList.toggle('match', set.has(row));
      info.el.classList.toggle('dim', found !== null && !set.has(row));
    }
    for (const e of edges) {
      if (e.el) e.el.classList.toggle('dim', found !== null && !(set.has(e.s) && set.has(e.d)));
    }
    $('search-count').textContent = found === null ? '' : `${found.length} match${found.length === 1 ? '' : 'es'}`;
    return found;
  }
  search.addEventListener('input', () => { state.q = search.value; applySearch(); writeHash(); });
  search.addEventListener('keydown', (e) => {
    const found = e.key === 'Enter' ? applySearch() : null;
    if (found && found.length) { select(found[0]); center(found[0]); }
  });

  // ---- zoom and pan (the SVG's viewBox) ----
  const home = (() => { const b = svg.viewBox.baseVal; return {x: b.x, y: b.y, w: b.width, h: b.height}; })();
  let vb = Object.assign({}, home);
  function setViewBox() { svg.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`); }
  // The view rectangle changed by the user: kept in the address (whole points).
  function viewChanged() {
    state.v = [vb.x, vb.y, vb.w].map(Math.round);
    writeHash();
  }
  function setView(v) {  // v: [x, y, width] or null for the whole circuit
    vb = v ? {x: v[0], y: v[1], w: v[2], h: v[2] * home.h / home.w} : Object.assign({}, home);
    setViewBox();
  }
  function toSvg(x, y) {
    const pt = svg.createSVGPoint();
    pt.x = x;
    pt.y = y;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function zoom(factor, x, y) {  // x, y: the fixed point, in SVG units
    vb = {x: x - (x - vb.x) * factor, y: y - (y - vb.y) * factor, w: vb.w * factor, h: vb.h * factor};
    setViewBox();
  }
  function zoomCenter(factor) { zoom(factor, vb.x + vb.w / 2, vb.y + vb.h / 2); viewChanged(); }
  function center(row) {
    const r = byRow.get(row).el.getBoundingClientRect();
    const c = toSvg(r.x + r.width / 2, r.y + r.height / 2);
    vb.x = c.x - vb.w / 2;
    vb.y = c.y - vb.h / 2;
    setViewBox();
    viewChanged();
  }
  svg.addEventListener('wheel', (e) => {
    e.preventDefault();
    const p = toSvg(e.clientX, e.clientY);
    zoom(Math.exp(Math.max(-200, Math.min(200, e.deltaY)) * 0.002), p.x, p.y);
    viewChanged();
  }, {passive: false});
  $('zoom-in').addEventListener('click', () => zoomCenter(1 / 1.4));
  $('zoom-out').addEventListener('click', () => zoomCenter(1.4));
  $('zoom-fit').addEventListener('click', () => { setView(null); state.v = null; writeHash(); });
  let drag = null, dragged = false;
  const graphBox = $('graph');
  graphBox.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    drag = {x: e.clientX, y: e.clientY, vb: Object.assign({}, vb), scale: svg.getScreenCTM().a};
    dragged = false;
  });
  window.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!dragged && Math.abs(dx) + Math.abs(dy) < 4) return;
    dragged = true;
    graphBox.classList.add('panning');
    vb.x = drag.vb.x - dx / drag.scale;
    vb.y = drag.vb.y - dy / drag.scale;
    setViewBox();
  });
  window.addEventListener('pointerup', () => {
    if (drag && dragged) viewChanged();
    drag = null;
    graphBox.classList.remove('panning');
  });
  svg.addEventListener('click', (e) => {
    if (dragged) { dragged = false; return; }
    const row = rowOf(e.target.closest('g.node'));
    if (row !== null) togglePin(row);
  });

  // ---- the view state in the address: #sel=ROW&pin=ROW,ROW&t=0.05&p=1&q=text&v=X,Y,W ----
  let written = null;
  function stateString() {
    const parts = [];
    if (state.sel !== null) parts.push('sel=' + state.sel);
    if (state.pins.length) parts.push('pin=' + state.pins.join(','));
    if (state.t > 0) parts.push('t=' + state.t);
    if (state.p > 0) parts.push('p=' + state.p);
    if (state.q) parts.push('q=' + encodeURIComponent(state.q));
    if (state.v) parts.push('v=' + state.v.join(','));
    return parts.join('&');
  }
  function writeHash() {
    written = '#' + stateString();
    if (location.hash === written || (written === '#' && !location.hash)) return;
    try {
      history.replaceState(null, '', written);
    } catch (err) {  // some browsers refuse history changes on file:// pages
      location.replace(written);
    }
  }
  function parseHash(hash) {
    const st = {sel: null, pins: [], t: 0, p: 0, q: '', v: null, selftest: false};
    for (const part of hash.replace(/^#/, '').split('&')) {
      const [k, v = ''] = part.split('=');
      const rowValue = (s) => (/^\d+$/.test(s) && byRow.has(Number(s)) ? Number(s) : null);
      if (k === 'selftest') st.selftest = true;
      else if (k === 'sel') st.sel = rowValue(v);
      else if (k === 'pin') st.pins = v.split(',').map(rowValue).filter((r) => r !== null);
      else if (k === 't') st.t = Math.max(0, Number(v) || 0);
      else if (k === 'p') st.p = Math.max(0, Math.floor(Number(v) || 0));
      else if (k === 'q') { try { st.q = decodeURIComponent(v); } catch (err) { st.q = ''; } }
      else if (k === 'v') {
        const box = v.split(',').map(Number);
        if (box.length === 3 && box.every(Number.isFinite) && box[2] > 0) st.v = box;
      }
    }
    if (!ex || st.p >= ex.prompts.length) st.p = 0;
    return st;
  }
  function applyState(st) {
    state.pins = st.pins.filter((r, k) => st.pins.indexOf(r) === k);
    state.t = Math.min(st.t, maxWeight);
    state.p = st.p;
    state.q = st.q;
    state.v = st.v;
    setView(st.v);
    slider.value = state.t;
    search.value = state.q;
    applyThreshold();
    applySearch();
    renderPinned();
    select(st.sel);
  }
  window.addEventListener('hashchange', () => {
    if (location.hash !== written) applyState(parseHash(location.hash));
  });

  const initial = parseHash(location.hash);
  applyState(initial);
  if (initial.selftest && window.circuitViewSelfTest) {
    window.circuitViewSelfTest({data, byRow, edges, weightEdges, state, parseHash, applyState, stateString,
                                hoverCard, slider, search, home, getViewBox: () => vb});
  }
})();
