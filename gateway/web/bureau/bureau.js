/* County bureau overview of the safety gateway: every site at a glance.
 *
 * Plain browser JavaScript like the duty console (no framework, no build step; every asset
 * comes from the gateway). The figures come from GET /api/overview, polled every 10 s; the
 * live feed (WS /api/live) only says WHEN to ask again, so that an alarm shows within a
 * second instead of at the next poll. Clicking a site loads GET /api/overview/sites/{id}.
 * A `?token=` in the page address is passed on to the API and the live feed. All text from
 * the gateway is written with textContent.
 */
'use strict';

(() => {
  // ------------------------------------------------------------------ labels (as the console)
  const {
    DEVICE_TYPES,
    DEVICE_STATUS,
    DISPOSITIONS,
    ALARM_QUANTITY,
    el,
    parseTime,
    quantityInfo,
    fmtQuantity,
    fmtDuration,
    fmtWallClock,
    typeLabel,
    severityLabel,
  } = window.SafetyUi; // common.js: labels and formatting shared with the console
  const { token, api } = window.SafetyLive; // live.js: the API and the live feed, as the console's
  const SEVERITY_ORDER = ['critical', 'major', 'minor', 'warning'];
  const DEVICE_STATUS_ORDER = ['online', 'offline', 'fault', 'unknown'];
  const SITE_STATUS = {
    alarm: { label: '报警', rank: 0 },
    warning: { label: '注意', rank: 1 },
    ok: { label: '正常', rank: 2 },
  };
  const STATUS_REASONS = {
    critical_open: '有紧急报警',
    major_open: '有重要报警',
    minor_open: '有一般报警',
    warning_open: '有预警',
    devices_offline: '有设备离线',
    devices_fault: '有设备故障',
    nothing_open: '无未关闭报警',
    edge_gateway_offline: '边缘网关离线：现场保护中断',
    edge_uplink_down: '上行链路中断：数据未更新',
  };
  // The edge link of a site served by an edge gateway (overview `edge.state`).
  const EDGE_STATES = {
    online: { label: '边缘网关在线', cls: 'edge-online' },
    gateway_offline: { label: '边缘网关离线', cls: 'edge-down' },
    uplink_down: { label: '上行链路中断', cls: 'edge-down' },
    unknown: { label: '边缘网关状态未知', cls: 'edge-unknown' },
  };
  const KINDS = ['elderly_care', 'child_welfare', 'relief_station', 'funeral', 'marriage_registry', 'other'];
  const CONTACT_ROLES = {
    legal_representative: '法定代表人',
    safety_manager: '安全管理员',
    duty_officer: '值班人员',
    bureau_duty: '局值班',
    other: '联系人',
  };
  const POLL_MS = 10000;

  // ------------------------------------------------------------------ state
  const collator = new Intl.Collator('zh-CN');
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
    skewMs: 0, // gateway clock minus browser clock
    zoneOffsetMin: null,
  };

  const $ = (id) => document.getElementById(id);
  const now = () => Date.now() + S.skewMs;

  // ------------------------------------------------------------------ formatting
  const fmtAgo = (iso) => window.SafetyUi.fmtAgo(iso, now());
  const fmtClock = () => window.SafetyUi.fmtClock(now(), S.zoneOffsetMin);

  // The clock on the page shows the gateway's zone, learnt from the times it writes.
  function learnZone(iso) {
    const offset = window.SafetyUi.zoneOffsetOf(iso);
    if (offset === null) return;
    S.zoneOffsetMin = offset;
    $('clock').textContent = fmtClock();
  }

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

  function alarmStateLabel(a) {
    if (a.state === 'closed') return { text: '已关闭', cls: 'state-cleared' };
    if (a.state === 'cleared') return { text: a.acked ? '已恢复' : '已恢复·未确认', cls: 'state-cleared' };
    if (a.acked) return { text: '已确认', cls: 'state-acked' };
    return { text: '未处理', cls: 'state-unacked' };
  }

  // ------------------------------------------------------------------ sorting (as the API)
  const SORTS = {
    severity(a, b) {
      const ra = SITE_STATUS[a.status] ? SITE_STATUS[a.status].rank : 9;
      const rb = SITE_STATUS[b.status] ? SITE_STATUS[b.status].rank : 9;
      if (ra !== rb) return ra - rb;
      for (const sev of SEVERITY_ORDER) {
        if (a.open_alarms[sev] !== b.open_alarms[sev]) return b.open_alarms[sev] - a.open_alarms[sev];
      }
      const da = a.devices.offline + a.devices.fault;
      const db = b.devices.offline + b.devices.fault;
      if (da !== db) return db - da;
      if (a.unacknowledged !== b.unacknowledged) return b.unacknowledged - a.unacknowledged;
      return SORTS.name(a, b);
    },
    name(a, b) {
      return collator.compare(a.name, b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    },
    kind(a, b) {
      return KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || SORTS.name(a, b);
    },
    // lowest first; sites without a figure stay last either way (see sortSites)
    online_rate(a, b) {
      return a.online_rate_24h - b.online_rate_24h || SORTS.name(a, b);
    },
    // longest silence first: never heard from counts as the longest
    last_contact(a, b) {
      const ta = a.last_contact ? parseTime(a.last_contact) : -Infinity;
      const tb = b.last_contact ? parseTime(b.last_contact) : -Infinity;
      if (ta !== tb) return ta < tb ? -1 : 1;
      return SORTS.name(a, b);
    },
  };

  function sortSites(sites, key, reverse) {
    const compare = SORTS[key] || SORTS.severity;
    const sign = reverse ? -1 : 1;
    if (key === 'online_rate') {
      const rated = sites.filter((s) => typeof s.online_rate_24h === 'number');
      const unrated = sites.filter((s) => typeof s.online_rate_24h !== 'number').sort(SORTS.name);
      return [...rated.sort((a, b) => sign * compare(a, b)), ...unrated];
    }
    return [...sites].sort((a, b) => sign * compare(a, b));
  }

  // ------------------------------------------------------------------ HTTP
  function failureText(res) {
    if (res.status === 0) return `无法连接网关（${(res.body && res.body.error) || '网络错误'}）`;
    const body = res.body || {};
    return `网关返回 ${res.status}${body.error ? '：' + body.error : ''}`;
  }

  // Ask for the overview now (or within `delayMs`, several requests becoming one).
  // `cause` says what asked for the refresh (poll, alarm, device, ...): requests merged into
  // one refresh are all credited, so the page can tell a pushed change from a polled one.
  function scheduleRefresh(delayMs = 0, cause = 'other') {
    S.pendingCauses.add(cause);
    if (S.refreshTimer !== null) {
      if (delayMs > 0) return;
      clearTimeout(S.refreshTimer);
    }
    S.refreshTimer = setTimeout(() => {
      S.refreshTimer = null;
      const causes = [...S.pendingCauses];
      S.pendingCauses.clear();
      refresh(causes);
    }, delayMs);
  }

  async function refresh(causes = ['other']) {
    const seq = ++S.refreshSeq;
    publishState();
    const query = new URLSearchParams({ sort: S.sort, reverse: String(S.reverse) });
    if (S.kind) query.set('kind', S.kind);
    const res = await api(`/api/overview?${query}`);
    // Answers may overtake each other: an older one never replaces a newer one.
    if (seq < S.appliedSeq) return;
    S.appliedSeq = seq;
    S.authFailed = res.status === 401 || res.status === 403;
    if (!res.ok || !res.body || !Array.isArray(res.body.sites)) {
      S.pollOk = false;
      S.lastError = failureText(res);
      render();
      return;
    }
    const generated = parseTime(res.body.generated_at);
    if (!Number.isNaN(generated)) {
      const skew = generated - Date.now();
      S.skewMs = Math.abs(skew) > 2000 ? skew : 0;
    }
    learnZone(res.body.generated_at);
    S.overview = res.body;
    S.pollOk = true;
    S.lastError = '';
    S.refreshes += 1;
    for (const c of causes) S.refreshesBy[c] = (S.refreshesBy[c] || 0) + 1;
    render();
    if (S.detail.siteId) loadDetail();
  }

  // ------------------------------------------------------------------ live feed
  // Live = the feed's snapshot has arrived on its current connection.
  const feed = new window.SafetyLive.LiveFeed({
    onMessage: onLive,
    onClose: () => render(),
    // 0.5 s, 1 s, 2 s, ... then every 30 s: the 10 s poll goes on meanwhile.
    delayMs: (attempt) => window.SafetyLive.backoffMs(attempt, 30000, 6),
  });

  function onLive(msg) {
    if (msg.kind === 'snapshot') {
      S.deviceStatus.clear();
      for (const d of msg.devices || []) S.deviceStatus.set(`${d.site}/${d.id}`, d.status);
      scheduleRefresh(0, 'snapshot'); // whatever changed while the feed was down
      render();
    } else if (msg.kind === 'alarm') {
      // Within a moment: a site may have just turned red (a burst becomes one request).
      scheduleRefresh(150, 'alarm');
    } else if (msg.kind === 'edge') {
      // An edge gateway or its uplink came or went: its site may have turned red.
      scheduleRefresh(0, 'edge');
    } else if (msg.kind === 'device' && msg.device) {
      // Values change all the time (the poll shows them); a change of status is worth asking.
      const key = `${msg.device.site}/${msg.device.id}`;
      if (S.deviceStatus.get(key) !== msg.device.status) {
        S.deviceStatus.set(key, msg.device.status);
        scheduleRefresh(300, 'device');
      }
    }
  }

  // ------------------------------------------------------------------ rendering: the table
  function render() {
    renderSummary();
    renderRows();
    renderConnection();
    renderSortHeaders();
    publishState();
  }

  // For people debugging the page, and for the browser tests.
  function publishState() {
    window.__bureauState = {
      live: feed.live,
      pollOk: S.pollOk,
      authFailed: S.authFailed,
      refreshes: S.refreshes,
      refreshesBy: { ...S.refreshesBy },
      requested: S.refreshSeq,
      answered: S.appliedSeq,
      sites: S.overview ? S.overview.sites.length : 0,
      sort: S.sort,
      reverse: S.reverse,
      kind: S.kind,
      detail: S.detail.siteId,
      detailLoads: S.detail.loads,
      order: S.overview ? [...$('site-rows').children].map((tr) => tr.dataset.site) : [],
    };
  }

  function renderSummary() {
    const o = S.overview;
    if (!o) return;
    const t = o.totals;
    $('county').textContent = o.county || '民政局';
    $('gateway-id').textContent = o.gateway ? `网关 ${o.gateway}` : '';
    $('scope').textContent = o.kind ? `${$('kind-filter').selectedOptions[0].textContent}` : '全部场所';
    $('sum-sites').textContent = String(t.sites);
    $('sum-alarm-sites').textContent = String(t.by_status.alarm);
    $('sum-open').textContent = String(t.open_total);
    $('sum-critical').textContent = String(t.open_alarms.critical);
    $('sum-unacked').textContent = String(t.unacknowledged);
    $('sum-rate').textContent = fmtRate(t.online_rate_24h);
    $('site-count').textContent = String(o.sites.length);
    $('updated').textContent = `更新于 ${fmtWallClock(o.generated_at).slice(6)}`;
    const alarmSites = t.by_status.alarm;
    document.title = alarmSites > 0 ? `【报警 ${alarmSites}】民政局安全监管总览` : '民政局安全监管总览';
  }

  function renderRows() {
    const tbody = $('site-rows');
    const sites = S.overview ? sortSites(S.overview.sites, S.sort, S.reverse) : [];
    const wanted = new Set(sites.map((s) => s.id));
    for (const [id, tr] of S.rows) {
      if (!wanted.has(id)) {
        tr.remove();
        S.rows.delete(id);
      }
    }
    sites.forEach((site, i) => {
      let tr = S.rows.get(site.id);
      if (!tr) {
        tr = createRow(site.id);
        S.rows.set(site.id, tr);
      }
      fillRow(tr, site);
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    $('no-sites').hidden = !S.overview || sites.length > 0;
  }

  function createRow(id) {
    const tr = el('tr', 'site');
    tr.dataset.site = id;
    tr.tabIndex = 0;
    const cells = {};
    for (const name of ['status', 'name', 'kind', 'devices', 'alarms', 'oldest', 'contact', 'rate']) {
      cells[name] = el('td', `c-${name}`);
      tr.appendChild(cells[name]);
    }
    tr._cells = cells;
    return tr;
  }

  function countChip(cls, label, n) {
    const chip = el('span', `${cls}${n ? '' : ' zero'}`, `${label} ${n}`);
    chip.dataset.count = String(n);
    return chip;
  }

  function fillRow(tr, s) {
    const c = tr._cells;
    tr.className = `site status-${s.status}${S.detail.siteId === s.id ? ' selected' : ''}`;
    tr.dataset.status = s.status;
    tr.title = `${s.name}：点击查看设备和报警`;

    const status = SITE_STATUS[s.status] || { label: s.status };
    c.status.replaceChildren(
      el('span', `site-status status-${s.status}`, status.label),
      el('span', 'sub', STATUS_REASONS[s.status_reason] || ''),
    );

    const name = el('div', 'site-name', s.name);
    if (s.served_by === 'edge') {
      const edge = EDGE_STATES[s.edge && s.edge.state] || EDGE_STATES.unknown;
      const badge = el('span', `edge-badge ${edge.cls}`, edge.label);
      badge.dataset.edge = (s.edge && s.edge.state) || 'unknown';
      badge.title = '该场所由现场边缘网关值守，本页仅观察' + (s.edge && s.edge.since ? `；状态自 ${s.edge.since}` : '');
      name.appendChild(badge);
    }
    c.name.replaceChildren(name, el('span', 'sub mono', s.id));
    c.kind.textContent = s.kind_label || s.kind;

    const devices = el('div', 'counts');
    for (const k of DEVICE_STATUS_ORDER) {
      const chip = countChip(`status-badge status-${k}`, DEVICE_STATUS[k], s.devices[k] || 0);
      chip.dataset.status = k;
      devices.appendChild(chip);
    }
    c.devices.replaceChildren(devices, el('span', 'sub', `共 ${s.device_total} 台`));

    if (s.open_total) {
      const alarms = el('div', 'counts');
      for (const sev of SEVERITY_ORDER) {
        const n = s.open_alarms[sev] || 0;
        if (!n) continue;
        const chip = countChip(`badge sev-${sev}`, severityLabel(sev), n);
        chip.dataset.severity = sev;
        alarms.appendChild(chip);
      }
      const unacked = el('span', `sub${s.unacknowledged ? ' state-unacked' : ''}`, `未确认 ${s.unacknowledged}`);
      unacked.dataset.unacked = String(s.unacknowledged);
      c.alarms.replaceChildren(alarms, unacked);
    } else {
      c.alarms.replaceChildren(el('span', 'none', '无'));
    }

    tr._oldest = s.oldest_unacknowledged;
    tr._lastContact = s.last_contact;
    fillOldest(tr);
    fillContact(tr);

    const rate = s.online_rate_24h;
    const rateCell = [el('span', `rate ${rateClass(rate)}`, fmtRate(rate))];
    if (typeof rate === 'number') {
      const bar = el('div', `rate-bar ${rateClass(rate)}`);
      const fill = el('span');
      fill.style.width = `${Math.max(0, Math.min(100, rate * 100))}%`;
      bar.appendChild(fill);
      rateCell.push(bar);
      c.rate.title = '近24小时设备在线时间占比';
    } else {
      c.rate.title = '没有已知状态的设备';
    }
    c.rate.replaceChildren(...rateCell);
  }

  function fillOldest(tr) {
    const c = tr._cells;
    const a = tr._oldest;
    if (!a) {
      c.oldest.replaceChildren(el('span', 'none', '—'));
      c.oldest.title = '';
      return;
    }
    const head = el('div');
    head.append(el('span', `badge sev-${a.severity}`, severityLabel(a.severity)), ' ', el('span', 'oldest-type', typeLabel(a.type)));
    const age = el('div', 'age', `已等待 ${fmtDuration(now() - parseTime(a.raised_at))}`);
    c.oldest.replaceChildren(head, age, el('span', 'sub', `${a.location || ''} ${a.device}`.trim()));
    c.oldest.title = `发生于 ${fmtWallClock(a.raised_at)}`;
  }

  function fillContact(tr) {
    const c = tr._cells;
    const iso = tr._lastContact;
    c.contact.replaceChildren(el('span', iso ? '' : 'none', fmtAgo(iso)), el('span', 'sub', iso ? fmtWallClock(iso).slice(6) : ''));
    c.contact.title = iso ? `最后一次收到设备消息：${fmtWallClock(iso)}` : '启动以来未收到任何设备消息';
  }

  function renderSortHeaders() {
    for (const th of document.querySelectorAll('table.sites th[data-sort]')) {
      const active = th.dataset.sort === S.sort;
      th.setAttribute('aria-sort', active ? (S.reverse ? 'descending' : 'ascending') : 'none');
    }
  }

  function renderConnection() {
    const conn = $('conn');
    const text = $('conn-text');
    const banner = $('offline-banner');
    if (S.pollOk === false) {
      conn.className = 'conn conn-down';
      text.textContent = '连接中断';
      banner.hidden = false;
      $('offline-title').textContent = S.authFailed ? '访问被拒绝' : '无法获取最新数据';
      $('offline-detail').textContent = S.authFailed
        ? token
          ? '（网关拒绝了访问令牌，请检查网址中的 ?token=）'
          : '（网关需要访问令牌：请在网址后加上 ?token=…）'
        : `（${S.lastError}，每 10 秒重试）`;
      $('main').classList.toggle('stale', !!S.overview);
      return;
    }
    banner.hidden = true;
    $('main').classList.remove('stale');
    if (S.pollOk && feed.live) {
      conn.className = 'conn conn-connected';
      text.textContent = '已连接 · 实时';
    } else if (S.pollOk) {
      conn.className = 'conn conn-connecting';
      text.textContent = '已连接 · 每10秒刷新';
    } else {
      conn.className = 'conn conn-connecting';
      text.textContent = '正在连接网关…';
    }
  }

  // ------------------------------------------------------------------ drill-down
  function openDetail(siteId, fromRow) {
    const d = S.detail;
    if (d.siteId !== siteId) {
      d.siteId = siteId;
      d.data = null;
      $('detail-title').textContent = siteOf(siteId) ? siteOf(siteId).name : siteId;
      $('detail-meta').textContent = '正在加载…';
    }
    d.returnFocus = fromRow || null;
    $('detail').hidden = false;
    $('detail-close').focus();
    loadDetail();
    render();
  }

  function closeDetail() {
    const d = S.detail;
    const back = d.returnFocus;
    d.siteId = null;
    d.data = null;
    d.seq += 1;
    $('detail').hidden = true;
    render();
    if (back && back.isConnected) back.focus();
  }

  const siteOf = (id) => (S.overview ? S.overview.sites.find((s) => s.id === id) : undefined);

  async function loadDetail() {
    const d = S.detail;
    const siteId = d.siteId;
    if (!siteId) return;
    const seq = ++d.seq;
    const res = await api(`/api/overview/sites/${encodeURIComponent(siteId)}`);
    if (d.siteId !== siteId || seq < d.applied) return;
    d.applied = seq;
    if (!res.ok || !res.body || !res.body.site) {
      $('detail-meta').textContent = res.status === 404 ? '该场所不存在或无权查看' : `加载失败：${failureText(res)}`;
      return;
    }
    d.data = res.body;
    d.loads += 1;
    renderDetail();
    render();
  }

  function figure(label, valueNode) {
    const f = el('div', 'figure');
    f.append(el('span', 'figure-label', label), valueNode);
    return f;
  }

  function renderDetail() {
    const data = S.detail.data;
    if (!data) return;
    const s = data.site;
    $('detail-title').textContent = s.name;
    const edge = s.served_by === 'edge' ? EDGE_STATES[s.edge && s.edge.state] || EDGE_STATES.unknown : null;
    const meta = [s.kind_label, edge ? `由现场边缘网关值守（本页仅观察）· ${edge.label}` : '由本网关直接监控'];
    if (s.address) meta.push(s.address);
    meta.push(`编号 ${s.id}`);
    $('detail-meta').textContent = meta.join(' · ');

    const status = SITE_STATUS[s.status] || { label: s.status };
    const devices = el('div', 'counts');
    for (const k of DEVICE_STATUS_ORDER) devices.appendChild(countChip(`status-badge status-${k}`, DEVICE_STATUS[k], s.devices[k] || 0));
    const alarms = el('div', 'counts');
    for (const sev of SEVERITY_ORDER) alarms.appendChild(countChip(`badge sev-${sev}`, severityLabel(sev), s.open_alarms[sev] || 0));
    $('detail-figures').replaceChildren(
      figure('状态', el('span', `site-status status-${s.status}`, status.label)),
      figure('设备', devices),
      figure('未关闭报警', alarms),
      figure('未确认', el('b', s.unacknowledged ? 'state-unacked' : '', String(s.unacknowledged))),
      figure('最后通信', el('span', '', s.last_contact ? `${fmtAgo(s.last_contact)}（${fmtWallClock(s.last_contact)}）` : '从未')),
      figure('24小时在线率', el('span', `rate ${rateClass(s.online_rate_24h)}`, fmtRate(s.online_rate_24h))),
    );

    const contacts = (s.contacts || []).map((c) => {
      const item = el('span', 'contact');
      item.append(el('span', 'muted', `${CONTACT_ROLES[c.role] || c.role} `), el('b', '', c.name));
      if (c.phone) {
        const tel = el('a', 'mono', c.phone);
        tel.href = `tel:${c.phone}`;
        item.append(' ', tel);
      }
      return item;
    });
    $('detail-contacts').replaceChildren(...contacts);
    $('detail-contacts').hidden = contacts.length === 0;

    renderDetailAlarms(data);
    renderDetailDevices(data);
    renderDetailRecent(data);
  }

  function renderDetailAlarms(data) {
    const rows = data.open_alarms.map((a) => {
      const tr = el('tr', `alarm sev-${a.severity}${!a.acked && a.state === 'active' ? ' needs-ack' : ''}`);
      tr.dataset.alarmId = a.id;
      const st = alarmStateLabel(a);
      const value = ALARM_QUANTITY[a.type] && typeof a.value === 'number' ? fmtQuantity(ALARM_QUANTITY[a.type], a.value) : '';
      const type = el('td');
      type.append(el('span', 'type-label', typeLabel(a.type)));
      if (value) type.append(el('span', 'sub', `当前 ${value}`));
      const where = el('td');
      where.append(el('div', 'where-location', a.location || '（未填写位置）'), el('span', 'sub mono', a.device));
      const duration = el('td', 'duration-cell');
      duration.dataset.raisedAt = a.raised_at;
      duration.title = `发生于 ${fmtWallClock(a.raised_at)}`;
      duration.append(el('span', 'duration', fmtDuration(now() - parseTime(a.raised_at))));
      const sev = el('td');
      sev.append(el('span', `badge sev-${a.severity}`, severityLabel(a.severity)));
      const state = el('td');
      state.append(el('span', st.cls, st.text));
      if (a.acked_by) state.append(el('span', 'sub', `确认人：${a.acked_by}`));
      tr.append(sev, type, state, where, duration);
      return tr;
    });
    $('detail-alarm-rows').replaceChildren(...rows);
    $('detail-alarm-count').textContent = String(rows.length);
    $('detail-no-alarms').hidden = rows.length > 0;
  }

  function renderDetailDevices(data) {
    const alarmsByDevice = new Map();
    for (const a of data.open_alarms) {
      if (!alarmsByDevice.has(a.device)) alarmsByDevice.set(a.device, []);
      alarmsByDevice.get(a.device).push(a);
    }
    const tiles = data.devices.map((d) => {
      const alarms = alarmsByDevice.get(d.id) || [];
      const tile = el('article', `tile status-${d.status}${alarms.length ? ' has-alarm' : ''}`);
      tile.dataset.device = `${d.site}/${d.id}`;
      tile.dataset.status = d.status;
      const head = el('div', 'tile-head');
      head.append(el('span', 'tile-location', d.location || d.id), el('span', `status-badge status-${d.status}`, DEVICE_STATUS[d.status] || d.status));
      const values = el('div', 'tile-values');
      for (const [name, value] of Object.entries(d.values || {})) {
        const row = el('div', 'tile-value');
        row.dataset.quantity = name;
        if (name === 'open') {
          row.append(el('span', '', '阀门'), el('b', value === 0 ? 'valve-closed' : 'valve-open', value === 0 ? '已关闭' : '开启'));
        } else {
          row.append(el('span', '', quantityInfo(name).label), el('b', '', fmtQuantity(name, value)));
        }
        values.appendChild(row);
      }
      if (!values.children.length) values.appendChild(el('div', 'muted', '暂无数据'));
      tile.append(head, el('div', 'tile-type', `${DEVICE_TYPES[d.type] || d.type} · ${d.name || d.id}`), values);
      if (alarms.length) tile.append(el('div', 'tile-alarm', `报警：${alarms.map((a) => typeLabel(a.type)).join('、')}`));
      const seen = el('div', 'tile-seen', `最后通信：${fmtAgo(d.last_seen)}`);
      seen.dataset.lastSeen = d.last_seen || '';
      tile.append(seen);
      return tile;
    });
    $('detail-devices').replaceChildren(...tiles);
    $('detail-device-count').textContent = String(tiles.length);
    $('detail-no-devices').hidden = tiles.length > 0;
  }

  function renderDetailRecent(data) {
    const items = data.recent_alarms.map((a) => {
      const parts = [
        fmtWallClock(a.raised_at),
        `${typeLabel(a.type)}（${severityLabel(a.severity)}）`,
        `${a.location || ''} ${a.device}`.trim(),
        alarmStateLabel(a).text,
      ];
      if (a.state === 'closed') {
        if (a.closed_by) parts.push(`关闭人 ${a.closed_by}`);
        if (a.disposition) parts.push(DISPOSITIONS[a.disposition] || a.disposition);
        if (a.note) parts.push(a.note);
      }
      const li = el('li', a.state === 'closed' ? '' : 'open', parts.join(' · '));
      li.dataset.alarmId = a.id;
      return li;
    });
    if (!items.length) items.push(el('li', '', '近24小时没有报警'));
    $('detail-recent').replaceChildren(...items);
    $('detail-recent-count').textContent = String(data.recent_alarms.length);
  }

  // Once a second: waiting times, "last contact", the clock.
  function tick() {
    $('clock').textContent = fmtClock();
    for (const tr of S.rows.values()) {
      fillOldest(tr);
      fillContact(tr);
    }
    for (const td of document.querySelectorAll('#detail-alarm-rows td.duration-cell')) {
      td.firstChild.textContent = fmtDuration(now() - parseTime(td.dataset.raisedAt));
    }
    for (const seen of document.querySelectorAll('#detail-devices .tile-seen')) {
      seen.textContent = `最后通信：${fmtAgo(seen.dataset.lastSeen)}`;
    }
  }

  // ------------------------------------------------------------------ start
  function start() {
    for (const th of document.querySelectorAll('table.sites th[data-sort]')) {
      th.querySelector('button').addEventListener('click', () => {
        const key = th.dataset.sort;
        if (S.sort === key) S.reverse = !S.reverse;
        else {
          S.sort = key;
          S.reverse = false;
        }
        render(); // at once, from what the page has; the API agrees at the next refresh
        scheduleRefresh();
      });
    }
    const tbody = $('site-rows');
    tbody.addEventListener('click', (event) => {
      const tr = event.target.closest('tr[data-site]');
      if (tr) openDetail(tr.dataset.site, tr);
    });
    tbody.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      const tr = event.target.closest('tr[data-site]');
      if (!tr) return;
      event.preventDefault();
      openDetail(tr.dataset.site, tr);
    });
    $('detail-close').addEventListener('click', closeDetail);
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && S.detail.siteId) closeDetail();
    });
    $('kind-filter').addEventListener('change', (event) => {
      S.kind = event.target.value;
      scheduleRefresh();
    });
    $('refresh-now').addEventListener('click', () => scheduleRefresh());

    render();
    tick();
    setInterval(tick, 1000);
    setInterval(() => scheduleRefresh(0, 'poll'), POLL_MS);
    refresh();
    feed.connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
