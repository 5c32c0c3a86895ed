/* Duty console: the table of open alarms and the list of recently closed ones. Owns the order
 * the duty officer sees, the rows (kept and updated in place) with their ack and close
 * buttons and when each is enabled, the shut-off valve a gas alarm depends on, and the
 * durations counting up. The dialogs the buttons open are dialogs.js.
 */
'use strict';

Object.assign(window.SafetyConsole, (() => {
  const {
    SEVERITIES,
    $,
    el,
    severityBadge,
    whereNodes,
    syncChildren,
    parseTime,
    fmtDuration,
    fmtWallClock,
    typeLabel,
    severityLabel,
    stateLabel,
    closingWords,
    alarmValue,
  } = window.SafetyUi;
  const { now } = window.SafetyClock;
  const { S, deviceKey, siteName } = window.SafetyConsole;
  const LEVELS = { pre_alarm: '预报警', level_1: '一级报警', level_2: '二级报警' };
  const REASONS = {
    status_offline: '设备上报离线',
    silent: '长时间无数据',
    poll_failed: '轮询无应答',
    exception_response: '设备拒绝请求',
    status_bit: '设备状态位故障',
    fault_reported: '设备上报故障',
    tamper: '设备被拆动',
    no_valid_reading: '无有效读数',
    valve_not_confirmed: '关阀未在时限内确认',
    valve_refused: '阀门拒绝关闭',
    valve_reported_open: '阀门报告为开启',
    trip_not_confirmed: '脱扣未确认',
  };

  const canAck = (alarm) => !alarm.acked && alarm.state !== 'closed';
  // Threshold alarms may be closed once cleared; latched (event) alarms at any time.
  const canClose = (alarm) => alarm.state === 'cleared' || (alarm.latched && alarm.state !== 'closed');

  // The shut-off valve a gas alarm depends on (and a valve alarm's own valve).
  function linkedValve(alarm) {
    if (alarm.type === 'valve_failure') return S.devices.get(deviceKey(alarm.site, alarm.device));
    if (alarm.type !== 'gas_leak') return undefined;
    const detector = S.devices.get(deviceKey(alarm.site, alarm.device));
    if (!detector || !detector.shutoff_valve) return null;
    return S.devices.get(deviceKey(alarm.site, detector.shutoff_valve)) || null;
  }

  function valveLabel(valve) {
    if (valve === undefined) return { text: '—', cls: 'muted', title: '' };
    if (valve === null) return { text: '未关联', cls: 'valve-unknown', title: '该探测器未配置切断阀' };
    const open = valve.values ? valve.values.open : undefined;
    const offline = valve.status === 'offline' ? '（阀门离线）' : '';
    const title = `${valve.id} · ${valve.location || ''}`;
    if (open === 0) return { text: `已关闭${offline}`, cls: 'valve-closed', title };
    if (open === 1) return { text: `开启${offline}`, cls: 'valve-open', title };
    return { text: `未知${offline}`, cls: 'valve-unknown', title };
  }

  // Order for the duty officer. Most severe first. Within one severity, alarms that still
  // need a person come first (active and unacknowledged, then cleared but unacknowledged, then
  // acknowledged active, then acknowledged cleared), and among equals the OLDEST first: the
  // alarm that has waited longest stays at the top instead of sinking under newer arrivals,
  // which newest-first would do to an unanswered alarm during a burst.
  function attention(alarm) {
    const active = alarm.state === 'active';
    if (!alarm.acked) return active ? 0 : 1;
    return active ? 2 : 3;
  }

  function compareAlarms(a, b) {
    const ra = SEVERITIES[a.severity] ? SEVERITIES[a.severity].rank : 9;
    const rb = SEVERITIES[b.severity] ? SEVERITIES[b.severity].rank : 9;
    if (ra !== rb) return ra - rb;
    const aa = attention(a);
    const ab = attention(b);
    if (aa !== ab) return aa - ab;
    const ta = parseTime(a.raised_at);
    const tb = parseTime(b.raised_at);
    if (ta !== tb) return ta - tb;
    return a.id < b.id ? -1 : 1;
  }

  function createRow(id) {
    const tr = el('tr', 'alarm');
    tr.dataset.alarmId = id;
    const cells = {};
    for (const name of ['sev', 'type', 'state', 'where', 'value', 'valve', 'duration', 'actions']) {
      cells[name] = el('td', `c-${name}`);
      tr.appendChild(cells[name]);
    }
    const actions = el('div', 'actions');
    cells.ack = el('button', 'btn-ack', '确认');
    cells.ack.type = 'button';
    cells.ack.dataset.action = 'ack';
    cells.close = el('button', 'btn-close', '关闭');
    cells.close.type = 'button';
    cells.close.dataset.action = 'close';
    actions.append(cells.ack, cells.close);
    cells.actions.appendChild(actions);
    tr._cells = cells;
    return tr;
  }

  function fillRow(tr, a) {
    const c = tr._cells;
    const st = stateLabel(a);
    tr.className = `alarm sev-${a.severity}${canAck(a) ? ' needs-ack' : ''}${a.state === 'cleared' ? ' is-cleared' : ''}`;
    tr.dataset.state = a.state;
    tr.dataset.severity = a.severity;

    c.sev.replaceChildren(severityBadge(a.severity));

    const typeParts = [el('span', 'type-label', typeLabel(a.type))];
    const subs = [];
    if (a.level && LEVELS[a.level]) subs.push(LEVELS[a.level]);
    if (a.count > 1) subs.push(`第 ${a.count} 次`);
    if (a.reason && REASONS[a.reason]) subs.push(REASONS[a.reason]);
    if (subs.length) typeParts.push(el('span', 'sub', subs.join(' · ')));
    c.type.replaceChildren(...typeParts);

    const stateParts = [el('span', `state ${st.cls}`, st.text)];
    if (a.state === 'cleared' && !a.acked) stateParts.push(el('span', 'sub state-unacked', '尚未确认'));
    if (a.acked && a.acked_by) stateParts.push(el('span', 'sub', `确认人：${a.acked_by}`));
    c.state.replaceChildren(...stateParts);

    c.where.replaceChildren(el('span', 'sub', siteName(a.site)), ...whereNodes(a));

    const value = alarmValue(a, a.value);
    const peak = alarmValue(a, a.peak);
    if (value || peak) {
      const parts = [el('div', 'value-now', value ? `当前 ${value}` : '当前 —')];
      if (peak) parts.push(el('span', 'sub', `峰值 ${peak}`));
      c.value.replaceChildren(...parts);
    } else {
      c.value.replaceChildren(el('span', 'muted', '—'));
    }

    const valve = valveLabel(linkedValve(a));
    const valveSpan = el('span', valve.cls, valve.text);
    if (valve.title) valveSpan.title = valve.title;
    c.valve.replaceChildren(valveSpan);

    c.duration.title = `发生于 ${fmtWallClock(a.raised_at)}`;
    fillDuration(tr, a);

    const what = `${typeLabel(a.type)} ${a.location || a.device}`;
    c.ack.disabled = !canAck(a);
    c.ack.setAttribute('aria-label', `确认报警：${what}`);
    c.close.disabled = !canClose(a);
    c.close.setAttribute('aria-label', `关闭报警：${what}`);
    c.close.title = canClose(a) ? '' : '报警仍在持续：恢复正常后才能关闭';
  }

  function fillDuration(tr, a) {
    const c = tr._cells;
    const since = parseTime(a.raised_at);
    const parts = [el('span', 'duration', Number.isNaN(since) ? '—' : fmtDuration(now() - since))];
    parts.push(el('span', 'sub', fmtWallClock(a.raised_at).slice(6)));
    c.duration.replaceChildren(...parts);
  }

  // The open alarms, already in the duty officer's order.
  function renderAlarms(sorted) {
    syncChildren($('alarm-rows'), S.rows, sorted, (a) => a.id, createRow, fillRow);
    $('no-alarms').hidden = sorted.length > 0;
  }

  function renderRecent() {
    $('recent-count').textContent = String(S.recent.length);
    const items = S.recent.map((a) => {
      const parts = [
        fmtWallClock(a.closed_at || a.updated_at),
        `${typeLabel(a.type)}（${severityLabel(a.severity)}）`,
        `${siteName(a.site)} ${a.location || ''}`.trim(),
        ...closingWords(a),
      ].filter(Boolean);
      return el('li', '', parts.join(' · '));
    });
    $('recent-list').replaceChildren(...items);
  }

  // Once a second: how long each alarm has lasted.
  function tickAlarms() {
    for (const [id, tr] of S.rows) {
      const a = S.alarms.get(id);
      if (a) fillDuration(tr, a);
    }
  }

  return { compareAlarms, renderAlarms, renderRecent, tickAlarms };
})());
