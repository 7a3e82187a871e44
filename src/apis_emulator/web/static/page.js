/* apis-emulator page (specification §4.1): top-bar buttons, unit cards, details, live plots.
 *
 * Every request goes to the emulator that served this page, by relative URL.  What is fetched
 * is what is shown: a compact table of the cards on screen (api/units with a window: the
 * server filters and sorts, so 10,000 units cost what 50 do), the DC grid view's summary
 * (in api/status), the full document only for
 * the unit whose details are open (api/unit/<id>), and only the new samples of the plots
 * (api/history?since=…); with a sharing controller, its deals (get/deals) while the DC grid
 * view is on screen or a unit is open.  Changes go through the Web API of §5 (set/emu,
 * set/dcdc, save …, set/operationMode); a unit's values are first checked as a whole
 * (api/check/<id>) so that a refused value changes nothing.
 */
(() => {
  'use strict';

  const CFG = JSON.parse(document.getElementById('page-config').textContent);
  const $ = (id) => document.getElementById(id);
  const EMU_KEYS = CFG.fields.filter((f) => f.api === 'emu').map((f) => f.key);
  const DCDC_KEYS = CFG.fields.filter((f) => f.api === 'dcdc').map((f) => f.key);
  // the DC/DC mode codes come from the server (modes.Mode); the page knows only their tags
  const MODE_TAG = CFG.mode_tags; // code -> WAIT | GIVE | REF | TAKE
  const tagOf = (mode) => MODE_TAG[mode] || 'WAIT';
  const SHARING = CFG.controller !== 'none';
  const COLORS = {
    pv: '#f2a900', load: '#d6336c', batt: '#1c7ed6', acin: '#5c5f66', grid: '#0c8599',
    rsoc: '#2f9e44', ref: '#7048e8', give: '#e8590c', take: '#2f9e44', wait: '#98a1b3',
  };

  const S = {
    window: null, // last api/units: the cards shown
    matched: CFG.units, // units matching the filter (as the last window said)
    range: [0, 0], // [offset, limit] of the window last asked for
    pitch: 94, // [px] height of a row of cards, gap included (measured once cards exist)
    windowBusy: false,
    windowAgain: false,
    status: null, // last api/status
    doc: null, // full document of the open unit
    openId: null,
    edits: new Map(), // id -> {field: text entered}
    refused: new Map(), // id -> [{field, error}]
    cards: new Map(), // id -> card element
    cardIds: '', // ids shown, joined: to notice a new order
    busy: false,
    timer: null,
    plots: { community: null, unit: null, ig: null },
    deals: null, // last get/deals (only with a sharing controller)
    gridVisible: true, // the DC grid view is on screen (deals are read only then, or for details)
    hist: { community: null, unit: null, unitId: null },
  };

  // ------------------------------------------------------------------ requests
  async function api(path) {
    const response = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const err = new Error((body && body.error) || `${response.status} ${response.statusText}`);
      err.status = response.status;
      err.body = body;
      throw err;
    }
    return body;
  }
  const query = (values) => Object.entries(values)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

  // ------------------------------------------------------------------ formatting
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  function fmt(v, digits = 0) {
    if (!isNum(v)) return '—';
    const x = Math.abs(v) < 0.5 * 10 ** -digits ? 0 : v;
    return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function fmtW(v, signed = false, compact = false) {
    if (!isNum(v)) return '—';
    const sign = signed && v > 0.5 ? '+' : '';
    if (Math.abs(v) >= 10000) return `${sign}${fmt(v / 1000, 1)} kW`;
    if (compact && Math.abs(v) >= 1000) return `${sign}${fmt(v / 1000, 2)} kW`;
    return `${sign}${fmt(v, 0)} W`;
  }
  /** A number for an input field: settings exactly, measured values rounded. */
  function inputText(key, v) {
    if (typeof v === 'string') return v;
    if (!isNum(v)) return '';
    if (key === 'rsoc') return String(Math.round(v * 100) / 100);
    if (['charge_discharge_power', 'ups_output_power', 'pvc_charge_power', 'p2'].includes(key)) {
      return String(Math.round(v * 10) / 10);
    }
    return String(v);
  }
  const escapeHtml = (s) => String(s).replace(/[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  // ------------------------------------------------------------------ messages
  let messageTimer = null;
  function say(text, kind = 'ok') {
    const box = $('message');
    box.textContent = text;
    box.className = `message show ${kind}`;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { box.className = 'message'; }, kind === 'error' ? 9000 : 4000);
  }

  // ------------------------------------------------------------------ status
  function showStatus(st) {
    S.status = st;
    const time = st.time.replace('-', ' ');
    $('emu-time').textContent = time;
    const pace = $('pace');
    pace.title = isNum(st.actual) ? `measured over the last seconds: ×${fmt(st.actual, 2)}` : '';
    const actual = '';
    if (st.keeps_pace) {
      pace.className = 'pace ok';
      pace.textContent = `keeps pace · ×${fmt(st.acceleration, st.acceleration < 10 ? 2 : 0)}${actual}`;
    } else {
      pace.className = 'pace behind';
      pace.textContent = `behind: ${fmt(st.behind_s, 0)} s dropped · ×${fmt(st.acceleration, 0)}${actual}`;
    }
    pace.dataset.keepsPace = st.keeps_pace ? '1' : '0';
    const acc = $('acc');
    if (document.activeElement !== acc && !acc.dataset.dirty) acc.value = String(st.acceleration);
    $('community-totals').textContent =
      `energy moved over the DC grid: ${fmt(st.dc_energy_wh / 1000, 2)} kWh`;
  }

  // ------------------------------------------------------------------ cards
  // The card list holds the cards on screen only: a window of the matching units, filtered and
  // sorted by the server (api/units?order=&filter=&offset=&limit=), with room kept above and
  // below for the others, so a refresh re-renders at most a screenful of cards.  Up to
  // ALL_CARDS matching units every card is in the page (the browser's find sees them all; a
  // refresh of 200 cards costs a few ms).  Every card has the same height: a row is a pitch.
  const ALL_CARDS = 200;
  const CARD_MIN = 188; // [px] least card width, as .cards in page.css
  const CARD_GAP = 8; // [px] gap between cards, as .cards in page.css
  const CARD_FIELDS = 'display,mode,rsoc,pv,load,flow,wg';

  function columns() {
    return Math.max(1, Math.floor(($('cards').clientWidth + CARD_GAP) / (CARD_MIN + CARD_GAP)));
  }

  /** [offset, limit] of the cards to show: the rows on screen, or all when few match. */
  function rangeNow() {
    if (S.matched <= ALL_CARDS) return [0, ALL_CARDS];
    const cols = columns();
    const top = $('cards').getBoundingClientRect().top;
    const rows = Math.ceil(S.matched / cols);
    const first = Math.min(rows - 1, Math.max(0, Math.floor(-top / S.pitch)));
    const last = Math.max(first + 1, Math.min(rows, Math.ceil((window.innerHeight - top) / S.pitch)));
    return [first * cols, (last - first) * cols];
  }
  const sameRange = () => { const [o, l] = rangeNow(); return o === S.range[0] && l === S.range[1]; };

  function windowQuery() {
    S.range = rangeNow();
    const filter = $('filter').value.trim();
    return `api/units?fields=${CARD_FIELDS}&order=${encodeURIComponent($('sort').value)}` +
      `&offset=${S.range[0]}&limit=${S.range[1]}` +
      (filter ? `&filter=${encodeURIComponent(filter)}` : '');
  }

  /** Read and show the cards on screen, again while the screen moved meanwhile. */
  async function loadWindow() {
    if (S.windowBusy) { S.windowAgain = true; return; }
    S.windowBusy = true;
    try {
      for (let k = 0; k < 4; k++) {
        S.windowAgain = false;
        showWindow(await api(windowQuery()));
        if (!S.windowAgain && sameRange()) break;
      }
    } finally {
      S.windowBusy = false;
    }
  }

  let screenFrame = 0;
  /** Scrolled or resized: read the cards now on screen (once per frame at most). */
  function followScreen() {
    cancelAnimationFrame(screenFrame);
    screenFrame = requestAnimationFrame(() => {
      if (S.window && S.matched > ALL_CARDS && !sameRange()) {
        loadWindow().catch((e) => say(`Reading the units failed: ${e.message}`, 'error'));
      }
    });
  }

  function makeCard(id) {
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.unit = id;
    card.tabIndex = 0;
    card.innerHTML = `
      <div class="card-head"><span class="cid">${escapeHtml(id)}</span><span class="cname"></span><span class="tag"></span></div>
      <div class="soc"><div class="soc-bar"><i></i></div><span class="soc-v"></span></div>
      <dl class="kv">
        <dt>PV</dt><dd class="c-pv"></dd><dt>Load</dt><dd class="c-load"></dd>
        <dt>Batt</dt><dd class="c-flow"></dd><dt>Grid</dt><dd class="c-wg"></dd>
      </dl>`;
    card.addEventListener('click', () => openUnit(id));
    card.addEventListener('keydown', (e) => { if (e.key === 'Enter') openUnit(id); });
    return card;
  }

  function socClass(rsoc) { return rsoc < 20 ? 'low' : rsoc < 40 ? 'mid' : ''; }

  function fillCard(card, t, i) {
    const id = t.ids[i];
    const mode = t.mode[i];
    const display = t.display[i];
    card.className = `card m-${tagOf(mode)}${id === S.openId ? ' open' : ''}` +
      `${S.edits.has(id) ? ' edited' : ''}${S.refused.has(id) ? ' refused' : ''}`;
    card.querySelector('.cname').textContent = display !== id ? display : '';
    const tag = card.querySelector('.tag');
    tag.textContent = tagOf(mode);
    tag.className = `tag m-${tagOf(mode)}`;
    const bar = card.querySelector('.soc-bar i');
    bar.style.width = `${Math.max(0, Math.min(100, t.rsoc[i]))}%`;
    bar.className = socClass(t.rsoc[i]);
    card.querySelector('.soc-v').textContent = `${fmt(t.rsoc[i], 1)} %`;
    card.querySelector('.c-pv').textContent = fmtW(t.pv[i], false, true);
    card.querySelector('.c-load').textContent = fmtW(t.load[i], false, true);
    const flow = card.querySelector('.c-flow');
    flow.textContent = fmtW(t.flow[i], true, true);
    flow.className = `c-flow ${t.flow[i] > 0.5 ? 'pos' : t.flow[i] < -0.5 ? 'neg' : ''}`;
    const wg = card.querySelector('.c-wg');
    wg.textContent = fmtW(t.wg[i], true, true);
    wg.className = `c-wg ${t.wg[i] > 0.5 ? 'pos' : t.wg[i] < -0.5 ? 'neg' : ''}`;
    card.title = `${id} · ${CFG.modes[mode] || mode} · rsoc ${fmt(t.rsoc[i], 2)} %`;
  }

  /** The cards of a window: kept cards refilled, the others made or dropped. */
  function showWindow(w) {
    S.window = w;
    S.matched = w.matched;
    const shown = new Set(w.ids);
    for (const [id, card] of S.cards) {
      if (!shown.has(id)) { card.remove(); S.cards.delete(id); }
    }
    w.ids.forEach((id, i) => {
      let card = S.cards.get(id);
      if (!card) { card = makeCard(id); S.cards.set(id, card); }
      fillCard(card, w, i);
    });
    const key = w.ids.join(',');
    if (key !== S.cardIds) { // another order or window: re-append in order (moves, no re-creation)
      const fragment = document.createDocumentFragment();
      for (const id of w.ids) fragment.appendChild(S.cards.get(id));
      $('cards').appendChild(fragment);
      S.cardIds = key;
    }
    placeWindow(w);
    $('unit-count').textContent = `${w.total}`;
    $('unit-match').textContent = w.matched < w.total ? `${w.matched} match` : '';
  }

  /** Room above and below the cards shown for the rows that are not in the page. */
  function placeWindow(w) {
    const box = $('cards');
    const card = box.querySelector('.card');
    if (card && card.offsetHeight) S.pitch = card.offsetHeight + CARD_GAP;
    const cols = columns();
    const first = Math.floor(w.offset / cols);
    const rows = Math.ceil(w.matched / cols);
    const below = Math.max(0, rows - first - Math.ceil(w.ids.length / cols));
    box.style.paddingTop = first ? `${first * S.pitch}px` : '';
    box.style.paddingBottom = below ? `${below * S.pitch}px` : '';
  }

  // ------------------------------------------------------------------ DC grid view
  function svg(tag, attrs, text) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** The DC grid view from the server's summary (api/status grid): the voltage references,
   * the strongest givers and takers, and the sums, however many units there are. */
  function drawGrid(g) {
    const view = $('grid-view');
    const W = 720;
    const H = 250;
    const busY = 125;
    const vg = S.status ? S.status.bus_voltage : 0;
    const up = vg > 0.5;
    view.replaceChildren();
    const defs = svg('defs', {});
    for (const [name, color] of [['give', COLORS.give], ['take', COLORS.take], ['ref', COLORS.ref]]) {
      const marker = svg('marker', { id: `arrow-${name}`, viewBox: '0 0 10 10', refX: '6', refY: '5',
        markerWidth: '16', markerHeight: '16', markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' });
      marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: color }));
      defs.appendChild(marker);
    }
    view.appendChild(defs);
    // the bus
    view.appendChild(svg('line', { x1: 150, y1: busY, x2: W - 10, y2: busY,
      stroke: up ? '#3b4a6b' : '#c3c8d4', 'stroke-width': 7, 'stroke-linecap': 'round',
      'stroke-dasharray': up ? '' : '10 8' }));
    const ramping = S.status && S.status.ramping;
    const busText = !g.ref.n ? 'DC grid down (no voltage reference)'
      : `${fmt(vg, 1)} V${ramping ? ' · rising' : ''}`;
    view.appendChild(svg('text', { x: 152, y: busY + 24, 'text-anchor': 'start', 'font-size': 13,
      'font-weight': 600, fill: up ? '#3b4a6b' : '#8a91a3' }, busText));
    const width = (w) => 2 + 6 * Math.sqrt(Math.abs(w) / g.max_w);

    const node = (u, x, y, w, h, color, label) => {
      const box = svg('g', { class: 'node', 'data-unit': u.id });
      box.appendChild(svg('rect', { x, y, width: w, height: h, rx: 7, fill: '#fff', stroke: color,
        'stroke-width': 1.8 }));
      box.appendChild(svg('text', { x: x + w / 2, y: y + 15, 'text-anchor': 'middle', 'font-size': 12.5,
        'font-weight': 700, fill: '#1d2433' }, u.id));
      box.appendChild(svg('text', { x: x + w / 2, y: y + 29, 'text-anchor': 'middle', 'font-size': 11,
        fill: color }, label));
      box.addEventListener('click', () => openUnit(u.id));
      box.appendChild(svg('title', {}, `${u.id}: ${CFG.modes[u.mode] || u.mode}, ` +
        `ig ${fmt(u.ig, 2)} A, wg ${fmt(u.wg, 0)} W`));
      view.appendChild(box);
    };
    // voltage references, on the left, joined to the bus
    const shownRefs = g.ref.units;
    shownRefs.forEach((u, k) => {
      const y = busY - 22 + (k - (shownRefs.length - 1) / 2) * 50;
      view.appendChild(svg('line', { x1: 128, y1: y + 20, x2: 156, y2: busY, stroke: COLORS.ref,
        'stroke-width': 3 }));
      node(u, 20, y, 108, 42, COLORS.ref, `REF ${fmt(u.dvg, 0)} V · ${fmtW(-u.wg, true)}`);
    });
    if (g.ref.n > shownRefs.length) {
      view.appendChild(svg('text', { x: 74, y: H - 8, 'text-anchor': 'middle', 'font-size': 11,
        fill: COLORS.ref }, `+${g.ref.n - shownRefs.length} more REF`));
    }
    if (!g.ref.n) {
      view.appendChild(svg('text', { x: 74, y: busY + 4, 'text-anchor': 'middle', 'font-size': 12,
        fill: '#8a91a3' }, 'no REF'));
    }
    // givers above, takers below (the strongest first); the arrow's width grows with the power
    const row = (role, kind) => {
      const color = COLORS[kind];
      const slots = 8;
      const shown = role.units.slice(0, role.n > slots ? slots - 1 : slots);
      const left = 200;
      const span = W - 20 - left;
      const step = span / Math.max(shown.length + (role.n > shown.length ? 1 : 0), 1);
      const boxW = Math.min(100, step - 8);
      shown.forEach((u, k) => {
        const cx = left + step * (k + 0.5);
        const top = kind === 'give';
        const y = top ? 14 : H - 14 - 40;
        const y1 = top ? y + 40 : busY + 6;
        const y2 = top ? busY - 8 : y - 2;
        view.appendChild(svg('line', { x1: cx, y1, x2: cx, y2, stroke: color,
          'stroke-width': width(u.wg), 'marker-end': `url(#arrow-${kind})`, opacity: 0.85 }));
        view.appendChild(svg('text', { x: cx + width(u.wg) / 2 + 10, y: (y1 + y2) / 2 + 4,
          'font-size': 11, fill: color }, `${fmt(Math.abs(u.ig), 2)} A`));
        node(u, cx - boxW / 2, y, boxW, 40, color, fmtW(Math.abs(u.wg)));
      });
      if (role.n > shown.length) {
        const cx = left + step * (shown.length + 0.5);
        const y = kind === 'give' ? 40 : H - 30;
        const rest = role.w - shown.reduce((sum, u) => sum + Math.abs(u.wg), 0);
        view.appendChild(svg('text', { x: cx, y, 'text-anchor': 'middle', 'font-size': 11.5,
          fill: color }, `+${role.n - shown.length} · ${fmtW(rest)}`));
      }
      if (!role.n) {
        view.appendChild(svg('text', { x: left + span / 2, y: kind === 'give' ? 40 : H - 30,
          'text-anchor': 'middle', 'font-size': 12, fill: '#a0a7b8' },
        kind === 'give' ? 'no unit gives' : 'no unit takes'));
      }
    };
    row(g.give, 'give');
    row(g.take, 'take');
    const refW = g.ref.w;
    const named = g.ref.ids.join(', ') + (g.ref.n > g.ref.ids.length ? ', …' : '');
    $('grid-summary').innerHTML =
      `<b>${g.ref.n}</b> REF${g.ref.n ? ` (${escapeHtml(named)}` +
        `${refW > 0.5 ? ` gives ${fmtW(refW)}` : refW < -0.5 ? ` takes ${fmtW(-refW)}` : ''})` : ''}` +
      ` · <b>${g.give.n}</b> giving ${fmtW(g.give.w)}` +
      ` · <b>${g.take.n}</b> taking ${fmtW(g.take.w)}` +
      ` · <b>${g.wait}</b> waiting`;
    $('grid-state').textContent = g.ref.n ? (up ? `bus ${fmt(vg, 1)} V` : 'rising') : 'down';
  }


  // ------------------------------------------------------------------ sharing (built-in controller)
  const DEALS_SHOWN = 8;
  const STATE_ORDER = { started: 0, ramping: 1, new: 2 };
  const fmtKWh = (wh) => `${fmt(wh / 1000, 2)} kWh`;
  const clockOf = (text) => (text ? text.slice(-8) : '');

  /** Whether a refresh reads get/deals: a controller, and its view or a unit's details shown. */
  const wantDeals = () => SHARING && (S.gridVisible || Boolean(S.openId));

  async function loadDeals() {
    if (!wantDeals()) return;
    showDeals(await api('get/deals'));
  }

  /** Whether outside converter commands are refused now (the API answers 409 to set/dcdc). */
  const drivesConverters = (d) => d.operation_mode !== 'manual' || d.active.length > 0;

  function unitLink(id) {
    return `<a href="#${encodeURIComponent(id)}" class="unit-link" data-unit="${escapeHtml(id)}">${escapeHtml(id)}</a>`;
  }

  function dealRow(deal) {
    const done = Math.max(0, Math.min(1, deal.cumulated_wh / Math.max(deal.deal_wh, 1e-9)));
    const master = deal.master ? ' <span class="master" title="the master deal: its charging or discharging unit holds the grid voltage">VR</span>' : '';
    return `<tr data-deal="${escapeHtml(deal.deal_id)}" class="deal st-${escapeHtml(deal.state)}"` +
      ` title="${escapeHtml(`${deal.deal_id}: requested by ${deal.request_unit} (${deal.type}), created ` +
        `${deal.created}${deal.started ? `, started ${deal.started}` : ''}; ${fmt(deal.current_a, 2)} A`)}">` +
      `<td class="deal-id">${escapeHtml(deal.deal_id)}${master}</td>` +
      `<td class="deal-ends"><span class="giver">${unitLink(deal.discharge_unit)}</span> → ` +
      `<span class="taker">${unitLink(deal.charge_unit)}</span></td>` +
      `<td class="deal-progress"><span class="deal-bar"><i style="width:${(100 * done).toFixed(1)}%"></i></span>` +
      `<span class="deal-wh">${fmt(deal.cumulated_wh, 0)} / ${fmt(deal.deal_wh, 0)} Wh</span></td>` +
      `<td><span class="deal-state st-${escapeHtml(deal.state)}">${escapeHtml(deal.state)}</span></td></tr>`;
  }

  function showDeals(d) {
    S.deals = d;
    const select = $('op-mode');
    if (document.activeElement !== select && !select.dataset.dirty) select.value = d.operation_mode;
    const state = $('op-state');
    const drives = drivesConverters(d);
    state.className = `op-state op-${d.operation_mode}`;
    state.dataset.mode = d.operation_mode;
    state.innerHTML = `<b>${escapeHtml(d.operation_mode)}</b>` +
      (d.voltage_reference ? ` · grid voltage held by ${unitLink(d.voltage_reference)}` : '') +
      (drives ? '' : ' · converters follow the Web API');
    const today = d.today || { shared_in: 0, shared_out: 0, deals: 0 };
    $('shared-today').innerHTML =
      `<span title="energy into the charging batteries of today's deals">delivered <b>${fmtKWh(today.shared_in)}</b></span>` +
      ` · <span title="energy out of the discharging batteries of today's deals">taken <b>${fmtKWh(today.shared_out)}</b></span>` +
      ` · <b>${fmt(today.deals, 0)}</b> deals started today`;
    const active = d.active.slice().sort((a, b) => (STATE_ORDER[a.state] - STATE_ORDER[b.state])
      || (a.deal_id < b.deal_id ? -1 : 1));
    const shown = active.slice(0, DEALS_SHOWN);
    const body = $('deals').tBodies[0];
    body.innerHTML = shown.length ? shown.map(dealRow).join('')
      : '<tr class="no-deal"><td colspan="4">no active deal</td></tr>';
    const notes = [];
    if (active.length > shown.length) {
      const rest = active.slice(shown.length);
      const wh = rest.reduce((sum, x) => sum + x.deal_wh - x.cumulated_wh, 0);
      notes.push(`+${rest.length} more deals (${fmt(wh, 0)} Wh to go)`);
    }
    const last = d.finished[0];
    if (last) {
      notes.push(`last ended: ${escapeHtml(last.deal_id)} ${escapeHtml(last.discharge_unit)} → ` +
        `${escapeHtml(last.charge_unit)}, ${fmt(last.cumulated_wh, 0)} of ${fmt(last.deal_wh, 0)} Wh, ` +
        `<span class="end-reason">${escapeHtml(last.end_reason)}</span> at ${escapeHtml(clockOf(last.ended))}`);
    }
    $('deals-note').innerHTML = notes.join(' · ');
    showUnitSharing();
  }

  /** The open unit's battery status class, remaining Wh and deals. */
  function showUnitSharing() {
    const box = $('d-sharing');
    if (!box || !S.openId || !S.deals) return;
    const d = S.deals;
    const unit = (d.units || {})[S.openId];
    if (!unit) { box.textContent = ''; return; }
    const deals = d.active.filter((x) => x.charge_unit === S.openId || x.discharge_unit === S.openId);
    const roles = deals.map((x) => (x.discharge_unit === S.openId
      ? `gives to ${escapeHtml(x.charge_unit)}` : `takes from ${escapeHtml(x.discharge_unit)}`)
      + ` (${escapeHtml(x.deal_id)}, ${escapeHtml(x.state)})`);
    const status = unit.status || 'none';
    box.innerHTML = `<span class="mlabel">Battery status</span>` +
      `<span class="bstatus bs-${escapeHtml(status)}" data-status="${escapeHtml(status)}">${escapeHtml(status)}</span>` +
      `<b>${fmt(unit.remaining_wh, 0)}</b> Wh remaining · ` +
      (roles.length ? roles.join(', ') : 'no deal') +
      (drivesConverters(d) ? `<div class="driven">The converter follows the ${escapeHtml(d.controller)} controller ` +
        `(${escapeHtml(d.operation_mode)}): ⑤–⑩ can be set in operation mode manual, once its deals have ended.</div>` : '');
  }

  async function applyOperationMode() {
    const select = $('op-mode');
    const mode = select.value;
    const answer = await api(`set/operationMode/${encodeURIComponent(mode)}`);
    delete select.dataset.dirty;
    say(`Operation mode set to ${answer.operation_mode}`);
    showDeals(await api('get/deals'));
  }

  function bindSharing() {
    if (!SHARING) return;
    action('op-apply', applyOperationMode);
    $('op-mode').addEventListener('change', (e) => { e.target.dataset.dirty = '1'; });
    $('sharing').addEventListener('click', (e) => {
      const link = e.target.closest('.unit-link');
      if (!link) return;
      e.preventDefault();
      openUnit(link.dataset.unit);
    });
    if ('IntersectionObserver' in window) {
      new IntersectionObserver((entries) => {
        const visible = entries.some((x) => x.isIntersecting);
        const was = S.gridVisible;
        S.gridVisible = visible;
        if (visible && !was && $('auto-refresh').checked && !document.hidden) {
          loadDeals().catch((e) => say(`Reading the deals failed: ${e.message}`, 'error'));
        }
      }).observe($('grid-panel'));
    }
  }

  // ------------------------------------------------------------------ details
  function fieldValue(doc, key) {
    switch (key) {
      case 'mode': return doc.dcdc.status.status;
      case 'p1': case 'p2': return doc.dcdc.powermeter[key];
      case 'dig': return doc.dcdc.param.dig;
      case 'dvg': case 'drg': return doc.dcdc.vdis[key];
      default: return doc.emu[key];
    }
  }

  function fieldEl(key) { return document.querySelector(`.field[data-field="${key}"]`); }

  function showErrors(id) {
    const errors = S.refused.get(id) || [];
    for (const f of CFG.fields) {
      const box = fieldEl(f.key);
      const err = errors.find((e) => e.field === f.key);
      box.classList.toggle('invalid', Boolean(err));
      box.querySelector('.err').textContent = err ? err.error : '';
      box.querySelector('input, select').setAttribute('aria-invalid', err ? 'true' : 'false');
    }
  }

  function showForm() {
    const doc = S.doc;
    const id = S.openId;
    const edits = S.edits.get(id) || {};
    for (const f of CFG.fields) {
      const input = $(`f-${f.key}`);
      const box = fieldEl(f.key);
      const dirty = Object.prototype.hasOwnProperty.call(edits, f.key);
      box.classList.toggle('dirty', dirty);
      if (dirty) {
        if (input.value !== edits[f.key]) input.value = edits[f.key];
      } else if (document.activeElement !== input && doc) {
        input.value = inputText(f.key, fieldValue(doc, f.key));
      }
    }
    showErrors(id);
  }

  function showMeters() {
    const doc = S.doc;
    const m = doc.dcdc.meter;
    $('m-wg').textContent = fmt(m.wg, 1);
    $('m-ig').textContent = fmt(m.ig, 3);
    $('m-vg').textContent = fmt(m.vg, 1);
    $('m-wb').textContent = fmt(m.wb, 1);
    $('m-ib').textContent = fmt(m.ib, 3);
    $('m-vb').textContent = fmt(m.vb, 1);
    $('m-rsoc').textContent = fmt(doc.emu.rsoc, 2);
    const bar = $('m-soc-bar');
    bar.style.width = `${Math.max(0, Math.min(100, doc.emu.rsoc))}%`;
    bar.className = socClass(doc.emu.rsoc);
    $('m-op').textContent = fmt(m.wb - m.wg, 1);
    const st = doc.dcdc.status;
    const ups = doc.emu.ups_operation_mode.mode === 5 ? 'bypass (AC mains)' : 'battery';
    const dt = doc.emu.dischargeable_time;
    $('d-info').innerHTML =
      `UPS mode <b>${ups}</b> · battery lasts ${dt.hour} h ${dt.minute} min · ` +
      `${escapeHtml(st.alarmState)} · converter ${fmt(m.tmp, 1)} °C · kWh1 ${fmt(doc.dcdc.powermeter.kwh1, 2)}` +
      ` · kWh2 ${fmt(doc.dcdc.powermeter.kwh2, 2)} · unit time ${escapeHtml(doc.time.replace('-', ' '))}`;
  }

  /** The open unit's role and powers, from its document (its card may be off screen). */
  function showDetailsState() {
    const doc = S.doc;
    if (!doc) return;
    const mode = doc.dcdc.status.status;
    const flow = doc.emu.battery_current * doc.emu.battery_voltage; // [W], > 0 charging
    $('d-state').innerHTML = `<span class="tag m-${tagOf(mode)}">${tagOf(mode)}</span>` +
      `${escapeHtml(CFG.modes[mode] || mode)}<br>PV ${fmtW(doc.emu.pvc_charge_power)}` +
      ` · load ${fmtW(doc.emu.ups_output_power)} · battery ${fmtW(flow, true)}`;
  }

  function showDetails() {
    if (!S.doc) return;
    $('d-id').textContent = S.openId;
    $('d-display').textContent = S.doc.oesunit.display;
    showForm();
    showMeters();
    showDetailsState();
    showUnitSharing();
  }

  async function loadDetails() {
    const id = S.openId;
    if (!id) return;
    let doc;
    try {
      doc = await api(`api/unit/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e.status === 404 && id === S.openId) { closeDetails(); return; } // removed meanwhile
      throw e;
    }
    if (id !== S.openId) return;
    S.doc = doc;
    showDetails();
  }

  async function openUnit(id) {
    if (S.openId === id) return;
    S.openId = id;
    S.doc = null;
    history.replaceState(null, '', `#${encodeURIComponent(id)}`);
    $('details').hidden = false;
    document.querySelector('.workspace').classList.add('with-details');
    for (const [cid, card] of S.cards) card.classList.toggle('open', cid === id);
    $('d-id').textContent = id;
    S.hist.unit = null;
    S.hist.unitId = id;
    if ($('d-sharing')) $('d-sharing').textContent = '';
    try {
      await loadDetails();
      if (SHARING && !S.gridVisible) await loadDeals();
      else showUnitSharing();
      await loadUnitHistory();
    } catch (e) {
      say(`Read ${id}: ${e.message}`, 'error');
    }
  }

  function closeDetails() {
    S.openId = null;
    S.doc = null;
    $('details').hidden = true;
    document.querySelector('.workspace').classList.remove('with-details');
    for (const card of S.cards.values()) card.classList.remove('open');
    history.replaceState(null, '', location.pathname + location.search);
    for (const name of ['unit', 'ig']) {
      if (S.plots[name]) { S.plots[name].destroy(); S.plots[name] = null; }
    }
  }

  function onEdit(event) {
    const input = event.target;
    const key = input.name;
    const id = S.openId;
    if (!id || !key) return;
    const edits = S.edits.get(id) || {};
    edits[key] = input.value.trim();
    S.edits.set(id, edits);
    const box = fieldEl(key);
    box.classList.add('dirty');
    const errors = S.refused.get(id);
    if (errors && box.classList.contains('invalid')) { // a new value: its old refusal no longer applies
      box.classList.remove('invalid');
      box.querySelector('.err').textContent = '';
      const rest = errors.filter((e) => e.field !== key);
      if (rest.length) S.refused.set(id, rest); else S.refused.delete(id);
    }
    const card = S.cards.get(id);
    if (card) card.classList.add('edited');
  }

  // ------------------------------------------------------------------ set: all or nothing
  /** What a unit's edits send: /set/dcdc needs mode, dvg and dig together (the unchanged
   * ones from the unit's document: the open one's, or read now). */
  async function planFor(id) {
    const edits = S.edits.get(id);
    if (!edits || !Object.keys(edits).length) return null;
    const emu = {};
    for (const k of EMU_KEYS) if (k in edits) emu[k] = edits[k];
    let dcdc = null;
    if (DCDC_KEYS.some((k) => k in edits)) {
      const doc = id === S.openId && S.doc ? S.doc : await api(`api/unit/${encodeURIComponent(id)}`);
      const base = { mode: doc.dcdc.status.status, dvg: doc.dcdc.vdis.dvg, dig: doc.dcdc.param.dig,
        drg: doc.dcdc.vdis.drg };
      dcdc = {};
      for (const k of ['mode', 'dvg', 'dig', 'drg']) dcdc[k] = k in edits ? edits[k] : String(base[k]);
      for (const k of ['p1', 'p2']) if (k in edits) dcdc[k] = edits[k];
    }
    return { id, emu: Object.keys(emu).length ? emu : null, dcdc };
  }

  /** Refusals of the API for a plan, without applying anything ([] when all are accepted). */
  async function refusals(plan) {
    try {
      await api(`api/check/${encodeURIComponent(plan.id)}?${query({ ...(plan.dcdc || {}), ...(plan.emu || {}) })}`);
      return [];
    } catch (e) {
      if (e.status === 400 && e.body) return e.body.errors || [e.body];
      throw e;
    }
  }

  async function apply(plan) {
    const id = encodeURIComponent(plan.id);
    if (plan.dcdc) await api(`set/dcdc/${id}?${query(plan.dcdc)}`);
    if (plan.emu) await api(`set/emu/${id}?${query(plan.emu)}`);
    S.edits.delete(plan.id);
    S.refused.delete(plan.id);
  }

  async function setUnits(ids) {
    const plans = (await Promise.all(ids.map(planFor))).filter(Boolean);
    if (!plans.length) {
      say(ids.length === 1 ? `Nothing to set for ${ids[0]}: change a field first`
        : 'Nothing to set: no unit has changed values', 'error');
      return false;
    }
    const checked = await Promise.all(plans.map(refusals));
    let refused = 0;
    plans.forEach((plan, k) => {
      if (checked[k].length) { S.refused.set(plan.id, checked[k]); refused += 1; }
      else S.refused.delete(plan.id);
    });
    if (refused) {
      const first = plans.find((p) => S.refused.has(p.id)).id;
      if (S.openId !== first) await openUnit(first); else showErrors(first);
      if (S.window) showWindow(S.window);
      const msg = checked.flat()[0];
      say(`Nothing was set: ${refused} unit(s) with a refused value — ${msg.error}`, 'error');
      return false;
    }
    for (const plan of plans) await apply(plan);
    say(plans.length === 1 ? `Set ${plans[0].id}` : `Set ${plans.length} units`);
    return true;
  }

  // ------------------------------------------------------------------ plots
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');

  function plotWidth(el) { return Math.max(260, Math.floor(el.getBoundingClientRect().width) - 4); }

  const pad2 = (n) => String(n).padStart(2, '0');
  /** Emulated time of a plot point: the data set's local time, kept as UTC in the browser. */
  function clockText(ts, withDate) {
    const d = new Date(ts * 1e3);
    const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
    return withDate ? `${d.getUTCFullYear()}/${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())} ${hm}` : hm;
  }
  const timeTicks = (u, splits) => splits.map((ts) => {
    const d = new Date(ts * 1e3);
    return d.getUTCHours() === 0 && d.getUTCMinutes() === 0
      ? `${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())}` : clockText(ts, false);
  });

  function makePlot(el, series, scales, axes, height) {
    const opts = {
      width: plotWidth(el), height, tzDate,
      series: [{ value: (u, ts) => (ts == null ? '—' : clockText(ts, true)) },
        ...series.map((s) => ({ points: { show: false }, ...s }))],
      scales,
      axes: [{ stroke: '#6b7489', grid: { stroke: '#eef0f5' }, ticks: { stroke: '#dfe3ec' },
        values: timeTicks }, ...axes],
      legend: { live: true }, cursor: { drag: { x: true, y: false } },
    };
    const data = [[], ...series.map(() => [])];
    return new uPlot(opts, data, el);
  }

  const axisW = (label) => ({ label, stroke: '#6b7489', size: 58, labelSize: 16,
    grid: { stroke: '#eef0f5' }, ticks: { stroke: '#dfe3ec' },
    values: (u, vals) => vals.map((v) => (Math.abs(v) >= 1000 ? `${v / 1000}k` : v)) });

  function communityPlot() {
    if (!S.plots.community) {
      S.plots.community = makePlot($('community-plot'), [
        { label: 'PV', stroke: COLORS.pv, width: 1.6, fill: 'rgba(242,169,0,.10)', value: (u, v) => fmtW(v) },
        { label: 'Load', stroke: COLORS.load, width: 1.6, value: (u, v) => fmtW(v) },
        { label: 'AC input', stroke: COLORS.acin, width: 1.3, dash: [5, 4], value: (u, v) => fmtW(v) },
        { label: 'DC grid', stroke: COLORS.grid, width: 2, value: (u, v) => fmtW(v) },
        { label: 'rsoc (avg)', stroke: COLORS.rsoc, width: 1.2, scale: '%', dash: [2, 3],
          value: (u, v) => (isNum(v) ? `${fmt(v, 1)} %` : '—') },
      ], { '%': { range: [0, 100] } }, [axisW('W'), { scale: '%', side: 1, label: 'rsoc %',
        stroke: '#6b7489', size: 44, labelSize: 16, grid: { show: false } }], 232);
    }
    return S.plots.community;
  }

  function unitPlots() {
    if (!S.plots.unit) {
      S.plots.unit = makePlot($('unit-plot'), [
        { label: 'PV', stroke: COLORS.pv, width: 1.6, fill: 'rgba(242,169,0,.10)', value: (u, v) => fmtW(v) },
        { label: 'Load', stroke: COLORS.load, width: 1.6, value: (u, v) => fmtW(v) },
        { label: 'Battery (+charge)', stroke: COLORS.batt, width: 1.6, value: (u, v) => fmtW(v, true) },
        { label: 'rsoc', stroke: COLORS.rsoc, width: 2, scale: '%', value: (u, v) => (isNum(v) ? `${fmt(v, 1)} %` : '—') },
      ], { '%': { range: [0, 100] } }, [axisW('W'), { scale: '%', side: 1, label: 'rsoc %',
        stroke: '#6b7489', size: 44, labelSize: 16, grid: { show: false } }], 210);
      S.plots.ig = makePlot($('unit-plot-ig'), [
        { label: 'Grid current ig (+ into the unit)', stroke: COLORS.grid, width: 1.8,
          paths: uPlot.paths.stepped({ align: 1 }), value: (u, v) => (isNum(v) ? `${fmt(v, 2)} A` : '—') },
      ], { y: { range: (u, lo, hi) => [Math.min(lo ?? 0, -0.5) - 0.2, Math.max(hi ?? 0, 0.5) + 0.2] } },
      [{ label: 'A', stroke: '#6b7489', size: 58, labelSize: 16, grid: { stroke: '#eef0f5' } }], 120);
    }
  }

  /** New data; the legend shows the latest values unless the cursor points at others. */
  function showLatest(plot, data) {
    plot.setData(data);
    const hovering = plot.cursor.left != null && plot.cursor.left >= 0;
    if (!hovering && data[0].length) plot.setLegend({ idx: data[0].length - 1 });
  }

  /** Append the new samples to a kept history (trimmed to the server's window). */
  function merge(kept, fresh, keys) {
    if (!kept || !fresh.t.length || (kept.t.length && fresh.t[0] <= kept.t[kept.t.length - 1])) {
      return kept && !fresh.t.length ? kept : fresh;
    }
    const size = S.status ? S.status.history_size : 1440;
    const out = { t: kept.t.concat(fresh.t) };
    for (const k of keys) out[k] = kept[k].concat(fresh[k]);
    if (out.t.length > size) for (const k of ['t', ...keys]) out[k] = out[k].slice(out[k].length - size);
    return out;
  }
  const since = (h) => (h && h.t.length ? `&since=${h.t[h.t.length - 1] - epochStart()}` : '');
  const epochStart = () => (S.status ? S.status.epoch - S.status.emulated_s : 0);

  async function loadCommunityHistory() {
    const fresh = await api(`api/history?x=1${since(S.hist.community)}`);
    const keys = ['pv', 'load', 'acin', 'dcgrid', 'rsoc'];
    S.hist.community = merge(S.hist.community, fresh, keys);
    const h = S.hist.community;
    showLatest(communityPlot(), [h.t, h.pv, h.load, h.acin, h.dcgrid, h.rsoc]);
  }

  async function loadUnitHistory() {
    const id = S.openId;
    if (!id) return;
    const kept = S.hist.unitId === id ? S.hist.unit : null;
    let fresh;
    try {
      fresh = await api(`api/history?unit=${encodeURIComponent(id)}${since(kept)}`);
    } catch (e) {
      if (e.status === 404) return; // the unit was removed: its details close
      throw e;
    }
    if (id !== S.openId) return;
    const keys = ['rsoc', 'pv', 'load', 'flow', 'ig'];
    S.hist.unit = merge(kept, fresh, keys);
    S.hist.unitId = id;
    const h = S.hist.unit;
    unitPlots();
    showLatest(S.plots.unit, [h.t, h.pv, h.load, h.flow, h.rsoc]);
    showLatest(S.plots.ig, [h.t, h.ig]);
    const hours = h.t.length > 1 ? (h.t[h.t.length - 1] - h.t[0]) / 3600 : 0;
    $('d-plot-note').textContent = `${fmt(hours, 1)} h emulated, ${h.t.length} samples`;
  }

  function resizePlots() {
    const pairs = [['community', 'community-plot'], ['unit', 'unit-plot'], ['ig', 'unit-plot-ig']];
    for (const [name, el] of pairs) {
      const plot = S.plots[name];
      if (plot) plot.setSize({ width: plotWidth($(el)), height: plot.height });
    }
  }

  // ------------------------------------------------------------------ refresh
  /** Read what is shown: status, the cards' table, the open unit, the new plot samples. */
  async function refresh() {
    if (S.busy) return;
    S.busy = true;
    try {
      const [status, win] = await Promise.all([api('api/status'), api(windowQuery())]);
      showStatus(status);
      drawGrid(status.grid);
      showWindow(win);
      if (!sameRange()) await loadWindow(); // the first answer told how many match
      await Promise.all([loadDetails(), loadCommunityHistory(), loadUnitHistory(), loadDeals()]);
      document.body.dataset.version = String(win.version);
      if (!document.body.dataset.ready) {
        document.body.dataset.ready = '1';
        performance.mark('apis-first-values');
      }
    } catch (e) {
      say(`Reading the emulator failed: ${e.message}`, 'error');
    } finally {
      S.busy = false;
    }
  }

  function schedule() {
    clearTimeout(S.timer);
    if (!$('auto-refresh').checked || document.hidden) return;
    const every = 1000 * Number($('refresh-every').value || CFG.refresh_s);
    S.timer = setTimeout(async () => { await refresh(); schedule(); }, every);
  }

  /** Run a top-bar action with its button disabled; show its result or its error. */
  function action(id, run) {
    const button = $(id);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await run();
      } catch (e) {
        say(`${button.textContent}: ${e.message}`, 'error');
      } finally {
        button.disabled = false;
      }
    });
  }

  async function readAll() {
    S.edits.clear();
    S.refused.clear();
    S.busy = false;
    await refresh();
    if (S.openId) showForm();
  }

  function bind() {
    action('read-all', async () => { await readAll(); say('Read all units'); });
    action('set-all', async () => {
      await setUnits([...S.edits.keys()]);
      await refresh();
    });
    action('save-all', async () => {
      const all = await api('save');
      say(`Saved ${Object.keys(all).length} units to jsontmp/lastSave.json`);
    });
    action('load-last', async () => {
      if (!confirm('Replace every unit by the ones saved last (jsontmp/lastSave.json)?')) return;
      const all = await api('get/last');
      await readAll();
      say(`Loaded ${Object.keys(all).length} units from the last save`);
    });
    action('reset', async () => {
      if (!confirm('Reset every unit to the standard parameters?')) return;
      const all = await api('restart');
      await readAll();
      say(`Reset ${Object.keys(all).length} units to the standard parameters`);
    });
    action('add-unit', async () => {
      const ids = Object.keys(await api('add/unit'));
      S.busy = false;
      await refresh();
      say(`Added unit ${ids[ids.length - 1] || ''}`.trim()); // the new one comes last
    });
    action('remove-unit', async () => {
      const all = await api('remove/unit');
      const removed = [...new Set([...S.edits.keys(), ...S.cards.keys(), S.openId])]
        .filter((id) => id && !(id in all));
      for (const id of removed) { S.edits.delete(id); S.refused.delete(id); }
      S.busy = false;
      await refresh();
      say(removed.length ? `Removed unit ${removed.join(', ')}`
        : `Removed the unit with the highest id: ${Object.keys(all).length} left`);
    });
    const setAcc = async () => {
      const field = $('acc');
      const value = field.value.trim();
      $('acc-error').textContent = '';
      try {
        const acc = await api(`set/acc/${encodeURIComponent(value || ' ')}`);
        field.value = String(acc);
        delete field.dataset.dirty;
        say(`Acceleration set to ${acc}`);
        S.busy = false;
        await refresh();
      } catch (e) {
        $('acc-error').textContent = e.message;
        throw e;
      }
    };
    action('set-acc', setAcc);
    $('acc').addEventListener('input', (e) => { e.target.dataset.dirty = '1'; $('acc-error').textContent = ''; });
    $('acc').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('set-acc').click(); });

    action('d-read', async () => {
      const id = S.openId;
      S.edits.delete(id);
      S.refused.delete(id);
      for (const f of CFG.fields) fieldEl(f.key).classList.remove('dirty');
      const [doc, win] = await Promise.all([api(`api/unit/${encodeURIComponent(id)}`), api(windowQuery())]);
      S.doc = doc;
      showWindow(win);
      for (const f of CFG.fields) $(`f-${f.key}`).value = inputText(f.key, fieldValue(doc, f.key));
      showDetails();
    });
    action('d-set', async () => {
      const id = S.openId;
      if (await setUnits([id])) {
        S.busy = false;
        await refresh();
        showForm();
      }
    });
    $('unit-form').addEventListener('submit', (e) => { e.preventDefault(); $('d-set').click(); });
    $('unit-form').addEventListener('input', onEdit);
    $('unit-form').addEventListener('change', onEdit);
    $('d-close').addEventListener('click', closeDetails);
    bindSharing();

    $('auto-refresh').addEventListener('change', () => { if ($('auto-refresh').checked) refresh(); schedule(); });
    $('refresh-every').addEventListener('change', schedule);
    const rewindow = () => loadWindow().catch((e) => say(`Reading the units failed: ${e.message}`, 'error'));
    $('sort').addEventListener('change', rewindow);
    let typing = null; // the filter is applied once the typing pauses
    $('filter').addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(rewindow, 120); });
    window.addEventListener('scroll', followScreen, { passive: true });
    window.addEventListener('resize', followScreen);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh().then(schedule); else clearTimeout(S.timer); });
    if ('ResizeObserver' in window) {
      let pending = null;
      new ResizeObserver(() => {
        cancelAnimationFrame(pending);
        pending = requestAnimationFrame(() => { resizePlots(); followScreen(); });
      }).observe(document.querySelector('main'));
    }
  }

  async function start() {
    bind();
    const params = new URLSearchParams(location.search);
    if (params.get('auto') === '0') $('auto-refresh').checked = false;
    if (params.get('every')) $('refresh-every').value = params.get('every');
    await refresh();
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (params.get('details') !== '0') {
      if (wanted) await openUnit(wanted); // an unknown id closes again (404)
      if (!S.openId && S.window && S.window.ids.length) await openUnit(S.window.ids[0]);
    }
    schedule();
  }

  // read-only hook for tests and the curious (the console): the page's state
  window.apisPage = Object.freeze({ state: S, refresh });
  start();
})();
