/* Bureau page: the county's figures and the table of sites. Owns the summary line and the
 * page title, the sorting (the same orders as the API, applied at once on a header click),
 * the kind filter, and the rows (kept and updated in place) with each site's status, edge
 * link, devices, open alarms, longest-waiting alarm, last contact and online rate. A click or
 * Enter on a row opens its detail (detail.js).
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { DEVICE_STATUS, $, el, severityBadge, syncChildren, parseTime, fmtDuration, fmtWallClock, typeLabel, severityLabel } =
    window.SafetyUi;
  const { now, ago } = window.SafetyClock;
  const B = window.SafetyBureau;
  const { SEVERITY_ORDER, DEVICE_STATUS_ORDER, SITE_STATUS, EDGE_STATES, S, fmtRate, rateClass, countChip } = B;
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
  const KINDS = ['elderly_care', 'child_welfare', 'relief_station', 'funeral', 'marriage_registry', 'other'];
  const collator = new Intl.Collator('zh-CN');

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

  // ------------------------------------------------------------------ the summary
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

  // ------------------------------------------------------------------ the table
  function renderRows() {
    const sites = S.overview ? sortSites(S.overview.sites, S.sort, S.reverse) : [];
    syncChildren($('site-rows'), S.rows, sites, (s) => s.id, createRow, fillRow);
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
    head.append(severityBadge(a.severity), ' ', el('span', 'oldest-type', typeLabel(a.type)));
    const age = el('div', 'age', `已等待 ${fmtDuration(now() - parseTime(a.raised_at))}`);
    c.oldest.replaceChildren(head, age, el('span', 'sub', `${a.location || ''} ${a.device}`.trim()));
    c.oldest.title = `发生于 ${fmtWallClock(a.raised_at)}`;
  }

  function fillContact(tr) {
    const c = tr._cells;
    const iso = tr._lastContact;
    c.contact.replaceChildren(el('span', iso ? '' : 'none', ago(iso)), el('span', 'sub', iso ? fmtWallClock(iso).slice(6) : ''));
    c.contact.title = iso ? `最后一次收到设备消息：${fmtWallClock(iso)}` : '启动以来未收到任何设备消息';
  }

  function renderSortHeaders() {
    for (const th of document.querySelectorAll('table.sites th[data-sort]')) {
      const active = th.dataset.sort === S.sort;
      th.setAttribute('aria-sort', active ? (S.reverse ? 'descending' : 'ascending') : 'none');
    }
  }

  // Once a second: waiting times, "last contact".
  function tickSites() {
    for (const tr of S.rows.values()) {
      fillOldest(tr);
      fillContact(tr);
    }
  }

  // The sort headers, the rows (opening a site's detail) and the kind filter.
  function bindSites() {
    for (const th of document.querySelectorAll('table.sites th[data-sort]')) {
      th.querySelector('button').addEventListener('click', () => {
        const key = th.dataset.sort;
        if (S.sort === key) S.reverse = !S.reverse;
        else {
          S.sort = key;
          S.reverse = false;
        }
        B.render(); // at once, from what the page has; the API agrees at the next refresh
        B.scheduleRefresh();
      });
    }
    const tbody = $('site-rows');
    tbody.addEventListener('click', (event) => {
      const tr = event.target.closest('tr[data-site]');
      if (tr) B.openDetail(tr.dataset.site, tr);
    });
    tbody.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      const tr = event.target.closest('tr[data-site]');
      if (!tr) return;
      event.preventDefault();
      B.openDetail(tr.dataset.site, tr);
    });
    $('kind-filter').addEventListener('change', (event) => {
      S.kind = event.target.value;
      B.scheduleRefresh();
    });
  }

  return { renderSummary, renderRows, renderSortHeaders, tickSites, bindSites };
})());
