// The viewer's self-test, run by view.js when the address has "#selftest": it
// drives the page as a user would (hover a node, click to pin it, move the
// threshold slider, search, zoom, reload the state from the address, unpin) and
// writes what it saw into #selftest-result as JSON, with the errors the page's
// collector caught. tests/export/view_browser_test.cc reads it from Chromium's
// --dump-dom. Synchronous, so the result is in the DOM when the page has loaded.
window.circuitViewSelfTest = function (view) {
  'use strict';
  const {data, byRow, edges, weightEdges, state, hoverCard, slider, search} = view;
  const ex = data.explanations;
  const checks = [];
  const check = (name, ok, detail) => {
    checks.push({name, ok: Boolean(ok), detail: detail === undefined ? '' : String(detail)});
  };
  const result = {nodes: data.nodes.length, edges: edges.length, explained: Boolean(ex)};
  const fire = (target, type, init) => target.dispatchEvent(new MouseEvent(type, Object.assign(
      {bubbles: true, cancelable: true, view: window}, init || {})));
  const input = (target, value) => {
    target.value = value;
    target.dispatchEvent(new Event('input', {bubbles: true}));
  };
  try {
    const svg = document.getElementById('graph-svg');
    const elements = Array.from(svg.querySelectorAll('g.node')).filter((g) => /^n\d+$/.test(g.id));
    result.node_elements = elements.length;
    check('one element per node', elements.length === data.nodes.length,
          `${elements.length} elements, ${data.nodes.length} nodes`);
    check('every edge has its element', edges.every((e) => e.el), edges.filter((e) => !e.el).length);

    // Hover the most important node: its card, with its label and contexts.
    const target = data.nodes.reduce((a, b) => (b.importance > a.importance ? b : a));
    const info = byRow.get(target.row);
    const shape = info.el.querySelector('path, polygon') || info.el;
    const box = info.el.getBoundingClientRect();
    fire(shape, 'mouseover', {clientX: box.x + box.width / 2, clientY: box.y + box.height / 2});
    const label = hoverCard.querySelector('h3 .label');
    result.hovered = {row: target.row, card_row: hoverCard.dataset.row,
                      card_label: label ? label.textContent : null,
                      contexts: hoverCard.querySelectorAll('.context').length,
                      chips: hoverCard.querySelectorAll('.chip').length};
    check('hover shows the node\'s card', !hoverCard.hidden && hoverCard.dataset.row === String(target.row) &&
          label && label.textContent === target.label, JSON.stringify(result.hovered));
    if (info.ex && info.ex.top) {
      const [, marked, ids] = info.ex.top[0];
      const mark = hoverCard.querySelector('.context .tok.marked');
      result.hovered.marked = mark ? mark.textContent : null;
      check('the card marks the top context\'s token',
            mark && mark.textContent === data.tokens[ids[marked]].replace(/\n/g, '↵'), result.hovered.marked);
    }
    fire(shape, 'mouseout', {relatedTarget: svg});
    check('the card hides on mouseout', hoverCard.hidden);

    // Click: pinned and selected, in the address.
    fire(shape, 'click');
    const pinned = document.querySelector(`#pinned .card[data-row="${target.row}"]`);
    check('click pins the card', pinned && state.pins.includes(target.row), state.pins);
    check('click selects the node', state.sel === target.row && info.el.classList.contains('selected'), state.sel);
    check('the address holds pin and selection',
          location.hash.includes('pin=' + target.row) && location.hash.includes('sel=' + target.row), location.hash);
    if (ex && ex.prompts.length) {
      const spans = document.querySelectorAll('#prompt-tokens .tok');
      const coloured = document.querySelectorAll('#prompt-tokens .tok[data-value]');
      result.prompt = {tokens: spans.length, coloured: coloured.length};
      check('the prompt panel shows the prompt', spans.length === ex.prompts[state.p].length, spans.length);
      if (info.ex && info.ex.acts) {
        check('the prompt is coloured by the node', coloured.length === spans.length, coloured.length);
      }
    }

    // Threshold: the median |weight| hides exactly the weaker edges.
    const weights = weightEdges.map((e) => Math.abs(e.w)).sort((a, b) => a - b);
    if (weights.length) {
      input(slider, weights[Math.floor(weights.length / 2)]);
      const t = Number(slider.value);
      const expected = weights.filter((w) => w >= t).length;
      const shown = weightEdges.filter((e) => !e.el.classList.contains('below-threshold')).length;
      result.threshold = {t, shown, expected};
      check('the slider hides edges below |weight|', shown === expected && shown < weights.length + 1,
            JSON.stringify(result.threshold));
      check('the address holds the threshold', location.hash.includes('t=' + t), location.hash);
    }

    // Search by label: the least important node's label finds it.
    const other = data.nodes.reduce((a, b) => (b.importance < a.importance ? b : a));
    input(search, other.label);
    const found = Array.from(svg.querySelectorAll('g.node.match')).map((g) => g.id);
    const expected = data.nodes.filter((n) => n.label.toLowerCase().includes(other.label.toLowerCase()));
    result.search = {query: other.label, found: found.length};
    check('search marks the matching nodes', found.includes('n' + other.row) &&
          expected.every((n) => found.includes('n' + n.row)), found.join(' '));
    input(search, '');
    check('clearing the search undims', !svg.querySelector('g.dim'));

    // Zoom in (the address keeps the view), then fit.
    document.getElementById('zoom-in').click();
    const zoomed = view.getViewBox().w < view.home.w;
    check('zoom is kept in the address', /[#&]v=-?\d+,-?\d+,\d+/.test(location.hash), location.hash);
    document.getElementById('zoom-fit').click();
    check('zoom buttons change the view', zoomed && view.getViewBox().w === view.home.w &&
          !location.hash.includes('v='));
    document.getElementById('zoom-in').click();

    // The address restores the view: clear everything, then read it back.
    const hash = location.hash;
    result.hash = hash;
    const zoomedBox = view.getViewBox().w;
    view.applyState(view.parseHash(''));
    const cleared = state.pins.length === 0 && state.sel === null && view.getViewBox().w === view.home.w;
    view.applyState(view.parseHash(hash));
    check('the address restores pins, selection, threshold and zoom', cleared &&
          state.pins.includes(target.row) && Math.abs(view.getViewBox().w - zoomedBox) <= 1 &&
          state.sel === target.row && Math.abs(Number(slider.value) - state.t) < 1e-9 &&
          view.stateString() === hash.replace(/^#/, ''), view.stateString());

    // Unpin from the card's close button.
    const close = document.querySelector(`#pinned .card[data-row="${target.row}"] .unpin`);
    if (close) close.click();
    check('the close button unpins', !state.pins.includes(target.row) &&
          !document.querySelector('#pinned .card'), state.pins);
  } catch (err) {
    window.circuitErrors.push('self-test: ' + (err && err.stack ? err.stack : String(err)));
  }
  result.errors = window.circuitErrors.slice();
  result.checks = checks;
  result.ok = checks.length > 0 && checks.every((c) => c.ok) && result.errors.length === 0;
  const out = document.getElementById('selftest-result');
  out.textContent = JSON.stringify(result);
  out.hidden = false;
  document.documentElement.dataset.selftest = result.ok ? 'pass' : 'fail';
};
