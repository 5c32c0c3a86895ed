/* Bureau page, 整改通知: the rectification notices of every readable site (GET /api/notices):
 * number, site, issued (when, by whom), person in charge, deadline, its hazards and its state
 * (待签收 / 已签收 with when and by whom / 已销账 once all its hazards are closed), each with
 * its printable page (GET /api/notices/{id}?format=html). 下发整改通知 issues one
 * (POST /api/notices) for one site and some of its hazards not yet closed; the gateway
 * numbers it and records the logged-in person as the issuer.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { $, el } = window.SafetyUi;
  const { api } = window.SafetyLive;
  const B = window.SafetyBureau;
  const STATES = {
    issued: { label: '待签收', rank: 0 },
    received: { label: '已签收', rank: 1 },
    closed: { label: '已销账', rank: 2 },
  };
  const DEFAULT_DAYS = 7; // a notice's deadline unless the bureau sets another
  const N = { notices: [], seq: 0, applied: 0, hazardSeq: 0, busy: false, lastIssued: null };

  async function load() {
    const seq = ++N.seq;
    const res = await api('/api/notices');
    if (seq < N.applied) return;
    N.applied = seq;
    if (!res.ok || !res.body || !Array.isArray(res.body.notices)) {
      B.showError($('notices-error'), res);
      return;
    }
    B.showError($('notices-error'), null);
    const key = JSON.stringify(res.body.notices); // the same again leaves the rows alone
    if (key !== N.key) {
      N.key = key;
      N.notices = res.body.notices;
      render();
    }
    B.loaded('notices');
  }

  // Still open first (not yet signed for, then signed), newest first within.
  function order(a, b) {
    const ra = (STATES[a.state] || { rank: 9 }).rank;
    const rb = (STATES[b.state] || { rank: 9 }).rank;
    if (ra !== rb) return ra - rb;
    return b.id - a.id;
  }

  function render() {
    const list = [...N.notices].sort(order);
    $('notices-count').textContent = String(list.length);
    $('notice-rows').replaceChildren(...list.map(row));
    $('notices-empty').hidden = list.length > 0;
    const unsigned = list.filter((n) => n.state === 'issued').length;
    $('nav-notices').textContent = unsigned ? String(unsigned) : '';
  }

  function row(n) {
    const tr = el('tr', `notice state-${n.state}${n.id === N.lastIssued ? ' just-issued' : ''}`);
    tr.dataset.id = String(n.id);
    tr.dataset.state = n.state;
    const issued = el('td', 'c-issued');
    issued.append(el('div', '', B.when(n.issued_at)), el('span', 'sub', n.issued_by));
    const state = el('td', 'c-nstate');
    state.append(el('span', `nstate nstate-${n.state}`, (STATES[n.state] || { label: n.state }).label));
    if (n.state === 'received' || (n.state === 'closed' && n.received_at)) {
      state.append(el('span', 'sub', `签收 ${B.when(n.received_at)} ${n.received_by || ''}`));
    }
    if (n.state === 'closed') state.append(el('span', 'sub', `销账 ${B.when(n.closed_at)}`));
    const print = el('td', 'c-print');
    const link = el('a', 'btn-link notice-print', '打印');
    link.href = `/api/notices/${encodeURIComponent(n.id)}?format=html`;
    link.target = '_blank';
    link.rel = 'noopener';
    print.append(link);
    tr.append(
      el('td', 'c-number', n.number),
      el('td', 'c-site', n.site_name || n.site),
      issued,
      el('td', '', n.person_in_charge),
      el('td', '', B.when(n.deadline)),
      el('td', 'c-hazards', n.hazard_ids.map((i) => `#${i}`).join('、')),
      state,
      print,
    );
    return tr;
  }

  // ------------------------------------------------------------------ issuing one
  function openIssue() {
    const dialog = $('notice-dialog');
    B.fillSites($('notice-site'));
    $('notice-form').reset();
    $('notice-error').hidden = true;
    $('notice-actor').textContent = B.actorText();
    $('notice-deadline').value = B.isoToWall(window.SafetyClock.now() + DEFAULT_DAYS * 86400000);
    pickHazards();
    dialog.showModal();
    $('notice-site').focus();
  }

  // The chosen site's hazards not yet closed, to pick from.
  async function pickHazards() {
    const box = $('notice-hazards');
    const site = $('notice-site').value;
    const seq = ++N.hazardSeq;
    const hint = $('notice-hazards-hint');
    for (const old of box.querySelectorAll('.pick')) old.remove();
    hint.hidden = false;
    hint.textContent = site ? '正在加载…' : '请先选择场所';
    if (!site) return;
    const res = await api(`/api/hazards?site=${encodeURIComponent(site)}`);
    if (seq !== N.hazardSeq) return;
    if (!res.ok || !res.body || !Array.isArray(res.body.hazards)) {
      hint.textContent = `加载失败：${B.failureText(res)}`;
      return;
    }
    const open = res.body.hazards.filter((h) => h.status !== 'closed');
    hint.textContent = open.length ? '' : '该场所没有未销号的隐患';
    hint.hidden = open.length > 0;
    for (const h of open) {
      const label = el('label', 'pick');
      const box1 = el('input');
      box1.type = 'checkbox';
      box1.value = String(h.id);
      box1.dataset.responsible = h.responsible;
      label.append(box1, el('span', 'mono', ` #${h.id} `), el('b', '', h.location), el('span', '', ` ${h.description}`), el('span', `level-badge level-${h.level}`, h.level_label), el('span', 'muted', ` ${h.status_label}${h.overdue ? '·逾期' : ''}`));
      box.append(label);
    }
  }

  function picked() {
    return [...$('notice-hazards').querySelectorAll('input[type=checkbox]:checked')];
  }

  async function issue(event) {
    event.preventDefault();
    if (N.busy) return;
    const error = $('notice-error');
    const fail = (text) => {
      error.hidden = false;
      error.textContent = text;
    };
    const site = $('notice-site').value;
    const chosen = picked();
    const person = $('notice-person').value.trim();
    const deadline = $('notice-deadline').value;
    const requirements = $('notice-requirements').value.trim();
    if (!site) return fail('请选择场所');
    if (!chosen.length) return fail('请至少选择一项隐患');
    if (!person) return fail('请填写整改责任人');
    if (!deadline) return fail('请填写整改时限');
    if (!requirements) return fail('请填写整改要求');
    N.busy = true;
    $('notice-submit').disabled = true;
    const res = await api('/api/notices', {
      method: 'POST',
      body: {
        site,
        hazard_ids: chosen.map((c) => Number(c.value)),
        person_in_charge: person,
        deadline: B.wallToIso(deadline),
        requirements,
      },
    });
    N.busy = false;
    $('notice-submit').disabled = false;
    if (!res.ok || !res.body) return fail(B.refusalText(res));
    error.hidden = true;
    N.lastIssued = res.body.id;
    $('notice-dialog').close();
    await load();
  }

  function bind() {
    $('notice-new').addEventListener('click', openIssue);
    $('notices-refresh').addEventListener('click', load);
    $('notice-site').addEventListener('change', pickHazards);
    // The first hazard picked suggests its responsible person as the one in charge.
    $('notice-hazards').addEventListener('change', (event) => {
      const box = event.target;
      if (box.checked && !$('notice-person').value.trim()) $('notice-person').value = box.dataset.responsible || '';
    });
    $('notice-form').addEventListener('submit', issue);
    $('notice-cancel').addEventListener('click', () => $('notice-dialog').close());
  }

  bind();
  // Issuing is the bureau's (the gateway refuses anyone else): an institution's person
  // reading this page is not offered it.
  window.SafetySession.onPerson((me) => {
    $('notice-new').hidden = me.via === 'session' && !['bureau', 'bureau_leader'].includes(me.role);
  });
  B.registerView('notices', { load, always: true }); // its tab's figure on every view
  return { loadNotices: load };
})());
