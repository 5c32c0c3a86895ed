/* Duty console: the 每日自查 view (daily self-report, seeds 003/004: 每天下午3点前上报). Owns
 * the `#view-checks` panels: per site of the person, today's checklist (the items come from
 * the gateway's configuration with the board, the page keeps no copy) with 正常 / 有问题 /
 * 不适用 and a note for each (a problem needs one), the day's hazard changes the gateway
 * fills in from the ledger, the submit (PUT), and the standing (已上报 with time and person /
 * 迟报 / 未上报); above them the due time with a countdown, amber from the reminder (14:30)
 * and red from the due time (15:00) while a site of the person is not in. And the
 * `#nav-checks` badge: the person's sites not in today.
 *
 * The countdown runs on the gateway's clock: each board answer carries the gateway's time
 * (`now`), and the page counts from it with the browser's clock in between.
 */
'use strict';

(() => {
  const { $, el, fmtDuration } = window.SafetyUi;
  const { api, unreachableText } = window.SafetyLive;
  const C = window.SafetyConsole;

  const SITE_ROLES = ['duty', 'safety_manager', 'legal_representative'];
  const RESULTS = [
    ['ok', '正常'],
    ['problem', '有问题'],
    ['not_applicable', '不适用'],
  ];
  const STANDING = { submitted: '已上报', late: '迟报', missing: '未上报' };
  const ACTIONS = window.SafetyUi.HAZARD_ACTIONS;
  const POLL_MS = 30000;
  const BADGE_EVERY_MS = 60000;

  let shown = false;
  let board = null;
  let offsetMs = 0; // the gateway's clock minus the browser's, at the last answer
  let pollTimer = null;
  let tickTimer = null;
  const dirty = new Set(); // sites whose form the person has changed since it was drawn

  const gatewayNow = () => Date.now() + offsetMs;
  const hhmm = (iso) => (iso ? iso.slice(11, 16) : '');
  const dayTime = (iso) => (iso ? iso.slice(5, 16).replace('T', ' ') : '');

  function canSubmit() {
    const me = window.SafetySession.person();
    return !!me && SITE_ROLES.includes(me.role);
  }

  function errorText(res) {
    if (res.status === 0) return `${unreachableText(res)}，请稍后重试`;
    const body = res.body || {};
    let detail = body.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => (d && d.msg) || '').join('；');
    const msg = [body.error, typeof detail === 'string' ? detail : ''].filter(Boolean).join('：');
    return `提交被拒绝（${res.status}）${msg ? '：' + msg : ''}`;
  }

  function learn(b) {
    const t = Date.parse(b.now);
    if (!Number.isNaN(t)) offsetMs = t - Date.now();
  }

  async function fetchBoard() {
    const res = await api('/api/daily-checks');
    if (!res.ok || !res.body) return { res, body: null };
    learn(res.body);
    return { res, body: res.body };
  }

  // ------------------------------------------------------------------ countdown
  function renderCountdown() {
    const box = $('ck-countdown');
    if (!board) {
      box.textContent = '';
      return;
    }
    const now = gatewayNow();
    const due = Date.parse(board.due);
    const remind = Date.parse(board.remind_at);
    const phase = now >= due ? 'overdue' : now >= remind ? 'remind' : 'open';
    const waiting = board.sites.filter((s) => s.standing === 'missing');
    box.dataset.phase = phase;
    box.classList.toggle('ck-open', phase === 'open');
    box.classList.toggle('ck-remind', phase === 'remind' && waiting.length > 0);
    box.classList.toggle('ck-overdue', phase === 'overdue' && waiting.length > 0);
    box.classList.toggle('ck-done', waiting.length === 0);
    const dueText = `截止 ${hhmm(board.due)}`;
    if (waiting.length === 0) {
      box.textContent = `${dueText} · 今日自查已全部上报`;
    } else if (phase === 'overdue') {
      box.textContent = `${dueText} · 已超时 ${fmtDuration(now - due)} · ${waiting.length} 家未上报`;
    } else {
      const hurry = phase === 'remind' ? '，请尽快上报' : '';
      box.textContent = `${dueText} · 还剩 ${fmtDuration(due - now)}${hurry}`;
    }
  }

  // ------------------------------------------------------------------ a site's panel
  function standingNode(s) {
    const node = el('span', `ck-standing standing-${s.standing}`, STANDING[s.standing] || s.standing);
    if (s.standing !== 'missing') {
      node.textContent += ` ${dayTime(s.first_submitted_at)} · ${s.submitted_by}`;
      if (s.submitted_at !== s.first_submitted_at) node.textContent += `（${hhmm(s.submitted_at)} 更新）`;
    } else if (gatewayNow() >= Date.parse(board.due)) {
      node.textContent += '（已过截止时间）';
    }
    return node;
  }

  function answersOf(s) {
    const out = new Map();
    for (const a of s.items || []) out.set(a.item, a);
    return out;
  }

  function formNode(s, editable) {
    const form = el('form', 'ck-form');
    form.noValidate = true;
    const table = el('table', 'ck-table');
    const head = el('tr');
    head.append(el('th', '', '检查项目'), el('th', '', '结果'), el('th', '', '情况说明'));
    const thead = el('thead');
    thead.append(head);
    const body = el('tbody');
    const given = answersOf(s);
    for (const item of board.items) {
      const tr = el('tr', 'ck-item');
      tr.dataset.item = item.id;
      const was = given.get(item.id);
      const choice = el('td', 'ck-choice');
      for (const [value, label] of RESULTS) {
        const lab = el('label', `ck-result result-${value}`);
        const radio = el('input');
        radio.type = 'radio';
        radio.name = `ck-${s.site}-${item.id}`;
        radio.value = value;
        radio.disabled = !editable;
        radio.checked = was ? was.result === value : value === 'ok';
        lab.append(radio, document.createTextNode(` ${label}`));
        choice.append(lab);
      }
      const noteCell = el('td');
      const note = el('input', 'ck-note');
      note.type = 'text';
      note.maxLength = 2000;
      note.placeholder = '有问题时必填';
      note.value = was ? was.note || '' : '';
      note.disabled = !editable;
      noteCell.append(note);
      tr.append(el('td', 'ck-label', item.label), choice, noteCell);
      body.append(tr);
    }
    table.append(thead, body);
    form.append(table);
    form.addEventListener('input', () => dirty.add(s.site));
    form.addEventListener('change', () => dirty.add(s.site));
    const error = el('p', 'dialog-error ck-form-error');
    error.setAttribute('role', 'alert');
    error.hidden = true;
    form.append(error);
    if (editable) {
      const buttons = el('div', 'dialog-buttons');
      const submit = el('button', 'btn-primary', s.standing === 'missing' ? '提交自查' : '更新自查');
      submit.type = 'submit';
      submit.dataset.action = 'submit';
      buttons.append(submit);
      form.append(buttons);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        submit_(s.site, form, error, submit);
      });
    }
    return form;
  }

  function changesNode(s) {
    const box = el('div', 'ck-changes');
    box.append(el('h4', '', '今日隐患变化（自动填入）'));
    if (s.hazard_changes === null || s.hazard_changes === undefined) {
      box.append(el('p', 'muted small', '隐患台账暂不可用'));
      return box;
    }
    if (!s.hazard_changes.length) {
      box.append(el('p', 'muted small ck-no-changes', '今日无隐患变化'));
      return box;
    }
    const list = el('ul', 'ck-change-list');
    for (const c of s.hazard_changes) {
      const li = el('li', `ck-change action-${c.action}`);
      li.dataset.hazardId = String(c.hazard_id);
      li.append(
        el('span', 'mono', hhmm(c.at)),
        el('span', '', ` 隐患${c.hazard_id} ${c.location}（${c.level_label}） `),
        el('b', '', `${ACTIONS[c.action] || c.action}`),
        el('span', '', c.action === 'edited' ? '' : ` → ${c.to_label}`),
        el('span', 'muted', ` · ${c.actor}`),
      );
      if (c.note) li.append(el('div', 'sub ck-change-note', c.note));
      list.append(li);
    }
    box.append(list);
    return box;
  }

  function siteNode(s) {
    const section = el('section', 'panel ck-site');
    section.dataset.site = s.site;
    const head = el('div', 'ck-site-head');
    head.append(el('h3', '', s.name), standingNode(s));
    section.append(head);
    const closed = s.standing !== 'missing' && gatewayNow() >= Date.parse(board.due);
    const editable = canSubmit() && !closed;
    if (canSubmit() || s.standing !== 'missing') section.append(formNode(s, editable));
    if (canSubmit() && closed) section.append(el('p', 'muted small', '已过截止时间：当日自查已上报，不能再修改'));
    if (!canSubmit() && s.standing === 'missing') section.append(el('p', 'muted', '尚未上报'));
    section.append(changesNode(s));
    return section;
  }

  function render(keepDirty) {
    if (!board) return;
    $('ck-date').textContent = board.date;
    $('ck-due').textContent = hhmm(board.due);
    $('ck-remind').textContent = hhmm(board.remind_at);
    const container = $('ck-sites');
    const old = new Map([...container.children].map((n) => [n.dataset.site, n]));
    const nodes = board.sites.map((s) => (keepDirty && dirty.has(s.site) && old.get(s.site)) || siteNode(s));
    container.replaceChildren(...nodes);
    if (!board.sites.length) container.append(el('p', 'empty', '没有可上报的场所'));
    renderCountdown();
    renderBadge();
  }

  function renderBadge() {
    const badge = $('nav-checks');
    if (!board) return;
    const n = board.sites.filter((s) => s.standing === 'missing').length;
    badge.textContent = n ? String(n) : '';
    badge.title = n ? `${n} 家今日未上报自查` : '';
  }

  // ------------------------------------------------------------------ submit
  async function submit_(site, form, error, button) {
    const items = [];
    const missingNotes = [];
    for (const tr of form.querySelectorAll('tr.ck-item')) {
      const checked = tr.querySelector('input[type=radio]:checked');
      const note = tr.querySelector('.ck-note').value.trim();
      const result = checked ? checked.value : 'ok';
      if (result === 'problem' && !note) missingNotes.push(tr.querySelector('.ck-label').textContent);
      items.push({ item: tr.dataset.item, result, note });
    }
    if (missingNotes.length) {
      error.textContent = `有问题的项目请填写情况说明：${missingNotes.join('、')}`;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    button.disabled = true;
    const res = await api(`/api/sites/${encodeURIComponent(site)}/daily-checks/${board.date}`, {
      method: 'PUT',
      body: { items },
    });
    button.disabled = false;
    if (!res.ok) {
      error.textContent = errorText(res);
      error.hidden = false;
      return;
    }
    learn(res.body);
    dirty.delete(site);
    const mine = res.body.sites[0];
    board.sites = board.sites.map((s) => (s.site === mine.site ? mine : s));
    render(true);
    C.toast(`已上报每日自查：${mine.name}`);
  }

  // ------------------------------------------------------------------ loading and view
  async function load() {
    const { res, body } = await fetchBoard();
    const err = $('ck-error');
    if (!body) {
      err.textContent = `无法读取每日自查：${errorText(res)}`;
      err.hidden = false;
      return;
    }
    err.hidden = true;
    board = body;
    render(true);
  }

  async function updateBadge() {
    if (shown) return; // the view's own poll keeps it
    const { body } = await fetchBoard();
    if (!body) return;
    board = body;
    renderBadge();
  }

  function bind() {
    let known = false;
    window.SafetySession.onPerson(() => {
      if (known) return;
      known = true;
      if (shown) load();
      else updateBadge();
    });
    setInterval(updateBadge, BADGE_EVERY_MS);
    C.registerView('checks', {
      show() {
        shown = true;
        dirty.clear();
        if (window.SafetySession.person()) load();
        clearInterval(pollTimer);
        clearInterval(tickTimer);
        pollTimer = setInterval(load, POLL_MS);
        tickTimer = setInterval(renderCountdown, 1000);
      },
      hide() {
        shown = false;
        clearInterval(pollTimer);
        clearInterval(tickTimer);
      },
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', bind);
  else bind();
})();
