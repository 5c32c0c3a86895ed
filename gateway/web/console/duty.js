/* Duty console: the 值班 view (the duty roster, seed 001). Owns today's roster of every scope
 * the person sees (each of their sites and the bureau: who is on duty per shift, the bureau's
 * 带班领导 leader on call), editing a scope's shift for those who keep it (PUT /api/duty: the
 * bureau its own, an institution its sites, an admin all), and the shift handover (交接班: to
 * whom, a note) with the recent handovers (yesterday's and today's). Read from GET /api/duty
 * when the view is shown and after every change. The form dialog and the refusal words are
 * incidents.js's.
 */
'use strict';

(() => {
  const { $, el, fmtWallClock } = window.SafetyUi;
  const { api } = window.SafetyLive;
  const C = window.SafetyConsole;
  const BUREAU = 'bureau';
  const BUREAU_ROLES = ['bureau', 'bureau_leader'];
  const SHIFTS = { day: '白班', night: '夜班', '24h': '全天' };
  const shiftLabel = (id) => SHIFTS[id] || id;
  const RECENT = 10; // handovers shown per scope

  const V = { board: null, error: '', shown: false };

  // Who keeps a scope's roster (the gateway decides; this only hides what it would refuse).
  function keeps(scope) {
    const session = window.SafetySession;
    if (session.isLocal()) return true;
    const p = session.person();
    if (!p) return false;
    if (p.role === 'admin') return true;
    if (scope === BUREAU) return BUREAU_ROLES.includes(p.role);
    return C.loopMayAct(scope);
  }

  const names = (people) => people.map((x) => (x.name === x.login ? x.login : `${x.name}（${x.login}）`)).join('、');
  const logins = (text) => text.split(/[\s,，、]+/).filter(Boolean);

  // The day before `date` (YYYY-MM-DD), as the gateway writes days.
  function dayBefore(date) {
    const t = new Date(`${date}T12:00:00Z`);
    t.setUTCDate(t.getUTCDate() - 1);
    return t.toISOString().slice(0, 10);
  }

  // Today's board, with yesterday's handovers too (a night shift is handed over across
  // midnight): the recent ones, newest first.
  async function load() {
    const res = await api('/api/duty');
    if (res.ok && res.body) {
      const board = res.body;
      const before = await api(`/api/duty?date=${dayBefore(board.date)}`);
      const earlier = new Map(before.ok && before.body ? before.body.scopes.map((x) => [x.scope, x.handovers]) : []);
      for (const scope of board.scopes) {
        scope.recent = [...(earlier.get(scope.scope) || []), ...scope.handovers].reverse().slice(0, RECENT);
      }
      V.board = board;
      V.error = '';
    } else {
      V.error = `值班表读取失败：${C.loopErrorText(res)}`;
    }
    if (V.shown) render();
  }

  function skeleton() {
    const root = $('view-duty');
    if (root.dataset.built) return;
    root.dataset.built = 'yes';
    const panel = el('section', 'panel duty-panel');
    const head = el('div', 'loop-head');
    const h = el('h2', '', '值班');
    h.id = 'duty-h';
    const date = el('span', 'muted');
    date.id = 'duty-date';
    const refresh = el('button', 'btn-small', '刷新');
    refresh.type = 'button';
    refresh.addEventListener('click', load);
    head.append(h, date, refresh);
    const leader = el('p', 'duty-leader');
    leader.id = 'duty-leader';
    const error = el('p', 'dialog-error');
    error.id = 'duty-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const scopes = el('div', 'duty-scopes');
    scopes.id = 'duty-scopes';
    panel.append(head, leader, error, scopes);
    panel.setAttribute('aria-labelledby', 'duty-h');
    root.append(panel);
    scopes.addEventListener('click', onClick);
  }

  function scopeCard(s, perShift) {
    const card = el('article', 'duty-scope');
    card.dataset.scope = s.scope;
    const head = el('div', 'incident-head');
    head.append(el('h3', 'duty-name', s.name));
    card.append(head);
    const roster = el('div', 'duty-roster');
    if (!s.shifts.length) roster.append(el('p', 'muted', '今日未排班'));
    for (const shift of s.shifts) {
      const line = el('div', 'duty-shift');
      line.dataset.shift = shift.shift;
      line.append(el('b', '', `${shiftLabel(shift.shift)}：`));
      line.append(el('span', 'duty-people', shift.on_duty.length ? names(shift.on_duty) : '（无值班人员）'));
      if (shift.leader) line.append(el('span', 'duty-shift-leader', `带班领导 ${names([shift.leader])}`));
      roster.append(line);
    }
    card.append(roster);
    const handovers = el('div', 'duty-handovers');
    handovers.append(el('h4', '', '近两日交接班'));
    if (!s.recent.length) handovers.append(el('p', 'muted small', '暂无交接记录'));
    for (const h of s.recent) {
      const line = el('div', 'duty-handover');
      line.append(
        el('span', 'mono', fmtWallClock(h.at)),
        el('span', '', ` ${names([h.from])} → ${names([h.to])}`),
        el('span', 'duty-note', h.note ? `：${h.note}` : '')
      );
      handovers.append(line);
    }
    card.append(handovers);
    if (keeps(s.scope)) {
      const actions = el('div', 'actions');
      const edit = el('button', 'btn-small', '编辑排班');
      edit.type = 'button';
      edit.dataset.action = 'roster';
      const over = el('button', 'btn-small btn-primary', '交接班');
      over.type = 'button';
      over.dataset.action = 'handover';
      actions.append(edit, over);
      card.append(actions);
    }
    card.perShift = perShift;
    card.scopeData = s;
    return card;
  }

  function render() {
    skeleton();
    const b = V.board;
    $('duty-error').textContent = V.error;
    $('duty-error').hidden = !V.error;
    if (!b) return;
    $('duty-date').textContent = `${b.date} · 每班最多 ${b.per_shift} 人`;
    $('duty-leader').textContent = `民政局带班领导：${b.leader_on_call ? names([b.leader_on_call]) : '未排'}`;
    $('duty-scopes').replaceChildren(...b.scopes.map((s) => scopeCard(s, b.per_shift)));
    const badge = $('nav-duty');
    if (badge) badge.textContent = '';
  }

  function openRoster(s, perShift) {
    const current = s.shifts.find((x) => x.shift === 'day') || s.shifts[0];
    const shiftIds = [...new Set(['day', 'night', ...s.shifts.map((x) => x.shift)])];
    const fields = [
      { name: 'shift', label: '班次', kind: 'select', options: shiftIds.map((id) => [id, shiftLabel(id)]), value: current ? current.shift : 'day' },
      {
        name: 'people',
        label: '值班人员登录名',
        kind: 'text',
        max: 400,
        value: current ? current.on_duty.map((x) => x.login).join(' ') : '',
        hint: `用空格或逗号分隔，最多 ${perShift} 人；留空即清空该班次`,
      },
    ];
    if (s.scope === BUREAU) {
      fields.push({ name: 'leader', label: '带班领导登录名', kind: 'text', max: 64, value: current && current.leader ? current.leader.login : '' });
    }
    C.loopForm({
      title: '编辑排班',
      dialogId: 'duty-roster-dialog',
      intro: `${s.name} · ${V.board.date}`,
      fields,
      submitLabel: '保存排班',
      asksName: false,
      submit: async (v) => {
        const people = logins(v.people).map((login) => ({ login, role: 'on_duty' }));
        if (v.leader) people.push({ login: v.leader, role: 'leader' });
        const res = await api('/api/duty', { method: 'PUT', body: { scope: s.scope, date: V.board.date, shift: v.shift, people } });
        if (res.ok) {
          C.toast(`已保存 ${s.name} ${shiftLabel(v.shift)}排班`);
          load();
        }
        return res;
      },
    });
  }

  // The people on the scope's roster today, but the person handing over: whom one hands to.
  function rostered(s) {
    const me = (window.SafetySession.person() || {}).login;
    const seen = new Map();
    for (const shift of s.shifts) {
      for (const x of shift.on_duty) if (x.login !== me) seen.set(x.login, names([x]));
    }
    return [...seen];
  }

  function openHandover(s) {
    C.loopForm({
      title: '交接班',
      dialogId: 'duty-handover-dialog',
      intro: s.name,
      fields: [
        { name: 'to', label: '接班人登录名', kind: 'text', max: 64, required: true, suggest: rostered(s) },
        { name: 'note', label: '交接事项', kind: 'textarea', max: 2000, hint: '如：未关闭报警、待办事项、设备情况' },
      ],
      submitLabel: '交班',
      asksName: false,
      submit: async (v) => {
        const res = await api('/api/duty/handover', { method: 'POST', body: { scope: s.scope, to: v.to, note: v.note } });
        if (res.ok) {
          C.toast(`已交班给 ${v.to}`);
          load();
        }
        return res;
      },
    });
  }

  function onClick(event) {
    const b = event.target.closest('button[data-action]');
    const card = b && b.closest('article.duty-scope');
    if (!card) return;
    if (b.dataset.action === 'roster') openRoster(card.scopeData, card.perShift);
    else if (b.dataset.action === 'handover') openHandover(card.scopeData);
  }

  function show() {
    V.shown = true;
    render();
    load();
  }

  function hide() {
    V.shown = false;
  }

  function start() {
    skeleton();
    C.registerView('duty', { show, hide });
    // Who may keep which roster is known once the person is: drawn again then, once.
    let known = false;
    window.SafetySession.onPerson(() => {
      if (!known && V.shown && V.board) render();
      known = true;
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
