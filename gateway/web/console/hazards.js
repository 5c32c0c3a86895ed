/* Duty console: the 隐患台账 view (hazard ledger, issue 12). Owns the `#view-hazards` panels
 * (the ledger with its filters and XLSX export, the gateway's suggestions, the site's
 * rectification notices), the 登记隐患 form, a hazard's detail dialog (its fields, the steps
 * of the loop the person may take, editing, its timeline) and the `#nav-hazards` badge: the
 * hazards past their deadline and not rectified yet.
 *
 * The gateway decides everything: what a hazard's status is, whether it is overdue, who may
 * take a step. The page only leaves out the steps that are not the person's (an institution
 * is never offered the bureau's check of a major hazard); a refusal still comes back in
 * words. All text from the gateway is written with textContent.
 */
'use strict';

(() => {
  const { $, el, zoneOffsetOf, fmtWallClock } = window.SafetyUi;
  const { api, unreachableText } = window.SafetyLive;
  const C = window.SafetyConsole;

  const BUREAU_ROLES = ['bureau', 'bureau_leader'];
  const SITE_ROLES = ['duty', 'safety_manager', 'legal_representative'];
  const SOURCES = {
    inspection: '检查发现',
    valve_failure: '切断阀故障',
    device_offline: '设备长时间离线',
    false_alarms: '频繁误报',
    electrical_alarm: '电气报警',
    other: '其他',
  };
  const { HAZARD_ACTIONS: ACTIONS, HAZARD_STATUS: STATUS, NOTICE_STATES } = window.SafetyUi;
  const BADGE_EVERY_MS = 60000;

  let shown = false;
  let zoneOffset = null; // the gateway's UTC offset in minutes, learnt from its times
  let detail = null; // the hazard the detail dialog shows
  let formAlarm = null; // {source, alarm_id} of the suggestion the form was opened from

  // ------------------------------------------------------------------ helpers
  function kindOf() {
    const me = window.SafetySession.person();
    if (!me) return 'admin';
    if (BUREAU_ROLES.includes(me.role)) return 'bureau';
    if (SITE_ROLES.includes(me.role)) return 'site';
    return 'admin';
  }

  function errorText(res) {
    if (res.status === 0) return `${unreachableText(res)}，请稍后重试`;
    const body = res.body || {};
    let detailText = body.detail;
    if (Array.isArray(detailText)) detailText = detailText.map((d) => (d && d.msg) || '').join('；');
    const msg = [body.error, typeof detailText === 'string' ? detailText : ''].filter(Boolean).join('：');
    return `操作被拒绝（${res.status}）${msg ? '：' + msg : ''}`;
  }

  function learnZone(iso) {
    const off = zoneOffsetOf(iso);
    if (off !== null) zoneOffset = off;
  }

  // The gateway's zone, for a deadline typed in the gateway's local time; asked once when
  // nothing the page has read yet carried a time.
  async function ensureZone() {
    if (zoneOffset !== null) return;
    const res = await api('/api/daily-checks');
    if (res.ok && res.body) learnZone(res.body.due);
  }

  // "2026-11-25T18:00" (a datetime-local input, the gateway's local time) -> ISO with offset.
  function localToIso(value) {
    if (!value) return null;
    const off = zoneOffset === null ? 0 : zoneOffset;
    const sign = off < 0 ? '-' : '+';
    const abs = Math.abs(off);
    const hh = String(Math.floor(abs / 60)).padStart(2, '0');
    const mm = String(abs % 60).padStart(2, '0');
    return `${value.length === 16 ? value + ':00' : value}${sign}${hh}:${mm}`;
  }

  // An ISO time of the gateway (written in its zone) as a datetime-local value, and as text.
  const isoToLocal = (iso) => (iso ? iso.slice(0, 16) : '');
  const dayTime = (iso) => (iso ? iso.slice(0, 16).replace('T', ' ') : '未设');

  function showError(id, text) {
    const p = $(id);
    p.textContent = text || '';
    p.hidden = !text;
  }

  // ------------------------------------------------------------------ the ledger
  function query() {
    const params = new URLSearchParams();
    if ($('hz-status').value) params.set('status', $('hz-status').value);
    if ($('hz-level').value) params.set('level', $('hz-level').value);
    if ($('hz-overdue').checked) params.set('overdue', 'true');
    return params;
  }

  async function loadLedger() {
    const params = query();
    const xlsx = new URLSearchParams(params);
    xlsx.set('format', 'xlsx');
    $('hz-export').href = `/api/hazards?${xlsx}`;
    const res = await api(`/api/hazards?${params}`);
    if (!res.ok) {
      showError('hz-error', `无法读取隐患台账：${errorText(res)}`);
      return;
    }
    showError('hz-error', '');
    const hazards = res.body.hazards || [];
    if (hazards.length) learnZone(hazards[0].found_at);
    const rows = $('hz-rows');
    rows.replaceChildren(...hazards.map(hazardRow));
    $('hz-count').textContent = String(hazards.length);
    $('hz-empty').hidden = hazards.length > 0;
  }

  function hazardRow(h) {
    const tr = el('tr', `hz-row status-${h.status}${h.overdue ? ' overdue' : ''}`);
    tr.dataset.hazardId = String(h.id);
    const where = el('td', 'hz-c-where');
    where.append(el('div', 'where-location', h.location), el('span', 'sub', h.site_name));
    const desc = el('td', 'hz-c-desc');
    desc.append(el('div', 'hz-desc', h.description));
    if (h.source !== 'inspection') desc.append(el('span', 'sub', `来源：${SOURCES[h.source] || h.source}`));
    const level = el('td', 'hz-c-level');
    level.append(el('span', `hz-level level-${h.level}`, h.level_label));
    const deadline = el('td', 'hz-c-deadline');
    deadline.append(el('span', 'hz-deadline', dayTime(h.deadline)));
    if (h.overdue) deadline.append(el('span', 'hz-overdue-mark', '逾期'));
    const act = el('td', 'hz-c-act');
    const open = el('button', 'btn-small', '详情');
    open.type = 'button';
    open.dataset.action = 'detail';
    open.addEventListener('click', () => openDetail(h.id));
    act.append(open);
    tr.append(
      el('td', 'hz-c-id mono', String(h.id)),
      where,
      desc,
      level,
      el('td', 'hz-c-resp', h.responsible),
      deadline,
      el('td', `hz-c-status hz-status-${h.status}`, h.status_label),
      act,
    );
    return tr;
  }

  // ------------------------------------------------------------------ suggestions
  async function loadSuggestions() {
    const list = $('hz-suggestions');
    const res = await api('/api/hazards/suggestions');
    if (!res.ok) {
      list.replaceChildren(el('li', 'muted', `系统建议暂不可用：${errorText(res)}`));
      $('hz-sugg-count').textContent = '';
      $('hz-sugg-empty').hidden = true;
      return;
    }
    const found = res.body.suggestions || [];
    if (found.length) learnZone(found[0].raised_at);
    list.replaceChildren(...found.map(suggestionItem));
    $('hz-sugg-count').textContent = String(found.length);
    $('hz-sugg-empty').hidden = found.length > 0;
  }

  function suggestionItem(s) {
    const li = el('li', 'hz-suggestion');
    li.dataset.alarmId = s.alarm_id;
    const text = el('div', 'hz-item-text');
    text.append(
      el('div', 'hz-item-title', `${s.site_name} ${s.location || s.device} · ${SOURCES[s.source] || s.source}`),
      el('div', '', s.description),
      el('span', 'sub', `${s.reason} · 报警时间 ${fmtWallClock(s.raised_at)} · 建议等级 ${s.level_label}`),
    );
    const accept = el('button', 'btn-small', '登记');
    accept.type = 'button';
    accept.dataset.action = 'accept';
    accept.addEventListener('click', () =>
      openForm({
        site: s.site,
        location: s.location || s.device,
        description: s.description,
        level: s.level,
        source: s.source,
        alarm_id: s.alarm_id,
        reason: s.reason,
      }),
    );
    li.append(text, accept);
    return li;
  }

  // ------------------------------------------------------------------ notices
  async function loadNotices() {
    const list = $('hz-notices');
    const res = await api('/api/notices');
    if (!res.ok) {
      list.replaceChildren(el('li', 'muted', `无法读取整改通知书：${errorText(res)}`));
      return;
    }
    const found = res.body.notices || [];
    list.replaceChildren(...found.map(noticeItem));
    $('hz-notice-count').textContent = String(found.length);
    $('hz-notice-empty').hidden = found.length > 0;
  }

  function noticeItem(n) {
    const li = el('li', `hz-notice state-${n.state}`);
    li.dataset.noticeId = String(n.id);
    const text = el('div', 'hz-item-text');
    text.append(
      el('div', 'hz-item-title', `${n.number} · ${n.site_name} · ${NOTICE_STATES[n.state] || n.state}`),
      el('div', 'hz-requirements', n.requirements),
      el(
        'span',
        'sub',
        `签发 ${dayTime(n.issued_at)}（${n.issued_by}） · 整改期限 ${dayTime(n.deadline)} · 隐患 ${n.hazard_ids.join('、')}` +
          (n.received_at ? ` · 签收 ${dayTime(n.received_at)}（${n.received_by}）` : ''),
      ),
    );
    const acts = el('div', 'actions');
    const print = el('a', 'btn-link', '打印');
    print.href = `/api/notices/${n.id}?format=html`;
    print.target = '_blank';
    print.rel = 'noopener';
    acts.append(print);
    if (n.state === 'issued' && kindOf() === 'site') {
      const sign = el('button', 'btn-small btn-primary', '签收');
      sign.type = 'button';
      sign.dataset.action = 'receipt';
      sign.addEventListener('click', async () => {
        sign.disabled = true;
        const res = await api(`/api/notices/${n.id}/receipt`, { method: 'POST' });
        if (res.ok) C.toast(`已签收：${n.number}`);
        else C.toast(errorText(res), true);
        loadNotices();
      });
      acts.append(sign);
    }
    li.append(text, acts);
    return li;
  }

  // ------------------------------------------------------------------ the form
  async function siteChoices() {
    const res = await api('/api/sites');
    if (!res.ok || !Array.isArray(res.body)) return [];
    return res.body.map((s) => ({ id: s.id, name: s.name }));
  }

  async function openForm(prefill = {}) {
    const dialog = $('hz-form-dialog');
    formAlarm = prefill.alarm_id ? { source: prefill.source, alarm_id: prefill.alarm_id } : null;
    const select = $('hz-f-site');
    const sites = await siteChoices();
    select.replaceChildren(
      ...sites.map((s) => {
        const o = el('option', '', s.name);
        o.value = s.id;
        return o;
      }),
    );
    if (prefill.site) select.value = prefill.site;
    $('hz-f-location').value = prefill.location || '';
    $('hz-f-description').value = prefill.description || '';
    $('hz-f-level').value = prefill.level || 'general';
    $('hz-f-responsible').value = '';
    $('hz-f-measure').value = '';
    $('hz-f-deadline').value = '';
    const linked = $('hz-form-alarm');
    linked.hidden = !formAlarm;
    linked.textContent = formAlarm
      ? `系统建议：${SOURCES[prefill.source] || prefill.source}（${prefill.reason || ''}），关联报警 ${prefill.alarm_id}`
      : '';
    $('hz-form-title').textContent = formAlarm ? '登记隐患（系统建议）' : '登记隐患';
    showError('hz-form-error', '');
    $('hz-form-submit').disabled = false;
    if (!dialog.open) dialog.showModal();
    $(prefill.location ? 'hz-f-responsible' : 'hz-f-location').focus();
  }

  async function submitForm(event) {
    event.preventDefault();
    const fields = {
      site: $('hz-f-site').value,
      location: $('hz-f-location').value.trim(),
      description: $('hz-f-description').value.trim(),
      level: $('hz-f-level').value,
      responsible: $('hz-f-responsible').value.trim(),
      measure: $('hz-f-measure').value.trim(),
    };
    const missing = [
      ['site', '场所'],
      ['location', '隐患部位'],
      ['description', '隐患描述'],
      ['responsible', '整改责任人'],
      ['measure', '整改措施'],
    ].filter(([k]) => !fields[k]);
    if (missing.length) {
      showError('hz-form-error', `请填写：${missing.map(([, label]) => label).join('、')}`);
      return;
    }
    await ensureZone();
    const body = { ...fields, deadline: localToIso($('hz-f-deadline').value) };
    if (formAlarm) Object.assign(body, formAlarm);
    $('hz-form-submit').disabled = true;
    const res = await api('/api/hazards', { method: 'POST', body });
    $('hz-form-submit').disabled = false;
    if (!res.ok) {
      showError('hz-form-error', errorText(res));
      return;
    }
    $('hz-form-dialog').close();
    C.toast(`已登记隐患 ${res.body.id}：${res.body.location}`);
    refresh();
  }

  // ------------------------------------------------------------------ a hazard's detail
  function stepsFor(h) {
    const kind = kindOf();
    const verify = [
      { to: 'closed', label: '核查通过，销号', cls: 'btn-primary' },
      { to: 'rectifying', label: '核查未通过，退回整改', cls: '' },
    ];
    if (h.status === 'closed') return { steps: [], why: '已销号：整改闭环完成' };
    if (kind === 'bureau') {
      return h.status === 'awaiting_verification'
        ? { steps: verify, why: '' }
        : { steps: [], why: '整改由单位进行；整改完成后由民政局核查' };
    }
    if (h.status === 'open') return { steps: [{ to: 'rectifying', label: '开始整改', cls: 'btn-primary' }], why: '' };
    if (h.status === 'rectifying') {
      return { steps: [{ to: 'awaiting_verification', label: '整改完成，申请核查', cls: 'btn-primary' }], why: '' };
    }
    if (h.level === 'major') return { steps: [], why: '重大隐患由民政局现场核查后销号' };
    return { steps: verify, why: '' };
  }

  function field(dl, label, value) {
    dl.append(el('dt', '', label), el('dd', '', value));
  }

  function renderDetail(h) {
    detail = h;
    learnZone(h.found_at);
    $('hz-d-title').textContent = `隐患 ${h.id} · ${h.status_label}${h.overdue ? '（逾期）' : ''}`;
    const dl = $('hz-d-fields');
    dl.replaceChildren();
    field(dl, '场所', h.site_name);
    field(dl, '隐患部位', h.location);
    field(dl, '隐患描述', h.description);
    field(dl, '等级', h.level_label);
    field(dl, '来源', SOURCES[h.source] || h.source);
    if (h.alarm_id) field(dl, '关联报警', h.alarm_id);
    field(dl, '发现', `${dayTime(h.found_at)} · ${h.found_by}`);
    field(dl, '整改责任人', h.responsible);
    field(dl, '整改措施', h.measure);
    field(dl, '整改期限', dayTime(h.deadline) + (h.overdue ? '（已逾期）' : ''));
    if (h.verified_by) field(dl, '核查', `${dayTime(h.verified_at)} · ${h.verified_by}`);

    const { steps, why } = stepsFor(h);
    const box = $('hz-d-steps');
    box.replaceChildren(
      ...steps.map((s) => {
        const b = el('button', `btn-small ${s.cls}`, s.label);
        b.type = 'button';
        b.dataset.to = s.to;
        b.addEventListener('click', () => takeStep(h, s.to));
        return b;
      }),
    );
    $('hz-d-note').hidden = steps.length === 0;
    $('hz-d-note-label').hidden = steps.length === 0;
    $('hz-d-note').value = '';
    $('hz-d-steps-none').textContent = why;
    $('hz-d-steps-none').hidden = !why;

    $('hz-d-edit-box').hidden = h.status === 'closed';
    $('hz-e-location').value = h.location;
    $('hz-e-description').value = h.description;
    $('hz-e-responsible').value = h.responsible;
    $('hz-e-measure').value = h.measure;
    $('hz-e-deadline').value = isoToLocal(h.deadline);
    $('hz-e-level').value = h.level;
    $('hz-e-level-row').hidden = kindOf() !== 'bureau';

    $('hz-d-timeline').replaceChildren(
      ...(h.timeline || []).map((e) => {
        const li = el('li', `hz-event action-${e.action}`);
        const moved = e.from !== e.to || e.action === 'found';
        li.append(
          el('span', 'hz-ev-at mono', dayTime(e.at)),
          el('span', 'hz-ev-what', `${ACTIONS[e.action] || e.action}${moved ? `（${STATUS[e.to] || e.to}）` : ''}`),
          el('span', 'hz-ev-actor', e.actor),
        );
        if (e.note) li.append(el('div', 'hz-ev-note', e.note));
        return li;
      }),
    );
  }

  async function openDetail(id) {
    const res = await api(`/api/hazards/${id}`);
    if (!res.ok) {
      C.toast(errorText(res), true);
      return;
    }
    showError('hz-d-error', '');
    renderDetail(res.body);
    const dialog = $('hz-detail');
    if (!dialog.open) dialog.showModal();
  }

  async function reloadDetail() {
    if (!detail) return;
    const res = await api(`/api/hazards/${detail.id}`);
    if (res.ok) renderDetail(res.body);
  }

  async function takeStep(h, to) {
    for (const b of $('hz-d-steps').querySelectorAll('button')) b.disabled = true;
    const note = $('hz-d-note').value.trim();
    const res = await api(`/api/hazards/${h.id}/transition`, { method: 'POST', body: { to, note } });
    if (!res.ok) {
      showError('hz-d-error', errorText(res));
      for (const b of $('hz-d-steps').querySelectorAll('button')) b.disabled = false;
      return;
    }
    showError('hz-d-error', '');
    C.toast(`隐患 ${h.id}：${res.body.status_label}`);
    await reloadDetail();
    refresh();
  }

  async function saveEdit(event) {
    event.preventDefault();
    if (!detail) return;
    await ensureZone();
    const h = detail;
    const wanted = {
      location: $('hz-e-location').value.trim(),
      description: $('hz-e-description').value.trim(),
      responsible: $('hz-e-responsible').value.trim(),
      measure: $('hz-e-measure').value.trim(),
    };
    const body = {};
    for (const [k, v] of Object.entries(wanted)) {
      if (!v) {
        showError('hz-d-error', '修改后的内容不能为空');
        return;
      }
      if (v !== h[k]) body[k] = v;
    }
    const deadline = $('hz-e-deadline').value;
    if (deadline && deadline !== isoToLocal(h.deadline)) body.deadline = localToIso(deadline);
    if (kindOf() === 'bureau' && $('hz-e-level').value !== h.level) body.level = $('hz-e-level').value;
    if (!Object.keys(body).length) {
      showError('hz-d-error', '没有修改任何内容');
      return;
    }
    $('hz-e-save').disabled = true;
    const res = await api(`/api/hazards/${h.id}`, { method: 'PATCH', body });
    $('hz-e-save').disabled = false;
    if (!res.ok) {
      showError('hz-d-error', errorText(res));
      return;
    }
    showError('hz-d-error', '');
    C.toast(`隐患 ${h.id} 已修改`);
    await reloadDetail();
    refresh();
  }

  // ------------------------------------------------------------------ badge and view
  async function updateBadge() {
    const res = await api('/api/hazards?overdue=true');
    const badge = $('nav-hazards');
    if (!res.ok || !res.body) return;
    const n = (res.body.hazards || []).length;
    badge.textContent = n ? String(n) : '';
    badge.title = n ? `${n} 条隐患已超过整改期限` : '';
  }

  function refresh() {
    if (window.SafetySession.person()) updateBadge();
    if (!shown) return;
    loadLedger();
    loadSuggestions();
    loadNotices();
  }

  function bind() {
    for (const id of ['hz-status', 'hz-level', 'hz-overdue']) $(id).addEventListener('change', loadLedger);
    $('hz-new').addEventListener('click', () => openForm());
    $('hz-form').addEventListener('submit', submitForm);
    $('hz-d-edit').addEventListener('submit', saveEdit);
    for (const dialog of [$('hz-form-dialog'), $('hz-detail')]) {
      dialog.querySelector('[data-cancel]').addEventListener('click', () => dialog.close());
    }
    // The badge once the person is known (their sites), then every minute; the notices
    // again, since whether 签收 is offered depends on who is logged in.
    let known = false;
    window.SafetySession.onPerson(() => {
      if (known) return;
      known = true;
      updateBadge();
      if (shown) loadNotices();
    });
    setInterval(updateBadge, BADGE_EVERY_MS);
    C.registerView('hazards', {
      show() {
        shown = true;
        refresh();
      },
      hide() {
        shown = false;
      },
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', bind);
  else bind();
})();
