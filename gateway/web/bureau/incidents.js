/* Bureau page, 事件: every readable site's incidents (GET /api/incidents) with the two reports
 * each owes the bureau (by phone within 30 minutes, in writing within 1 hour of its opening).
 * The clocks count down each second on the gateway's clock (SafetyClock, the same time the
 * gateway's answers are computed at), turn 已超时 (red) at their due time, and say 按时 /
 * 超时完成 once reported. Open incidents first, those with a missed report first among them;
 * each with its printable written report (GET /api/incidents/{id}?format=html).
 *
 * Loaded whatever view is shown: the header's figure (事件报告超时) counts the incidents with a
 * report past its due time and not made, so that the bureau sees a missed deadline anywhere.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { $, el, fmtDuration } = window.SafetyUi;
  const { api } = window.SafetyLive;
  const { now } = window.SafetyClock;
  const B = window.SafetyBureau;
  const KINDS = { phone: '电话报告', written: '书面报告' };
  const I = { incidents: [], seq: 0, applied: 0, rows: new Map(), missedKey: '' };

  async function load() {
    const seq = ++I.seq;
    const res = await api('/api/incidents');
    if (seq < I.applied) return;
    I.applied = seq;
    if (!res.ok || !Array.isArray(res.body)) {
      B.showError($('incidents-error'), res);
      return;
    }
    B.showError($('incidents-error'), null);
    // The clocks' seconds_left changes with every answer; what is drawn is the rest.
    const key = JSON.stringify(res.body.map((i) => ({ ...i, clocks: Object.values(i.clocks).map((c) => [c.due_at, c.done_at]) })));
    if (key !== I.key) {
      I.key = key;
      I.incidents = res.body;
      render();
    }
    B.loaded('incidents');
  }

  // A report's clock at `nowMs`: as the gateway computes it (gateway.incidents.model).
  function clockAt(c, nowMs) {
    const due = B.msOf(c.due_at);
    if (c.done_at) {
      const done = B.msOf(c.done_at);
      return { state: done <= due ? 'done' : 'done_late', due, done };
    }
    return { state: nowMs < due ? 'running' : 'missed', due, left: due - nowMs };
  }

  const missedAt = (i, nowMs) => Object.values(i.clocks).some((c) => clockAt(c, nowMs).state === 'missed');

  // Open first, those with a missed report first among them; the newest first within.
  function sorted(nowMs) {
    const rank = (i) => (i.closed_at ? 2 : missedAt(i, nowMs) ? 0 : 1);
    return [...I.incidents].sort((a, b) => rank(a) - rank(b) || B.msOf(b.opened_at) - B.msOf(a.opened_at));
  }

  function render() {
    const t = now();
    const list = sorted(t);
    I.rows.clear();
    $('incident-rows').replaceChildren(...list.map(row));
    $('incidents-count').textContent = String(list.length);
    $('incidents-empty').hidden = list.length > 0;
    const open = list.filter((i) => !i.closed_at).length;
    $('nav-incidents').textContent = open ? String(open) : '';
    I.missedKey = missedKey(t);
    tick();
  }

  function row(i) {
    const tr = el('tr', 'incident');
    tr.dataset.id = i.id;
    tr.dataset.siteId = i.site;
    const title = el('td', 'c-title');
    title.append(el('div', 'where-location', i.title), el('span', 'sub mono', i.id));
    const opened = el('td', 'c-opened');
    opened.append(el('div', '', B.when(i.opened_at)), el('span', 'sub', i.opened_by));
    const cells = {};
    for (const kind of Object.keys(KINDS)) {
      const td = el('td', `c-clock c-${kind}`);
      td.dataset.clock = kind;
      cells[kind] = td;
    }
    const state = el('td', 'c-istate');
    state.append(el('span', i.closed_at ? 'istate-closed' : 'istate-open', i.closed_at ? '已结束' : '处置中'));
    if (i.closed_at) state.append(el('span', 'sub', B.when(i.closed_at)));
    const print = el('td', 'c-print');
    const link = el('a', 'btn-link incident-print', '打印');
    link.href = `/api/incidents/${encodeURIComponent(i.id)}?format=html`;
    link.target = '_blank';
    link.rel = 'noopener';
    print.append(link);
    tr.append(el('td', 'c-site', B.siteName(i.site)), title, opened, cells.phone, cells.written, state, print);
    I.rows.set(i.id, { tr, incident: i, cells });
    return tr;
  }

  function fillClock(td, c, nowMs) {
    const at = clockAt(c, nowMs);
    td.dataset.state = at.state;
    td.className = `c-clock c-${td.dataset.clock} clock-${at.state}`;
    let main;
    if (at.state === 'running') main = `剩余 ${fmtDuration(at.left)}`;
    else if (at.state === 'missed') main = `已超时 ${fmtDuration(-at.left)}`;
    else if (at.state === 'done') main = `按时 ${B.when(c.done_at).slice(6)}`;
    else main = `超时完成 ${B.when(c.done_at).slice(6)}`;
    td.replaceChildren(el('b', 'clock-text', main), el('span', 'sub', `时限 ${B.when(c.due_at)}`));
  }

  const missedKey = (nowMs) =>
    I.incidents
      .filter((i) => missedAt(i, nowMs))
      .map((i) => i.id)
      .join(',');

  // Once a second: the clocks, the header's figure, and the order when a report goes missed.
  function tick() {
    const t = now();
    const key = missedKey(t);
    if (key !== I.missedKey) {
      render();
      return;
    }
    for (const { tr, incident, cells } of I.rows.values()) {
      fillClock(cells.phone, incident.clocks.phone, t);
      fillClock(cells.written, incident.clocks.written, t);
      tr.classList.toggle('missed', missedAt(incident, t));
    }
    const missed = key ? key.split(',').length : 0;
    $('sum-missed').textContent = String(missed);
    $('sum-missed-link').classList.toggle('has-missed', missed > 0);
  }

  $('incidents-refresh').addEventListener('click', load);
  B.registerView('incidents', { load, tick, always: true });
  return { loadIncidents: load };
})());
