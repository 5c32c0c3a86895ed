/* Bureau page: one site's detail panel (GET /api/overview/sites/{id}), opened from its row.
 * Owns opening and closing it (focus goes back to the row; Escape closes), loading it again
 * after every refresh of the overview (an older answer never replaces a newer one), and
 * drawing it: the site's figures and contacts, its open alarms, its device tiles (their words
 * shared with the console, shared/tiles.js) and its alarms of the last 24 hours.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const {
    DEVICE_STATUS,
    $,
    el,
    severityBadge,
    whereNodes,
    parseTime,
    fmtDuration,
    fmtWallClock,
    typeLabel,
    severityLabel,
    stateLabel,
    closingWords,
    alarmValue,
  } = window.SafetyUi;
  const { tileClass, statusText, typeText, alarmText, seenText, valueRows } = window.SafetyTiles;
  const { api } = window.SafetyLive;
  const { now, ago } = window.SafetyClock;
  const B = window.SafetyBureau;
  const { SEVERITY_ORDER, DEVICE_STATUS_ORDER, SITE_STATUS, EDGE_STATES, S, siteOf, fmtRate, rateClass, countChip } = B;
  const CONTACT_ROLES = {
    legal_representative: '法定代表人',
    safety_manager: '安全管理员',
    duty_officer: '值班人员',
    bureau_duty: '局值班',
    other: '联系人',
  };

  // As the console's, but a cleared alarm nobody has acknowledged says so.
  function alarmStateLabel(a) {
    if (a.state === 'cleared' && !a.acked) return { text: '已恢复·未确认', cls: 'state-cleared' };
    return stateLabel(a);
  }

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
    B.render();
  }

  function closeDetail() {
    const d = S.detail;
    const back = d.returnFocus;
    d.siteId = null;
    d.data = null;
    d.seq += 1;
    $('detail').hidden = true;
    B.render();
    if (back && back.isConnected) back.focus();
  }

  async function loadDetail() {
    const d = S.detail;
    const siteId = d.siteId;
    if (!siteId) return;
    const seq = ++d.seq;
    const res = await api(`/api/overview/sites/${encodeURIComponent(siteId)}`);
    if (d.siteId !== siteId || seq < d.applied) return;
    d.applied = seq;
    if (!res.ok || !res.body || !res.body.site) {
      $('detail-meta').textContent = res.status === 404 ? '该场所不存在或无权查看' : `加载失败：${B.failureText(res)}`;
      return;
    }
    d.data = res.body;
    d.loads += 1;
    renderDetail();
    B.render();
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
      figure('最后通信', el('span', '', s.last_contact ? `${ago(s.last_contact)}（${fmtWallClock(s.last_contact)}）` : '从未')),
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
      const value = alarmValue(a, a.value);
      const type = el('td');
      type.append(el('span', 'type-label', typeLabel(a.type)));
      if (value) type.append(el('span', 'sub', `当前 ${value}`));
      const where = el('td');
      where.append(...whereNodes(a));
      const duration = el('td', 'duration-cell');
      duration.dataset.raisedAt = a.raised_at;
      duration.title = `发生于 ${fmtWallClock(a.raised_at)}`;
      duration.append(el('span', 'duration', fmtDuration(now() - parseTime(a.raised_at))));
      const sev = el('td');
      sev.append(severityBadge(a.severity));
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
      const tile = el('article', tileClass(d, alarms));
      tile.dataset.device = `${d.site}/${d.id}`;
      tile.dataset.status = d.status;
      const head = el('div', 'tile-head');
      head.append(el('span', 'tile-location', d.location || d.id), el('span', `status-badge status-${d.status}`, statusText(d)));
      const values = el('div', 'tile-values');
      values.append(...valueRows(d));
      tile.append(head, el('div', 'tile-type', typeText(d)), values);
      if (alarms.length) tile.append(el('div', 'tile-alarm', alarmText(alarms)));
      const seen = el('div', 'tile-seen', seenText(ago(d.last_seen)));
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
      if (a.state === 'closed') parts.push(...closingWords(a));
      const li = el('li', a.state === 'closed' ? '' : 'open', parts.join(' · '));
      li.dataset.alarmId = a.id;
      return li;
    });
    if (!items.length) items.push(el('li', '', '近24小时没有报警'));
    $('detail-recent').replaceChildren(...items);
    $('detail-recent-count').textContent = String(data.recent_alarms.length);
  }

  // Once a second: the open alarms' durations, the devices' "last contact".
  function tickDetail() {
    for (const td of document.querySelectorAll('#detail-alarm-rows td.duration-cell')) {
      td.firstChild.textContent = fmtDuration(now() - parseTime(td.dataset.raisedAt));
    }
    for (const seen of document.querySelectorAll('#detail-devices .tile-seen')) {
      seen.textContent = seenText(ago(seen.dataset.lastSeen));
    }
  }

  function bindDetail() {
    $('detail-close').addEventListener('click', closeDetail);
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && S.detail.siteId) closeDetail();
    });
  }

  return { openDetail, closeDetail, loadDetail, tickDetail, bindDetail };
})());
