/* Duty console: one device's commissioning page (`#device=<site>/<id>`, from a device tile),
 * for the integrator installing it and the duty room checking it: its live decoded values
 * (from the live feed, as the tile), the last raw payload it sent (MQTT; a Modbus device's
 * registers are not kept yet: the page says so), valves opened by hand on site, its alarm
 * thresholds, and a chart of its last 24 h per quantity from the gateway's own rings
 * (GET /api/devices/{id}/trend), the thresholds drawn as lines and the periods its alarms
 * were active shaded. The chart is uPlot, vendored under /static/shared/vendor/uplot (MIT).
 * The trend is read again every 30 s while the page is open.
 */
'use strict';

(() => {
  const { $, el, fmtWallClock, quantityInfo, fmtQuantity, typeLabel, severityLabel, zoneOffsetOf } = window.SafetyUi;
  const { api } = window.SafetyLive;
  const { typeText, statusText, valueRows } = window.SafetyTiles;
  const { ago } = window.SafetyClock;
  const C = window.SafetyConsole;
  const TREND_EVERY_MS = 30000;
  const LEVEL_COLORS = { warning: '#4da3ff', minor: '#f5d142', major: '#fa8c16', critical: '#ff4d4f', high: '#ff4d4f' };
  const BAND_COLOR = 'rgba(255, 77, 79, 0.18)';

  const V = { key: null, detail: null, trend: null, error: '', charts: [], timer: null, ticker: null, parts: null };

  function wanted() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const key = params.get('device') || '';
    const slash = key.indexOf('/');
    return slash > 0 ? { key, site: key.slice(0, slash), id: key.slice(slash + 1) } : null;
  }

  const path = (w, tail = '') => `/api/devices/${encodeURIComponent(w.id)}${tail}?site=${encodeURIComponent(w.site)}`;

  async function load() {
    const w = wanted();
    if (!w) {
      V.error = '未指定设备';
      render();
      return;
    }
    const [detail, trend] = await Promise.all([api(path(w)), api(`${path(w, '/trend')}&hours=24`)]);
    if (!V.parts || wanted()?.key !== w.key) return; // left, or another device meanwhile
    V.key = w.key;
    V.error = detail.ok ? '' : detail.status === 404 ? '设备不存在或无权查看' : `读取失败（${detail.status}）`;
    V.detail = detail.ok ? detail.body : null;
    V.trend = trend.ok ? trend.body : null;
    render();
  }

  async function reloadTrend() {
    const w = wanted();
    if (!w || !V.detail) return;
    const trend = await api(`${path(w, '/trend')}&hours=24`, { quietRefusal: true });
    if (trend.ok && V.parts && wanted()?.key === w.key) {
      V.trend = trend.body;
      drawCharts();
    }
  }

  function skeleton() {
    const root = $('view-device');
    const back = el('a', 'dv-back', '‹ 返回设备状态');
    back.href = '#view=alarms';
    const title = el('h2', 'dv-title');
    const error = el('p', 'hz-error');
    error.setAttribute('role', 'alert');
    const summary = el('section', 'panel dv-summary');
    const grid = el('div', 'dv-grid');
    const live = el('section', 'panel dv-live');
    const raw = el('section', 'panel dv-raw');
    const thresholds = el('section', 'panel dv-thresholds');
    grid.append(live, raw, thresholds);
    const charts = el('section', 'panel dv-charts');
    charts.id = 'dv-charts';
    root.replaceChildren(back, title, error, summary, grid, charts);
    V.parts = { title, error, summary, live, raw, thresholds, charts };
  }

  function render() {
    const p = V.parts;
    if (!p) return;
    p.error.textContent = V.error;
    p.error.hidden = !V.error;
    const d = V.detail;
    for (const part of [p.summary, p.live, p.raw, p.thresholds, p.charts]) part.hidden = !d;
    if (!d) {
      p.title.textContent = '设备调试';
      return;
    }
    p.title.textContent = `${C.siteName(d.site)} · ${d.location || d.id}`;
    renderSummary();
    renderLive();
    renderRaw();
    renderThresholds();
    drawCharts();
  }

  // What the live feed says now: the tile's device, else the page's copy.
  const current = () => C.S.devices.get(V.key) || V.detail;

  function renderSummary() {
    const d = current();
    const status = el('span', `status-badge status-${d.status}`, statusText(d));
    const rows = [
      ['设备', typeText(d)],
      ['编号', `${d.site}/${d.id}`],
      ['接入方式', d.transport === 'modbus' ? 'Modbus' : d.transport === 'channel' ? '通道' : 'MQTT'],
      ['最后通信', `${ago(d.last_seen)}${d.last_seen ? `（${fmtWallClock(d.last_seen)}）` : ''}`],
    ];
    if (d.shutoff_valve) rows.push(['联动切断阀', d.shutoff_valve]);
    const dl = el('dl', 'dv-fields');
    for (const [k, v] of rows) dl.append(el('dt', '', k), el('dd', '', v));
    const opened = V.detail.opened_on_site || [];
    const parts = [el('h3', 'dv-h', '状态 '), dl];
    parts[0].append(status);
    if (opened.length) {
      const box = el('div', 'dv-opened');
      box.append(el('b', '', '现场手动开阀记录：'), el('span', '', opened.map(fmtWallClock).join('、')));
      box.append(el('span', 'muted small', '（无燃气报警时在现场手动开启，已记入审计日志，网关不会自动关回）'));
      parts.push(box);
    }
    V.parts.summary.replaceChildren(...parts);
  }

  function renderLive() {
    const d = current();
    const list = el('div', 'dv-values');
    list.id = 'dv-values';
    list.append(...valueRows(d, { measuredAt: true }));
    V.parts.live.replaceChildren(el('h3', 'dv-h', '实时数值'), list);
  }

  function renderRaw() {
    const d = V.detail;
    const box = [el('h3', 'dv-h', '最近一条原始报文')];
    if (d.raw) {
      const r = d.raw;
      box.push(el('p', 'muted small', `${fmtWallClock(r.at)} · ${r.channel} · ${r.size} 字节${r.truncated ? '（仅显示前 4096 字节）' : ''}`));
      const pre = el('pre', 'dv-raw-text', prettyJson(r.text));
      pre.id = 'dv-raw-text';
      box.push(pre);
    } else if (d.registers) {
      box[0] = el('h3', 'dv-h', '最近一次轮询的原始寄存器');
      box.push(el('p', 'muted small', `${fmtWallClock(d.registers.at)} · Modbus（地址从 0 起）`));
      box.push(registerTable(d.registers.blocks));
    } else if (d.transport === 'modbus') {
      box.push(el('p', 'muted', '网关启动以来尚未轮询到该设备的应答'));
    } else {
      box.push(el('p', 'muted', '网关启动以来尚未收到该设备的报文'));
    }
    V.parts.raw.replaceChildren(...box);
  }

  const TABLES = { holding: '保持寄存器', input: '输入寄存器', coil: '线圈', discrete_input: '离散输入' };

  // One row per register (or bit) as read: table, address in decimal and hex, value in
  // decimal and hex — what an integrator compares with the manual's address table.
  function registerTable(blocks) {
    const table = el('table', 'dv-registers');
    table.id = 'dv-registers';
    const head = el('tr', '');
    for (const h of ['表', '地址', '十六进制', '值', '值（十六进制）']) head.append(el('th', '', h));
    table.append(head);
    for (const b of blocks) {
      b.values.forEach((v, i) => {
        const a = b.start + i;
        const tr = el('tr', '');
        const hex = (n, w) => `0x${n.toString(16).toUpperCase().padStart(w, '0')}`;
        for (const c of [TABLES[b.table] || b.table, String(a), hex(a, 4), String(v), hex(v, 4)]) {
          tr.append(el('td', '', c));
        }
        table.append(tr);
      });
    }
    return table;
  }

  function prettyJson(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      return text;
    }
  }

  function renderThresholds() {
    const rules = V.detail.thresholds || [];
    const parts = [el('h3', 'dv-h', '报警阈值')];
    if (!rules.length) parts.push(el('p', 'muted', '该类设备无数值阈值（按事件报警）'));
    for (const t of rules) {
      const table = el('table', 'dv-levels');
      const cap = el('caption', '', `${typeLabel(t.alarm)} · ${quantityInfo(t.quantity).label}`);
      table.append(cap);
      for (const lv of t.levels) {
        const tr = el('tr');
        tr.append(el('td', '', levelName(lv.name)), el('td', 'num', fmtQuantity(t.quantity, lv.at)), el('td', '', severityLabel(lv.severity) || ''));
        if (t.shutoff_level === lv.name) tr.append(el('td', 'dv-shutoff', '关阀'));
        table.append(tr);
      }
      parts.push(table);
      const notes = [`低于 ${fmtQuantity(t.quantity, t.clear_below)} 恢复`];
      if (t.on_delay_s) notes.push(`持续 ${t.on_delay_s} 秒报警`);
      if (t.off_delay_s) notes.push(`恢复需持续 ${t.off_delay_s} 秒`);
      parts.push(el('p', 'muted small', notes.join('；')));
    }
    V.parts.thresholds.replaceChildren(...parts);
  }

  const LEVEL_NAMES = { pre_alarm: '预警', level_1: '一级报警', level_2: '二级报警', alarm: '报警' };
  const levelName = (name) => LEVEL_NAMES[name] || name;

  // ------------------------------------------------------------------ the charts
  // The gateway's zone (its times carry the offset) for the time axis, whatever the
  // browser's zone: uPlot shows a Date's local fields, so shift it by the difference.
  function zoned(offsetMin) {
    if (offsetMin === null) return (ts) => new Date(ts * 1000);
    return (ts) => {
      const d = new Date(ts * 1000);
      return new Date(d.getTime() + (offsetMin + d.getTimezoneOffset()) * 60000);
    };
  }

  function thresholdsFor(quantity) {
    const base = quantity.replace(/^temp_c_\d+$/, 'temp_c');
    return (V.trend.thresholds || []).filter((t) => t.quantity === base);
  }

  function drawCharts() {
    for (const chart of V.charts) chart.destroy();
    V.charts = [];
    const box = V.parts.charts;
    const t = V.trend;
    const head = el('h3', 'dv-h', '近 24 小时趋势');
    const note = el('p', 'muted small', '由网关自行保存（每 30 秒一点：最后值，虚线为区间最高值）；横线为报警阈值，红色阴影为报警持续时段。');
    box.replaceChildren(head, note);
    if (!t) {
      box.append(el('p', 'hz-error', '趋势读取失败'));
      return;
    }
    const quantities = Object.keys(t.series).filter((q) => t.series[q].length);
    if (!quantities.length) {
      box.append(el('p', 'muted', '近 24 小时没有数据'));
      return;
    }
    if (typeof window.uPlot !== 'function') {
      box.append(el('p', 'hz-error', '图表组件未能加载'));
      return;
    }
    const tzDate = zoned(zoneOffsetOf(t.zone_time));
    for (const q of quantities) {
      const figure = el('figure', 'dv-chart');
      figure.dataset.quantity = q;
      const info = quantityInfo(q);
      figure.append(el('figcaption', '', `${info.label}${info.unit ? `（${info.unit}）` : ''}`));
      box.append(figure);
      V.charts.push(chart(figure, q, tzDate));
    }
  }

  function chart(figure, q, tzDate) {
    const t = V.trend;
    const points = t.series[q];
    const xs = points.map((p) => p[0]);
    const last = points.map((p) => p[3]);
    const high = points.map((p) => p[2]);
    const rules = thresholdsFor(q);
    const levels = rules.flatMap((r) => r.levels);
    const periods = t.alarms.filter((a) => rules.some((r) => r.alarm === a.type) || !rules.length || q === 'open');
    const top = Math.max(...levels.map((lv) => lv.at), 0);
    const width = Math.max(320, Math.min(1100, figure.parentElement.clientWidth - 24));
    const opts = {
      width,
      height: 220,
      tzDate,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [t.from, t.to] },
        y: { range: (u, min, max) => [Math.min(0, min), Math.max(max, top * 1.15, 1)] },
      },
      axes: [
        { stroke: '#9fb0bf', grid: { stroke: '#2c3843' }, ticks: { stroke: '#2c3843' }, values: (u, splits) => splits.map((ts) => tick24(tzDate(ts))) },
        { stroke: '#9fb0bf', grid: { stroke: '#2c3843' }, ticks: { stroke: '#2c3843' }, size: 56 },
      ],
      series: [
        {},
        { label: '最后值', stroke: '#3fb950', width: 2, points: { show: points.length < 60 } },
        { label: '最高值', stroke: 'rgba(63,185,80,0.55)', width: 1, dash: [4, 4], points: { show: false } },
      ],
      hooks: {
        drawClear: [(u) => shade(u, periods)],
        draw: [(u) => lines(u, rules)],
      },
    };
    const plot = new window.uPlot(opts, [xs, last, high], figure);
    figure._plot = plot; // for the browser test: where a threshold or a period is drawn
    figure.dataset.drawn = `${points.length}`;
    figure.dataset.levels = levels.map((lv) => lv.at).join(',');
    figure.dataset.periods = `${periods.length}`;
    figure.dataset.periodsAt = JSON.stringify(periods.length ? [periods[0].from, periods[0].to] : []);
    return plot;
  }

  // A time-axis label on the 24-hour clock: HH:MM, the date (MM-DD) at midnight.
  const pad2 = (n) => String(n).padStart(2, '0');
  function tick24(d) {
    if (d.getHours() === 0 && d.getMinutes() === 0) return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  }

  // The periods the alarms were active, behind the series.
  function shade(u, periods) {
    const { ctx, bbox } = u;
    ctx.save();
    ctx.fillStyle = BAND_COLOR;
    for (const a of periods) {
      const x0 = Math.max(bbox.left, u.valToPos(a.from, 'x', true));
      const x1 = Math.min(bbox.left + bbox.width, u.valToPos(a.to, 'x', true));
      if (x1 > x0) ctx.fillRect(x0, bbox.top, Math.max(2, x1 - x0), bbox.height);
    }
    ctx.restore();
  }

  // Each threshold level as a dashed line with its name.
  function lines(u, rules) {
    const { ctx, bbox } = u;
    const ratio = window.devicePixelRatio || 1;
    ctx.save();
    ctx.setLineDash([6 * ratio, 4 * ratio]);
    ctx.lineWidth = ratio;
    ctx.font = `${12 * ratio}px sans-serif`;
    ctx.textAlign = 'right';
    for (const r of rules) {
      for (const lv of r.levels) {
        const y = Math.round(u.valToPos(lv.at, 'y', true)) + 0.5; // on a pixel row, not between two
        if (y < bbox.top || y > bbox.top + bbox.height) continue;
        const color = LEVEL_COLORS[lv.severity] || '#f5d142';
        ctx.strokeStyle = color;
        ctx.beginPath();
        ctx.moveTo(bbox.left, y);
        ctx.lineTo(bbox.left + bbox.width, y);
        ctx.stroke();
        ctx.fillStyle = color;
        ctx.fillText(`${levelName(lv.name)} ${lv.at}`, bbox.left + bbox.width - 4 * ratio, y - 4 * ratio);
      }
    }
    ctx.restore();
  }

  // ------------------------------------------------------------------ the view
  function tick() {
    if (!V.detail || !V.parts) return;
    renderLive();
    renderSummary();
  }

  function show() {
    skeleton();
    V.detail = null;
    V.trend = null;
    V.error = '';
    render();
    load();
    clearInterval(V.timer);
    clearInterval(V.ticker);
    V.timer = setInterval(reloadTrend, TREND_EVERY_MS);
    V.ticker = setInterval(tick, 1000);
  }

  function hide() {
    clearInterval(V.timer);
    clearInterval(V.ticker);
    for (const chart of V.charts) chart.destroy();
    V.charts = [];
    V.parts = null;
  }

  // Another device while this page is open: the view stays, its device changes.
  window.addEventListener('hashchange', () => {
    const w = wanted();
    if (V.parts && w && w.key !== V.key) show();
  });

  C.registerView('device', { show, hide });
})();
