/* Bureau page: what the page knows, and the words and figures both its site table and its
 * detail panel show (a site's status and why, its edge link, its online rate, count chips).
 * Loaded first of the bureau's own scripts; defines `window.SafetyBureau`, the namespace the
 * bureau's other scripts add their functions to (each calls the others' through it, at call
 * time).
 */
'use strict';

window.SafetyBureau = (() => {
  const { el } = window.SafetyUi;
  const SEVERITY_ORDER = ['critical', 'major', 'minor', 'warning'];
  const DEVICE_STATUS_ORDER = ['online', 'offline', 'fault', 'unknown'];
  const SITE_STATUS = {
    alarm: { label: '报警', rank: 0 },
    warning: { label: '注意', rank: 1 },
    ok: { label: '正常', rank: 2 },
  };
  // The edge link of a site served by an edge gateway (overview `edge.state`).
  const EDGE_STATES = {
    online: { label: '边缘网关在线', cls: 'edge-online' },
    gateway_offline: { label: '边缘网关离线', cls: 'edge-down' },
    uplink_down: { label: '上行链路中断', cls: 'edge-down' },
    unknown: { label: '边缘网关状态未知', cls: 'edge-unknown' },
  };

  const S = {
    overview: null, // the last GET /api/overview answer
    sort: 'severity',
    reverse: false,
    kind: '',
    rows: new Map(), // site id -> <tr>
    detail: { siteId: null, data: null, loads: 0, seq: 0, applied: 0, returnFocus: null },
    refreshSeq: 0, // requests made
    appliedSeq: 0, // the newest request whose answer is shown
    refreshes: 0,
    refreshesBy: {}, // cause -> refreshes applied
    pendingCauses: new Set(),
    refreshTimer: null,
    pollOk: null, // null until the first answer
    lastError: '',
    authFailed: false,
    deviceStatus: new Map(), // "site/device" -> status, to notice changes on the live feed
  };

  const siteOf = (id) => (S.overview ? S.overview.sites.find((s) => s.id === id) : undefined);

  function fmtRate(rate) {
    if (typeof rate !== 'number' || !Number.isFinite(rate)) return '—';
    return `${(rate * 100).toFixed(2)}%`;
  }

  function rateClass(rate) {
    if (typeof rate !== 'number') return 'none';
    if (rate >= 0.99) return 'rate-good';
    if (rate >= 0.95) return 'rate-fair';
    return 'rate-poor';
  }

  function countChip(cls, label, n) {
    const chip = el('span', `${cls}${n ? '' : ' zero'}`, `${label} ${n}`);
    chip.dataset.count = String(n);
    return chip;
  }

  return {
    SEVERITY_ORDER,
    DEVICE_STATUS_ORDER,
    SITE_STATUS,
    EDGE_STATES,
    S,
    siteOf,
    fmtRate,
    rateClass,
    countChip,
  };
})();
