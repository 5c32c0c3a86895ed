/* Bureau page, 每日自查 (the 15:00 board): each readable site's self-report of a day
 * (GET /api/daily-checks?date=): 已上报 (when, by whom), 迟报, or 未上报. A site not in is
 * neutral before the reminder time (14:30), amber from it (the site has been reminded), and
 * red from the due time (15:00), when the missing sites are also listed at the top for the
 * bureau. Where the day stands is worked out each second on the gateway's clock (SafetyClock)
 * from the board's own times, as the gateway does. The date can be changed to see a past
 * day; a site's submitted checklist opens with its items, results and notes. Today's bureau
 * duty (on duty, 带班领导) comes from GET /api/duty.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { $, el } = window.SafetyUi;
  const { api } = window.SafetyLive;
  const { now } = window.SafetyClock;
  const B = window.SafetyBureau;
  const STANDINGS = {
    missing: { label: '未上报', rank: 0 },
    late: { label: '迟报', rank: 1 },
    submitted: { label: '已上报', rank: 2 },
  };
  const RESULTS = { ok: '正常', problem: '有问题', not_applicable: '不适用' };
  const K = { board: null, duty: null, seq: 0, applied: 0, phase: null, day: '' }; // day: '' = today

  async function load() {
    const seq = ++K.seq;
    const day = K.day;
    const [res, duty] = await Promise.all([
      api(`/api/daily-checks${day ? `?date=${encodeURIComponent(day)}` : ''}`),
      api('/api/duty'),
    ]);
    if (seq < K.applied) return;
    K.applied = seq;
    if (duty.ok && duty.body) K.duty = duty.body;
    renderDuty();
    if (!res.ok || !res.body || !Array.isArray(res.body.sites)) {
      B.showError($('checks-error'), res);
      return;
    }
    B.showError($('checks-error'), null);
    if (document.activeElement !== $('checks-date')) $('checks-date').value = res.body.date;
    const key = JSON.stringify(res.body); // the same again leaves the rows alone
    if (key !== K.key) {
      K.key = key;
      K.board = res.body;
      render();
    }
    B.loaded('checks');
  }

  // Where the board's day stands at `nowMs`, as gateway.duty.model.phase_of.
  function phaseAt(board, nowMs) {
    if (nowMs >= B.msOf(board.due)) return 'overdue';
    if (nowMs >= B.msOf(board.remind_at)) return 'remind';
    return 'open';
  }

  const hhmm = (iso) => B.when(iso).slice(6);

  function render() {
    const b = K.board;
    if (!b) return;
    const phase = phaseAt(b, now());
    K.phase = phase;
    const view = document.querySelector('main > .view[data-view="checks"]');
    view.dataset.phase = phase;
    const today = b.date === B.gatewayToday();
    const due = hhmm(b.due);
    const remind = hhmm(b.remind_at);
    const missing = b.sites.filter((s) => s.standing === 'missing');
    const box = $('checks-phase');
    box.className = `checks-phase phase-${phase}`;
    if (!today && phase === 'overdue') box.textContent = `${b.date} 的自查上报（截止 ${due}）`;
    else if (phase === 'overdue') box.textContent = `已过 ${due} 截止时间`;
    else if (phase === 'remind') box.textContent = `${remind} 已提醒未上报的场所，${due} 截止`;
    else box.textContent = `今日自查 ${due} 前上报；${remind} 起提醒未上报的场所`;

    // At the due time the missing sites are listed for the bureau.
    const list = $('checks-missing');
    list.hidden = !(phase === 'overdue' && missing.length);
    list.querySelector('b').textContent = `${due} 未上报`;
    $('checks-missing-count').textContent = String(missing.length);
    $('checks-missing-list').replaceChildren(
      ...missing.map((s) => {
        const li = el('li', '', s.name);
        li.dataset.siteId = s.site;
        return li;
      }),
    );

    const count = (st) => b.sites.filter((s) => s.standing === st).length;
    $('checks-counts').replaceChildren(
      B.chip('cc-submitted', '已上报', count('submitted')),
      B.chip('cc-late', '迟报', count('late')),
      B.chip(`cc-missing phase-${phase}`, '未上报', count('missing')),
    );
    const rows = [...b.sites].sort(
      (x, y) => STANDINGS[x.standing].rank - STANDINGS[y.standing].rank || x.name.localeCompare(y.name, 'zh-CN'),
    );
    $('check-rows').replaceChildren(...rows.map((s) => row(s, phase)));
    $('nav-checks').textContent = today && phase !== 'open' && missing.length ? String(missing.length) : '';
  }

  function row(s, phase) {
    const tr = el('tr', `check standing-${s.standing}${s.standing === 'missing' ? ` phase-${phase}` : ''}`);
    tr.dataset.siteId = s.site;
    tr.dataset.standing = s.standing;
    const standing = el('td', 'c-standing');
    standing.append(el('span', `standing standing-${s.standing}`, STANDINGS[s.standing].label));
    if (s.standing === 'missing' && phase === 'remind') standing.append(el('span', 'sub', '已提醒'));
    const at = el('td', 'c-at', s.first_submitted_at ? B.when(s.first_submitted_at) : '—');
    if (s.submitted_at && s.first_submitted_at && s.submitted_at !== s.first_submitted_at) {
      at.append(el('span', 'sub', `更正 ${B.when(s.submitted_at)}`));
    }
    const result = el('td', 'c-result');
    if (s.items) {
      const problems = s.items.filter((i) => i.result === 'problem').length;
      result.append(el('span', problems ? 'check-problems' : 'check-fine', problems ? `问题 ${problems} 项` : '全部正常'), ' ');
      const open = el('button', 'btn-small check-open', '查看');
      open.type = 'button';
      open.addEventListener('click', () => openCheck(s));
      result.append(open);
    } else {
      result.textContent = '—';
    }
    tr.append(el('td', 'c-site', s.name), standing, at, el('td', '', s.submitted_by || '—'), result);
    return tr;
  }

  function openCheck(s) {
    const labels = new Map((K.board.items || []).map((i) => [i.id, i.label]));
    $('check-title').textContent = `${s.name} · ${K.board.date} 自查记录`;
    $('check-meta').textContent = `${STANDINGS[s.standing].label} · ${B.when(s.first_submitted_at)} · ${s.submitted_by || ''}`;
    $('check-items').replaceChildren(
      ...s.items.map((i) => {
        const tr = el('tr', `item result-${i.result}`);
        tr.dataset.item = i.item;
        tr.append(el('td', '', labels.get(i.item) || i.item), el('td', `result result-${i.result}`, RESULTS[i.result] || i.result), el('td', 'note', i.note || ''));
        return tr;
      }),
    );
    $('check-dialog').showModal();
  }

  function renderDuty() {
    const box = $('bureau-duty');
    const d = K.duty;
    if (!d) return;
    const scope = (d.scopes || []).find((s) => s.scope === 'bureau');
    const names = (people) => people.map((p) => p.name).join('、');
    const onDuty = scope ? scope.shifts.flatMap((s) => s.on_duty) : [];
    const leader = d.leader_on_call;
    const part = (label, value, id) => {
      const span = el('span', 'duty-part');
      span.id = id;
      span.append(el('span', 'muted', `${label} `), el('b', '', value));
      return span;
    };
    box.replaceChildren(
      el('span', 'duty-title', `今日局值班（${d.date}）`),
      part('值班', onDuty.length ? names(onDuty) : '未排班', 'duty-on'),
      part('带班领导', leader ? leader.name : '未排班', 'duty-leader'),
    );
  }

  // Once a second: the day's phase moves on the gateway's clock (14:30, 15:00).
  function tick() {
    if (K.board && phaseAt(K.board, now()) !== K.phase) render();
  }

  $('checks-date').addEventListener('change', () => {
    K.day = $('checks-date').value;
    load();
  });
  $('checks-today').addEventListener('click', () => {
    K.day = '';
    load();
  });
  $('checks-refresh').addEventListener('click', load);
  B.registerView('checks', { load, tick, always: true }); // its tab's figure on every view
  return { loadChecks: load };
})());
