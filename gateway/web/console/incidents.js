/* Duty console: the 事件 view (incidents, DESIGN section 11, seed 003). Owns the list of the
 * person's sites' incidents (open first, then the recently closed), each with its two report
 * clocks counting down every second, the actions on them (记录电话报告, 填写书面报告, 打印,
 * 追加续报, 结案, 新建事件) and the nav badge `#nav-incidents`: the open incidents with a
 * report still owed (running or missed).
 *
 * The clocks count against `SafetyClock.now()` from the deadlines the gateway gives
 * (`clocks.*.due_at`); whether a report is done is the gateway's word. The list is asked for
 * every 15 s while the view is shown (every minute otherwise, for the badge) and after every
 * action. Also owns the small form dialog and the refusal words the 值班 view (duty.js)
 * borrows: `C.loopForm`, `C.loopErrorText`.
 */
'use strict';

Object.assign(window.SafetyConsole, (() => {
  const { $, el, fmtWallClock, parseTime, pad2, zoneOffsetOf, syncChildren } = window.SafetyUi;
  const { api, unreachableText, describeDetail } = window.SafetyLive;
  const C = window.SafetyConsole;
  const { siteName } = C;
  const SHOWN_EVERY_MS = 15000;
  const HIDDEN_EVERY_MS = 60000;
  const AMBER_S = 300; // the last five minutes of a clock
  const SITE_ROLES = ['duty', 'safety_manager', 'legal_representative'];

  // ------------------------------------------------------------------ refusals in words
  const HTTP_STATUS = {
    400: '请求不适用',
    401: '登录已失效，请重新登录',
    403: '无权限',
    404: '不存在或无权查看',
    409: '当前状态不允许此操作',
    422: '输入无效',
    503: '数据库暂不可用',
  };
  const ERRORS = {
    'the written report is not in yet': '书面报告尚未提交，不能结案',
    'the incident is already closed': '事件已结案',
    'the incident is closed': '事件已结案，只能追加续报',
    'the phone report is already recorded': '电话报告已记录过',
    'the written report is already recorded': '书面报告已提交过',
    'the alarm has an open incident': '该报警已有未结案的事件',
    'unknown incident': '事件不存在',
    'unknown site': '单位不存在或无权查看',
    'not allowed': '无权进行此操作',
    'invalid request': '输入无效',
    'incidents are unavailable': '事件数据库暂不可用',
    'duty database unavailable': '值班数据库暂不可用',
  };

  // What went wrong, in words, with the gateway's own message after them.
  function loopErrorText(res) {
    if (res.status === 0) return `${unreachableText(res)}，请稍后重试`;
    const body = res.body || {};
    const words = ERRORS[body.error] || HTTP_STATUS[res.status] || '';
    const head = `操作未成功（${res.status}${words ? ' ' + words : ''}）`;
    const detail = describeDetail(body.detail);
    const said = [body.error && !ERRORS[body.error] ? body.error : '', detail].filter(Boolean).join('：');
    return said ? `${head}：${said}` : head;
  }

  // ------------------------------------------------------------------ a form in a dialog
  // fields: [{name, label, kind: 'text'|'textarea'|'datetime'|'select', max, required,
  // value, options: [[value, label]], suggest: [[value, label]] (a text input's choices),
  // hint}]; submit(values) -> the api() answer: the dialog
  // closes on success and shows the refusal in words otherwise.
  let formDialog = null;
  // asksName: the local operator (no accounts) types who acts, sent as `by`.
  function loopForm({ title, intro, fields, submitLabel, submit, dialogId, asksName = true }) {
    if (!formDialog) {
      formDialog = el('dialog', 'loop-dialog');
      document.body.append(formDialog);
    }
    const d = formDialog;
    d.id = dialogId || 'loop-dialog';
    const form = el('form', 'loop-form');
    form.noValidate = true;
    const h = el('h2', '', title);
    const parts = [h];
    if (intro) parts.push(el('div', 'dialog-alarm', intro));
    if (window.SafetySession.isLocal()) {
      if (asksName) fields = [...fields, { name: 'by', label: '操作人姓名', kind: 'text', max: 64, required: true }];
    } else {
      const p = window.SafetySession.person();
      parts.push(el('p', 'dialog-actor', `操作人：${p.name}（${p.role_label || p.role}）`));
    }
    const inputs = {};
    for (const f of fields) {
      const id = `loop-f-${f.name}`;
      const label = el('label', '', f.label);
      label.htmlFor = id;
      if (f.required) label.append(el('span', 'req', '（必填）'));
      let input;
      if (f.kind === 'textarea') {
        input = el('textarea');
        input.rows = f.rows || 3;
      } else if (f.kind === 'select') {
        input = el('select');
        for (const [value, text] of f.options) {
          const o = el('option', '', text);
          o.value = value;
          input.append(o);
        }
      } else {
        input = el('input');
        input.type = f.kind === 'datetime' ? 'datetime-local' : 'text';
        if (f.kind === 'datetime') input.step = '60';
      }
      input.id = id;
      input.name = f.name;
      if (f.max) input.maxLength = f.max;
      if (f.value !== undefined && f.value !== null) input.value = f.value;
      input.dataset.edited = '';
      input.addEventListener('input', () => {
        input.dataset.edited = 'yes';
      });
      inputs[f.name] = input;
      parts.push(label, input);
      if (f.suggest && f.suggest.length) {
        const list = el('datalist');
        list.id = `${id}-list`;
        for (const [value, text] of f.suggest) {
          const o = el('option', '', text);
          o.value = value;
          list.append(o);
        }
        input.setAttribute('list', list.id);
        parts.push(list);
      }
      if (f.hint) parts.push(el('span', 'sub', f.hint));
    }
    const error = el('p', 'dialog-error');
    error.id = 'loop-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const cancel = el('button', 'btn-secondary', '取消');
    cancel.type = 'button';
    cancel.addEventListener('click', () => d.close());
    const ok = el('button', 'btn-primary', submitLabel);
    ok.type = 'submit';
    ok.id = 'loop-submit';
    const buttons = el('div', 'dialog-buttons');
    buttons.append(cancel, ok);
    parts.push(error, buttons);
    form.append(...parts);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const values = {};
      for (const f of fields) {
        const v = inputs[f.name].value.trim();
        if (f.required && !v) {
          error.textContent = `请填写${f.label}`;
          error.hidden = false;
          inputs[f.name].focus();
          return;
        }
        values[f.name] = v;
        values[`${f.name}Edited`] = inputs[f.name].dataset.edited === 'yes';
      }
      error.hidden = true;
      ok.disabled = true;
      const res = await submit(values);
      ok.disabled = false;
      if (!res.ok) {
        error.textContent = loopErrorText(res);
        error.hidden = false;
        return;
      }
      d.close();
    });
    d.replaceChildren(form);
    d.showModal();
    const first = fields.length ? inputs[fields[0].name] : ok;
    first.focus();
  }

  // The typed name of the local operator (no accounts), or nothing: the gateway knows who.
  const byOf = (values) => (values.by ? { by: values.by } : {});

  // ------------------------------------------------------------------ who may act
  function mayAct(site) {
    const session = window.SafetySession;
    if (session.isLocal()) return true;
    const p = session.person();
    if (!p) return false;
    if (p.role === 'admin') return true;
    return SITE_ROLES.includes(p.role) && (p.sites || []).includes(site);
  }

  // ------------------------------------------------------------------ the clocks
  const nowMs = () => window.SafetyClock.now();

  // A report clock in words at `atMs`: done (when), missed (by how much), or what is left.
  function clockWords(clock, atMs) {
    if (clock.done_at) {
      const late = clock.state === 'done_late';
      return { text: `已完成 ${fmtWallClock(clock.done_at)}${late ? '（超时完成）' : ''}`, cls: late ? 'clock-late-done' : 'clock-done' };
    }
    const left = Math.floor((parseTime(clock.due_at) - atMs) / 1000);
    if (left < 0) return { text: `已超时 ${Math.ceil(-left / 60)} 分钟`, cls: 'clock-missed' };
    const text = `剩余 ${pad2(Math.floor(left / 60))}:${pad2(left % 60)}`;
    return { text, cls: left <= AMBER_S ? 'clock-amber' : 'clock-running' };
  }

  const limitMinutes = (incident, clock) => Math.round((parseTime(clock.due_at) - parseTime(incident.opened_at)) / 60000);
  const owes = (i) => !i.closed_at && (!i.clocks.phone.done_at || !i.clocks.written.done_at);

  // ------------------------------------------------------------------ state
  const V = {
    open: [], // open incidents, newest first
    closed: [], // the recently closed
    openCards: new Map(), // id -> card
    closedCards: new Map(),
    shown: false,
    loading: false,
    again: false,
    loadedOnce: false,
    error: '',
    ticker: null,
    poller: null,
  };

  async function load() {
    // One request at a time; one asked for meanwhile (after an action) runs when it is done,
    // so that the answer shown is never older than the action.
    if (V.loading) {
      V.again = true;
      return;
    }
    V.loading = true;
    V.again = false;
    try {
      const [open, closed] = await Promise.all([
        api('/api/incidents?open=true&limit=1000'),
        api('/api/incidents?open=false&limit=20'),
      ]);
      const bad = [open, closed].find((r) => !r.ok);
      if (bad) {
        V.error = `事件列表读取失败：${loopErrorText(bad)}`;
      } else {
        V.error = '';
        V.open = open.body;
        V.closed = closed.body;
        V.loadedOnce = true;
        // The gateway's zone, for the page's clock, when no alarm has told it yet.
        const any = V.open[0] || V.closed[0];
        if (any) window.SafetyClock.learnZone(any.opened_at);
      }
    } finally {
      V.loading = false;
    }
    renderBadge();
    if (V.shown) render();
    if (V.again) load();
  }

  function renderBadge() {
    const badge = $('nav-incidents');
    if (!badge) return;
    const n = V.open.filter(owes).length;
    badge.textContent = n ? String(n) : '';
    badge.classList.toggle('count-alert', V.open.some((i) => owes(i) && ['phone', 'written'].some((k) => !i.clocks[k].done_at && parseTime(i.clocks[k].due_at) < nowMs())));
  }

  // ------------------------------------------------------------------ drawing
  function skeleton() {
    const root = $('view-incidents');
    if (root.dataset.built) return;
    root.dataset.built = 'yes';
    const panel = el('section', 'panel incidents-panel');
    const head = el('div', 'loop-head');
    const h = el('h2', '', '事件');
    h.id = 'incidents-h';
    const count = el('span', 'count');
    count.id = 'incident-count';
    h.append(' ', count);
    const add = el('button', 'btn-primary', '新建事件');
    add.type = 'button';
    add.id = 'incident-new';
    add.addEventListener('click', openNew);
    const refresh = el('button', 'btn-small', '刷新');
    refresh.type = 'button';
    refresh.addEventListener('click', load);
    head.append(h, add, refresh);
    const error = el('p', 'dialog-error');
    error.id = 'incidents-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const list = el('div', 'incident-list');
    list.id = 'incident-list';
    const empty = el('p', 'empty', '当前没有未结案的事件');
    empty.id = 'no-incidents';
    const closedH = el('h3', 'closed-h', '最近结案');
    closedH.id = 'incidents-closed-h';
    const closedList = el('div', 'incident-list closed');
    closedList.id = 'incident-closed-list';
    const hint = el('p', 'muted small', '报告时限自事件登记起计：电话报告、书面报告，均以网关时间为准。');
    panel.append(head, error, list, empty, closedH, closedList, hint);
    root.append(panel);
    panel.setAttribute('aria-labelledby', 'incidents-h');
  }

  function button(text, action, cls = 'btn-small') {
    const b = el('button', cls, text);
    b.type = 'button';
    b.dataset.action = action;
    return b;
  }

  function createCard(id) {
    const card = el('article', 'incident');
    card.dataset.incidentId = id;
    const n = {
      card,
      title: el('h3', 'incident-title'),
      state: el('span', 'incident-state'),
      meta: el('div', 'sub'),
      alarm: el('a', 'incident-alarm'),
      phone: el('div', 'report-clock'),
      written: el('div', 'report-clock'),
      details: el('div', 'incident-details'),
      actions: el('div', 'actions'),
    };
    n.phone.dataset.clock = 'phone';
    n.written.dataset.clock = 'written';
    for (const c of [n.phone, n.written]) c.append(el('span', 'clock-label'), el('span', 'clock-state'));
    const head = el('div', 'incident-head');
    head.append(n.title, n.state);
    const clocks = el('div', 'report-clocks');
    clocks.append(n.phone, n.written);
    n.buttons = {
      phone: button('记录电话报告', 'phone', 'btn-small btn-primary'),
      written: button('填写书面报告', 'written', 'btn-small btn-primary'),
      print: button('打印', 'print'),
      followUp: button('追加续报', 'follow-up'),
      close: button('结案', 'close'),
    };
    n.actions.append(...Object.values(n.buttons));
    card.append(head, n.meta, n.alarm, clocks, n.details, n.actions);
    card.nodes = n;
    return card;
  }

  function fillClock(node, incident, kind, atMs) {
    const clock = incident.clocks[kind];
    const name = kind === 'phone' ? '电话报告' : '书面报告';
    node.children[0].textContent = `${name}（${limitMinutes(incident, clock)} 分钟）`;
    const words = clockWords(clock, atMs);
    node.children[1].textContent = words.text;
    node.className = `report-clock ${words.cls}`;
  }

  function fillCard(card, i) {
    const n = card.nodes;
    card.incident = i;
    card.classList.toggle('is-closed', !!i.closed_at);
    n.title.textContent = `${siteName(i.site)} · ${i.title}`;
    n.state.textContent = i.closed_at ? '已结案' : '处理中';
    n.state.className = `incident-state ${i.closed_at ? 'state-cleared' : 'state-unacked'}`;
    n.meta.textContent = `登记于 ${fmtWallClock(i.opened_at)}，登记人 ${i.opened_by}`;
    n.alarm.hidden = !i.alarm_id;
    if (i.alarm_id) {
      n.alarm.textContent = `关联报警 ${i.alarm_id}`;
      n.alarm.href = `#alarm=${encodeURIComponent(i.alarm_id)}`;
    }
    const at = i.closed_at ? parseTime(i.closed_at) : nowMs();
    fillClock(n.phone, i, 'phone', at);
    fillClock(n.written, i, 'written', at);
    const lines = [];
    if (i.phone_report) {
      const p = i.phone_report;
      lines.push(['电话报告', `${fmtWallClock(p.at)} 向 ${p.to_whom} 报告；报告人 ${p.by}`]);
    }
    if (i.written_report) lines.push(['书面报告', `${fmtWallClock(i.written_report.at)} ${i.written_report.by} 提交`]);
    i.follow_ups.forEach((f, k) => lines.push([`续报 ${k + 1}`, `${fmtWallClock(f.at)} ${f.by}：${f.text}`]));
    if (i.closed_at) lines.push(['结案', `${fmtWallClock(i.closed_at)} ${i.closed_by || ''}：${i.close_note || ''}`]);
    n.details.replaceChildren(
      ...lines.map(([k, v]) => {
        const line = el('div', 'detail-line');
        line.append(el('b', '', `${k}：`), el('span', '', v));
        return line;
      })
    );
    const acts = mayAct(i.site);
    const open = !i.closed_at;
    const b = n.buttons;
    b.phone.hidden = !acts || !open || !!i.phone_report;
    b.written.hidden = !acts || !open || !!i.written_report;
    b.followUp.hidden = !acts;
    b.close.hidden = !acts || !open;
    b.close.disabled = !i.written_report;
    b.close.title = i.written_report ? '' : '书面报告提交后才能结案';
  }

  function render() {
    skeleton();
    $('incident-new').hidden = !mayOpen();
    $('incidents-error').textContent = V.error;
    $('incidents-error').hidden = !V.error;
    $('incident-count').textContent = String(V.open.length);
    $('no-incidents').hidden = V.open.length > 0 || !V.loadedOnce;
    const keyOf = (i) => i.id;
    syncChildren($('incident-list'), V.openCards, V.open, keyOf, createCard, fillCard);
    syncChildren($('incident-closed-list'), V.closedCards, V.closed, keyOf, createCard, fillCard);
    $('incidents-closed-h').hidden = V.closed.length === 0;
    renderBadge();
  }

  // Once a second while shown: the running clocks.
  function tick() {
    for (const card of V.openCards.values()) {
      const i = card.incident;
      if (!i) continue;
      fillClock(card.nodes.phone, i, 'phone', nowMs());
      fillClock(card.nodes.written, i, 'written', nowMs());
    }
    renderBadge();
  }

  // ------------------------------------------------------------------ actions
  // The sites the person may open an incident at: those the console knows, or (before
  // /api/sites has answered) the person's own.
  function writableSites() {
    const known = [...C.S.sites.keys()];
    const p = window.SafetySession.person();
    return (known.length ? known : (p && p.sites) || []).filter(mayAct);
  }

  function mayOpen() {
    const session = window.SafetySession;
    const p = session.person();
    return session.isLocal() || (!!p && (p.role === 'admin' || SITE_ROLES.includes(p.role)));
  }

  const summary = (i) => `${siteName(i.site)} · ${i.title}（登记于 ${fmtWallClock(i.opened_at)}）`;

  async function act(path, body, done) {
    const res = await api(path, { method: 'POST', body });
    if (res.ok) {
      C.toast(done);
      load();
    }
    return res;
  }

  function openNew() {
    const sites = writableSites();
    loopForm({
      title: '新建事件',
      dialogId: 'incident-new-dialog',
      fields: [
        { name: 'site', label: '单位', kind: 'select', options: sites.map((s) => [s, siteName(s)]), required: true },
        { name: 'title', label: '事件名称', kind: 'text', max: 200, required: true, hint: '如：二楼配电间冒烟' },
      ],
      submitLabel: '登记事件',
      submit: (v) => act('/api/incidents', { site: v.site, title: v.title, ...byOf(v) }, `已登记事件：${v.title}`),
    });
  }

  // "YYYY-MM-DDTHH:MM" at `ms` in the zone of `iso` (the gateway's), for a datetime input.
  function localInput(ms, iso) {
    const offset = zoneOffsetOf(iso) || 0;
    return new Date(ms + offset * 60000).toISOString().slice(0, 16);
  }

  function withZone(value, iso) {
    const offset = zoneOffsetOf(iso) || 0;
    const sign = offset < 0 ? '-' : '+';
    const abs = Math.abs(offset);
    return `${value}:00${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
  }

  function openPhone(i) {
    loopForm({
      title: '记录电话报告',
      dialogId: 'incident-phone-dialog',
      intro: summary(i),
      fields: [
        { name: 'to_whom', label: '报告对象', kind: 'text', max: 200, required: true, hint: '如：县民政局值班室 李科长' },
        { name: 'at', label: '通话时间', kind: 'datetime', value: localInput(nowMs(), i.opened_at), hint: '默认为现在（网关时间）' },
      ],
      submitLabel: '记录',
      submit: (v) => {
        const body = { to_whom: v.to_whom, ...byOf(v) };
        // Untouched, the time is "now": the gateway's own, whatever this browser's clock says.
        if (v.atEdited && v.at) body.at = withZone(v.at, i.opened_at);
        return act(`/api/incidents/${encodeURIComponent(i.id)}/phone-report`, body, '已记录电话报告');
      },
    });
  }

  const WRITTEN_FIELDS = [
    ['what_happened', '事件经过'],
    ['where', '发生地点'],
    ['people_affected', '人员伤亡及影响'],
    ['measures_taken', '已采取措施'],
    ['current_state', '目前状况'],
    ['follow_up', '后续工作'],
  ];

  function openWritten(i) {
    loopForm({
      title: '填写书面报告',
      dialogId: 'incident-written-dialog',
      intro: summary(i),
      fields: WRITTEN_FIELDS.map(([name, label]) => ({ name, label, kind: name === 'where' ? 'text' : 'textarea', max: 4000, required: true, rows: 2 })),
      submitLabel: '提交书面报告',
      submit: (v) => {
        const body = byOf(v);
        for (const [name] of WRITTEN_FIELDS) body[name] = v[name];
        return act(`/api/incidents/${encodeURIComponent(i.id)}/written-report`, body, '已提交书面报告');
      },
    });
  }

  function openFollowUp(i) {
    loopForm({
      title: '追加续报',
      dialogId: 'incident-follow-up-dialog',
      intro: summary(i),
      fields: [{ name: 'text', label: '续报内容', kind: 'textarea', max: 4000, required: true }],
      submitLabel: '追加',
      submit: (v) => act(`/api/incidents/${encodeURIComponent(i.id)}/follow-ups`, { text: v.text, ...byOf(v) }, '已追加续报'),
    });
  }

  function openClose(i) {
    loopForm({
      title: '结案',
      dialogId: 'incident-close-dialog',
      intro: summary(i),
      fields: [{ name: 'note', label: '结案说明', kind: 'textarea', max: 2000, required: true }],
      submitLabel: '结案',
      submit: (v) => act(`/api/incidents/${encodeURIComponent(i.id)}/close`, { note: v.note, ...byOf(v) }, '事件已结案'),
    });
  }

  function onClick(event) {
    const b = event.target.closest('button[data-action]');
    const card = b && b.closest('article.incident');
    if (!card || b.disabled || !card.incident) return;
    const i = card.incident;
    const action = b.dataset.action;
    if (action === 'phone') openPhone(i);
    else if (action === 'written') openWritten(i);
    else if (action === 'follow-up') openFollowUp(i);
    else if (action === 'close') openClose(i);
    else if (action === 'print') window.open(`/api/incidents/${encodeURIComponent(i.id)}?format=html`, '_blank', 'noopener');
  }

  // ------------------------------------------------------------------ the view
  function schedule(everyMs) {
    clearInterval(V.poller);
    V.poller = setInterval(load, everyMs);
  }

  function show() {
    V.shown = true;
    skeleton();
    render();
    load();
    clearInterval(V.ticker);
    V.ticker = setInterval(tick, 1000);
    schedule(SHOWN_EVERY_MS);
  }

  function hide() {
    V.shown = false;
    clearInterval(V.ticker);
    V.ticker = null;
    schedule(HIDDEN_EVERY_MS);
  }

  function start() {
    skeleton();
    $('view-incidents').addEventListener('click', onClick);
    C.registerView('incidents', { show, hide });
    window.SafetySession.onPerson(() => {
      if (V.shown) render();
    });
    if (!V.shown) {
      load(); // the badge
      schedule(HIDDEN_EVERY_MS);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();

  return { loopForm, loopErrorText, loopMayAct: mayAct, incidentsState: () => V };
})());
