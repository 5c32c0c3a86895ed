/* Shared by the duty console (/) and the bureau page (/bureau): the gateway's words in
 * Chinese, the formatting both pages need (so that the two never say a thing differently) and
 * the small DOM helpers both draw with. Plain browser JavaScript, loaded before either page's
 * own scripts; it defines `window.SafetyUi` and nothing else. Pure: time comes in as an
 * argument (the gateway's clock is clock.js, talking to the gateway is live.js).
 */
'use strict';

window.SafetyUi = (() => {
  // ------------------------------------------------------------------ labels
  const ALARM_TYPES = {
    gas_leak: '燃气泄漏',
    co: '一氧化碳超标',
    smoke: '烟雾报警',
    fire_button: '一键报警',
    residual_current: '剩余电流超限',
    overtemperature: '线缆超温',
    overcurrent: '过流',
    device_offline: '设备离线',
    device_fault: '设备故障',
    valve_failure: '切断阀未关闭',
    trip_failure: '脱扣未确认',
    edge_offline: '边缘网关离线',
    store_failure: '告警数据库损坏',
  };
  const SEVERITIES = {
    critical: { label: '紧急', rank: 0 },
    major: { label: '重要', rank: 1 },
    minor: { label: '一般', rank: 2 },
    warning: { label: '预警', rank: 3 },
  };
  const DEVICE_TYPES = {
    gas_detector: '可燃气体探测器',
    co_detector: '一氧化碳探测器',
    gas_valve: '燃气切断阀',
    alarm_button: '一键报警按钮',
    smoke_detector: '烟雾探测器',
    electrical_fire_monitor: '电气火灾监控探测器',
    gas_alarm_controller: '可燃气体报警控制器',
  };
  const DEVICE_STATUS = { online: '在线', offline: '离线', fault: '故障', unknown: '未知' };
  const DISPOSITIONS = { real: '真实报警', false_alarm: '误报', test: '测试', maintenance: '维护' };
  const QUANTITIES = {
    lel: { label: '燃气浓度', unit: '%LEL', digits: 1 },
    co_ppm: { label: '一氧化碳', unit: 'ppm', digits: 0 },
    residual_ma: { label: '剩余电流', unit: 'mA', digits: 0 },
    temp_c: { label: '温度', unit: '°C', digits: 1 },
    current_a: { label: '电流', unit: 'A', digits: 1 },
    voltage_v: { label: '电压', unit: 'V', digits: 0 },
  };
  // The quantity an alarm's value and peak are measured in.
  const ALARM_QUANTITY = {
    gas_leak: 'lel',
    co: 'co_ppm',
    residual_current: 'residual_ma',
    overtemperature: 'temp_c',
    overcurrent: 'current_a',
  };

  const typeLabel = (type) => ALARM_TYPES[type] || type;
  const severityLabel = (sev) => (SEVERITIES[sev] ? SEVERITIES[sev].label : sev);

  // An alarm's state in words, with the class that colours it.
  function stateLabel(alarm) {
    if (alarm.state === 'closed') return { text: '已关闭', cls: 'state-cleared' };
    if (alarm.state === 'cleared') return { text: '已恢复', cls: 'state-cleared' };
    if (alarm.acked) return { text: '已确认', cls: 'state-acked' };
    return { text: '未处理', cls: 'state-unacked' };
  }

  // How a closed alarm was closed: who, the disposition, the note (those given).
  function closingWords(alarm) {
    return [
      alarm.closed_by ? `关闭人 ${alarm.closed_by}` : '',
      alarm.disposition ? DISPOSITIONS[alarm.disposition] || alarm.disposition : '',
      alarm.note || '',
    ].filter(Boolean);
  }

  // ------------------------------------------------------------------ DOM
  const $ = (id) => document.getElementById(id);

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };

  const severityBadge = (sev) => el('span', `badge sev-${sev}`, severityLabel(sev));

  // Where an alarm is: its location (or that none was given) over its device id.
  const whereNodes = (alarm) => [
    el('div', 'where-location', alarm.location || '（未填写位置）'),
    el('span', 'sub mono', alarm.device),
  ];

  // Keep `parent`'s children one per item, in the order of `items`: `nodes` (key -> node)
  // keeps them between calls, `create(key)` makes a missing one, `fill(node, item)` updates
  // it in place. A node is moved only when it is out of place: moving a row would take the
  // keyboard focus away from its buttons.
  function syncChildren(parent, nodes, items, keyOf, create, fill) {
    const wanted = new Set(items.map(keyOf));
    for (const [key, node] of nodes) {
      if (!wanted.has(key)) {
        node.remove();
        nodes.delete(key);
      }
    }
    items.forEach((item, i) => {
      const key = keyOf(item);
      let node = nodes.get(key);
      if (!node) {
        node = create(key);
        nodes.set(key, node);
      }
      fill(node, item);
      if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
    });
  }

  // ------------------------------------------------------------------ formatting
  const parseTime = (iso) => (iso ? Date.parse(iso) : NaN);
  const pad2 = (n) => String(n).padStart(2, '0');

  function quantityInfo(name) {
    if (QUANTITIES[name]) return QUANTITIES[name];
    const m = /^temp_c_(\d+)$/.exec(name);
    if (m) return { label: `温度${m[1]}`, unit: '°C', digits: 1 };
    return { label: name, unit: '', digits: 2 };
  }

  function fmtQuantity(name, value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
    const q = quantityInfo(name);
    const n = value.toFixed(q.digits);
    return q.unit ? `${n} ${q.unit}` : n;
  }

  // An alarm's value (or peak) in the quantity its type measures; null for types without one.
  function alarmValue(alarm, value) {
    const quantity = ALARM_QUANTITY[alarm.type];
    if (!quantity || typeof value !== 'number') return null;
    return fmtQuantity(quantity, value);
  }

  function fmtDuration(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    if (d) return `${d}天${h}小时`;
    if (h) return `${h}小时${pad2(m)}分`;
    if (m) return `${m}分${pad2(sec)}秒`;
    return `${sec}秒`;
  }

  function fmtAgo(iso, nowMs) {
    const t = parseTime(iso);
    if (Number.isNaN(t)) return '从未';
    const s = Math.max(0, Math.round((nowMs - t) / 1000));
    if (s < 60) return `${s}秒前`;
    if (s < 3600) return `${Math.floor(s / 60)}分钟前`;
    if (s < 86400) return `${Math.floor(s / 3600)}小时前`;
    return `${Math.floor(s / 86400)}天前`;
  }

  // The gateway's own wall-clock time (its zone), as written in the ISO string.
  function fmtWallClock(iso) {
    if (!iso) return '';
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(iso);
    return m ? `${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}` : iso;
  }

  // The gateway writes every time with its zone's offset: the offset in minutes, or null
  // when the string carries none. The pages' clocks show that zone, so that they agree with
  // the alarm times even on a browser set to another zone.
  function zoneOffsetOf(iso) {
    if (typeof iso !== 'string') return null;
    const m = /([+-])(\d{2}):(\d{2})$/.exec(iso);
    if (m) return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
    return iso.endsWith('Z') ? 0 : null;
  }

  // HH:MM:SS at `nowMs` in the gateway's zone (the browser's while that is not known).
  function fmtClock(nowMs, zoneOffsetMin) {
    if (zoneOffsetMin === null) {
      const t = new Date();
      return `${pad2(t.getHours())}:${pad2(t.getMinutes())}:${pad2(t.getSeconds())}`;
    }
    const t = new Date(nowMs + zoneOffsetMin * 60000);
    return `${pad2(t.getUTCHours())}:${pad2(t.getUTCMinutes())}:${pad2(t.getUTCSeconds())}`;
  }

  // The hazard ledger's words (gateway.hazards), one list for the console and the bureau
  // page: a step on a hazard's timeline, a hazard's status, a notice's state.
  const HAZARD_ACTIONS = {
    found: '发现登记',
    start: '开始整改',
    rectified: '整改完成，申请核查',
    verified: '现场核查通过，销号',
    verification_failed: '现场核查不通过，退回整改',
    edited: '修改',
  };
  const HAZARD_STATUS = {
    open: '待整改',
    rectifying: '整改中',
    awaiting_verification: '待核查',
    closed: '已销号',
  };
  const NOTICE_STATES = { issued: '待签收', received: '已签收', closed: '已销账' };

  return Object.freeze({
    HAZARD_ACTIONS,
    HAZARD_STATUS,
    NOTICE_STATES,
    ALARM_TYPES,
    SEVERITIES,
    DEVICE_TYPES,
    DEVICE_STATUS,
    DISPOSITIONS,
    QUANTITIES,
    ALARM_QUANTITY,
    typeLabel,
    severityLabel,
    stateLabel,
    closingWords,
    $,
    el,
    severityBadge,
    whereNodes,
    syncChildren,
    parseTime,
    pad2,
    quantityInfo,
    fmtQuantity,
    alarmValue,
    fmtDuration,
    fmtAgo,
    fmtWallClock,
    zoneOffsetOf,
    fmtClock,
  });
})();
