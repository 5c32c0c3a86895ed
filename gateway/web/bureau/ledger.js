/* Bureau page, 隐患台账: every readable site's hazards (GET /api/hazards with the filters the
 * route takes: site, status, level, overdue), their counts, the XLSX export of what the
 * filters select (《重大事故隐患清单》), and a hazard's detail with its timeline. A hazard
 * awaiting the on-site check is the bureau's to verify (POST /api/hazards/{id}/transition):
 * 核查通过 closes it, 核查不通过 sends it back to rectifying; either with the check's note,
 * which the page requires. The gateway records the logged-in person as the verifier.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { $, el } = window.SafetyUi;
  const { api } = window.SafetyLive;
  const B = window.SafetyBureau;
  const { HAZARD_ACTIONS: ACTIONS, HAZARD_STATUS } = window.SafetyUi;
  // The bureau's work first: what awaits its check, then what is being rectified.
  const RANK = { awaiting_verification: 0, open: 2, rectifying: 2, closed: 3 };
  const BUREAU_ROLES = ['bureau', 'bureau_leader'];
  const L = { hazards: [], seq: 0, applied: 0, openId: null, busy: false };

  function filters() {
    const q = new URLSearchParams();
    if ($('ledger-site').value) q.set('site', $('ledger-site').value);
    if ($('ledger-status').value) q.set('status', $('ledger-status').value);
    if ($('ledger-level').value) q.set('level', $('ledger-level').value);
    if ($('ledger-overdue').checked) q.set('overdue', 'true');
    return q;
  }

  // The XLSX of what the filters select (the route takes the same filters).
  function exportLink(q) {
    const xlsx = new URLSearchParams(q);
    xlsx.set('format', 'xlsx');
    $('ledger-xlsx').href = `/api/hazards?${xlsx}`;
  }

  async function load() {
    B.fillSites($('ledger-site'));
    const q = filters();
    exportLink(q);
    const seq = ++L.seq;
    const res = await api(`/api/hazards${q.toString() ? `?${q}` : ''}`);
    if (seq < L.applied) return;
    L.applied = seq;
    if (!res.ok || !res.body || !Array.isArray(res.body.hazards)) {
      B.showError($('ledger-error'), res);
      return;
    }
    B.showError($('ledger-error'), null);
    // The same answer again (the 10 s poll) leaves the rows, and the keyboard focus, alone.
    const key = `${q}\n${JSON.stringify(res.body.hazards)}`;
    if (key !== L.key) {
      L.key = key;
      L.hazards = res.body.hazards;
      L.filtered = q.toString() !== '';
      render();
    }
    B.loaded('ledger');
  }

  // The bureau's work first (awaiting its check), then the overdue, the others, the closed.
  function order(a, b) {
    const rank = (h) => (h.status === 'awaiting_verification' ? 0 : h.overdue ? 1 : RANK[h.status] ?? 9);
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== rb) return ra - rb;
    const da = a.deadline ? B.msOf(a.deadline) : Infinity;
    const db = b.deadline ? B.msOf(b.deadline) : Infinity;
    if (da !== db) return da < db ? -1 : 1;
    return a.id - b.id;
  }

  function render() {
    const list = [...L.hazards].sort(order);
    const count = (pred) => list.filter(pred).length;
    $('ledger-count').textContent = String(list.length);
    $('ledger-counts').replaceChildren(
      B.chip('lc-open', '待整改', count((h) => h.status === 'open')),
      B.chip('lc-rectifying', '整改中', count((h) => h.status === 'rectifying')),
      B.chip('lc-awaiting', '待核查', count((h) => h.status === 'awaiting_verification')),
      B.chip('lc-closed', '已销号', count((h) => h.status === 'closed')),
      B.chip('lc-overdue', '逾期', count((h) => h.overdue)),
      B.chip('lc-major', '重大', count((h) => h.level === 'major' && h.status !== 'closed')),
    );
    $('ledger-rows').replaceChildren(...list.map(row));
    $('ledger-empty').hidden = list.length > 0;
    // The tab's figure: the county's hazards awaiting the bureau's check (known unfiltered).
    if (!L.filtered) $('nav-ledger').textContent = String(count((h) => h.status === 'awaiting_verification') || '');
  }

  function row(h) {
    const tr = el('tr', `hazard status-${h.status}${h.overdue ? ' overdue' : ''}${h.level === 'major' ? ' major' : ''}`);
    tr.dataset.id = String(h.id);
    tr.dataset.status = h.status;
    tr.dataset.siteId = h.site;
    tr.tabIndex = 0;
    const what = el('td', 'c-what');
    what.append(el('div', 'where-location', h.location), el('span', 'sub', h.description));
    const level = el('td', 'c-level');
    level.append(el('span', `level-badge level-${h.level}`, h.level_label || h.level));
    const status = el('td', 'c-status');
    status.append(el('span', `hstatus hstatus-${h.status}`, h.status_label || HAZARD_STATUS[h.status] || h.status));
    const deadline = el('td', 'c-deadline', B.when(h.deadline));
    if (h.overdue) deadline.append(el('span', 'overdue-mark', '逾期'));
    const found = el('td', 'c-found');
    found.append(el('div', '', B.when(h.found_at)), el('span', 'sub', h.found_by));
    tr.append(el('td', 'mono', `#${h.id}`), el('td', 'c-site', h.site_name || h.site), what, level, status, el('td', '', h.responsible), deadline, found);
    return tr;
  }

  // ------------------------------------------------------------------ one hazard
  async function openHazard(id) {
    L.openId = id;
    const dialog = $('hazard-dialog');
    $('hazard-title').textContent = `隐患 #${id}`;
    $('hazard-facts').replaceChildren();
    $('hazard-timeline').replaceChildren();
    $('hazard-note').value = '';
    $('hazard-error').hidden = true;
    $('hazard-verify').hidden = true;
    $('hazard-pass').hidden = true;
    $('hazard-fail').hidden = true;
    if (!dialog.open) dialog.showModal();
    await loadHazard();
  }

  async function loadHazard() {
    const id = L.openId;
    const res = await api(`/api/hazards/${encodeURIComponent(id)}`);
    if (L.openId !== id) return;
    if (!res.ok || !res.body) {
      $('hazard-error').hidden = false;
      $('hazard-error').textContent = res.status === 404 ? '该隐患不存在或无权查看' : B.refusalText(res);
      return;
    }
    renderHazard(res.body);
  }

  function fact(dl, label, value, cls = '') {
    dl.append(el('dt', '', label), el('dd', cls, value || '—'));
  }

  function renderHazard(h) {
    const dialog = $('hazard-dialog');
    dialog.dataset.status = h.status;
    $('hazard-title').textContent = `隐患 #${h.id} · ${h.site_name || h.site}`;
    const dl = $('hazard-facts');
    dl.replaceChildren();
    fact(dl, '隐患部位', h.location);
    fact(dl, '隐患描述', h.description);
    fact(dl, '等级', h.level_label, h.level === 'major' ? 'level-major-text' : '');
    fact(dl, '状态', `${h.status_label}${h.overdue ? '（逾期）' : ''}`, h.overdue ? 'overdue-text' : '');
    fact(dl, '责任人', h.responsible);
    fact(dl, '整改措施', h.measure);
    fact(dl, '整改时限', B.when(h.deadline));
    fact(dl, '发现', `${B.when(h.found_at)} ${h.found_by}`);
    if (h.verified_by) fact(dl, '核查', `${B.when(h.verified_at)} ${h.verified_by}：${h.verification_note || ''}`);
    $('hazard-timeline').replaceChildren(
      ...(h.timeline || []).map((e) => {
        const li = el('li', `tl-${e.action}`);
        li.dataset.action = e.action;
        li.append(el('span', 'tl-when', B.when(e.at)), el('b', 'tl-what', ACTIONS[e.action] || e.action), el('span', 'tl-actor', e.actor));
        if (e.note) li.append(el('div', 'tl-note', e.note));
        return li;
      }),
    );
    const me = window.SafetySession.person();
    const bureau = !me || me.via === 'local' || BUREAU_ROLES.includes(me.role);
    const verifying = h.status === 'awaiting_verification' && bureau;
    $('hazard-verify').hidden = !verifying;
    $('hazard-pass').hidden = !verifying;
    $('hazard-fail').hidden = !verifying;
    $('hazard-actor').textContent = B.actorText();
  }

  async function verify(to) {
    if (L.busy || L.openId === null) return;
    const note = $('hazard-note').value.trim();
    const error = $('hazard-error');
    if (!note) {
      error.hidden = false;
      error.textContent = '请填写核查意见（现场核查情况）';
      $('hazard-note').focus();
      return;
    }
    L.busy = true;
    $('hazard-pass').disabled = true;
    $('hazard-fail').disabled = true;
    const res = await api(`/api/hazards/${encodeURIComponent(L.openId)}/transition`, { method: 'POST', body: { to, note } });
    L.busy = false;
    $('hazard-pass').disabled = false;
    $('hazard-fail').disabled = false;
    if (!res.ok) {
      error.hidden = false;
      error.textContent = B.refusalText(res);
      return;
    }
    error.hidden = true;
    $('hazard-note').value = '';
    await loadHazard();
    load();
  }

  function bind() {
    exportLink(filters());
    for (const id of ['ledger-site', 'ledger-status', 'ledger-level', 'ledger-overdue']) $(id).addEventListener('change', load);
    $('ledger-filters').addEventListener('submit', (event) => event.preventDefault());
    $('ledger-refresh').addEventListener('click', load);
    const rows = $('ledger-rows');
    rows.addEventListener('click', (event) => {
      const tr = event.target.closest('tr.hazard');
      if (tr) openHazard(Number(tr.dataset.id));
    });
    rows.addEventListener('keydown', (event) => {
      const tr = event.target.closest('tr.hazard');
      if (tr && event.key === 'Enter') openHazard(Number(tr.dataset.id));
    });
    $('hazard-pass').addEventListener('click', () => verify('closed'));
    $('hazard-fail').addEventListener('click', () => verify('rectifying'));
    $('hazard-cancel').addEventListener('click', () => $('hazard-dialog').close());
    $('hazard-dialog').addEventListener('close', () => {
      L.openId = null;
    });
  }

  bind();
  B.registerView('ledger', { load, always: true }); // its tab's figure on every view
  return { loadLedger: load, openHazard };
})());
