/* Duty-room console of the safety gateway.
 *
 * Plain browser JavaScript, no framework and no build step; every asset comes from the gateway.
 * State arrives over WS /api/live: first a snapshot (open alarms and devices), which REPLACES
 * whatever the page knew (also after every reconnect), then alarm changes and device updates.
 * People's actions go to the HTTP API. All text from the gateway is written with textContent.
 */
'use strict';

(() => {
  // ------------------------------------------------------------------ labels
  const {
    SEVERITIES,
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
  } = window.SafetyUi; // common.js: labels and formatting shared with the bureau page
  const { token, api } = window.SafetyLive; // live.js: the API and the live feed, as the bureau's
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
  const HTTP_STATUS = {
    400: '请求不适用',
    401: '未登录或令牌无效',
    403: '无权限',
    404: '报警不存在',
    409: '当前状态不允许此操作',
    422: '输入无效',
  };
  const OPERATOR_KEY = 'safety-console.operator';
  const RECENT_MAX = 8;
  const CLOSED_IDS_MAX = 1000;

  // ------------------------------------------------------------------ state
  const S = {
    alarms: new Map(), // id -> alarm JSON (open alarms only)
    devices: new Map(), // "site/device" -> device JSON
    sites: new Map(), // id -> site JSON from /api/sites
    recent: [], // recently closed alarms, newest first
    closedIds: new Set(), // alarms seen closed (final), oldest first
    rows: new Map(), // alarm id -> <tr>
    tiles: new Map(), // "site/device" -> tile element
    siteSections: new Map(), // site id -> {section, grid, counts}
    everConnected: false,
    downSince: null,
    snapshots: 0,
    healthFailures: 0,
    skewMs: 0, // gateway clock minus browser clock, when they differ noticeably
    zoneOffsetMin: null, // the gateway's UTC offset (its times carry it), for the clock
    authFailed: false,
  };

  const $ = (id) => document.getElementById(id);
  const now = () => Date.now() + S.skewMs;
  const deviceKey = (site, device) => `${site}/${device}`;

  // ------------------------------------------------------------------ formatting
  function alarmValue(alarm, value) {
    const quantity = ALARM_QUANTITY[alarm.type];
    if (!quantity || typeof value !== 'number') return null;
    return fmtQuantity(quantity, value);
  }

  const fmtAgo = (iso) => window.SafetyUi.fmtAgo(iso, now());
  const fmtClock = () => window.SafetyUi.fmtClock(now(), S.zoneOffsetMin);

  // The clock on the page shows the gateway's zone, learnt from the times it writes.
  function learnZone(iso) {
    const offset = window.SafetyUi.zoneOffsetOf(iso);
    if (offset === null) return;
    S.zoneOffsetMin = offset;
    $('clock').textContent = fmtClock();
  }

  const siteName = (id) => (S.sites.get(id) && S.sites.get(id).name) || id;

  function stateLabel(alarm) {
    if (alarm.state === 'closed') return { text: '已关闭', cls: 'state-cleared' };
    if (alarm.state === 'cleared') return { text: '已恢复', cls: 'state-cleared' };
    if (alarm.acked) return { text: '已确认', cls: 'state-acked' };
    return { text: '未处理', cls: 'state-unacked' };
  }

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

  // ------------------------------------------------------------------ HTTP
  function describeDetail(detail) {
    if (detail === null || detail === undefined || detail === '') return '';
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d && d.msg ? `${d.loc || ''} ${d.msg}`.trim() : JSON.stringify(d))).join('；');
    }
    return JSON.stringify(detail);
  }

  // What went wrong, in words a duty officer can act on, with the gateway's own message.
  function errorText(res) {
    if (res.status === 0) return `无法连接网关（${(res.body && res.body.error) || '网络错误'}），请稍后重试`;
    const head = `操作被拒绝（${res.status}${HTTP_STATUS[res.status] ? ' ' + HTTP_STATUS[res.status] : ''}）`;
    const body = res.body || {};
    const msg = [body.error, describeDetail(body.detail)].filter(Boolean).join('：');
    return msg ? `${head}：${msg}` : head;
  }

  // ------------------------------------------------------------------ live connection
  // Connected = the live feed's snapshot has arrived on its current connection.
  const feed = new window.SafetyLive.LiveFeed({
    onMessage: handleMessage,
    onClose: lostConnection,
    // 0.5 s, 1 s, 2 s, 4 s, 8 s, then every 10 s; every 10 s while the token is refused.
    delayMs: (attempt) => (S.authFailed ? 10000 : window.SafetyLive.backoffMs(attempt, 10000, 5)),
  });

  function lostConnection(event, hadSnapshot) {
    if (hadSnapshot || S.downSince === null) S.downSince = Date.now();
    render();
    // A refused token closes the socket before it opens (the browser then reports only
    // 1006): ask the API, which answers 401 in words.
    if (event.code === 4401) S.authFailed = true;
    else if (!hadSnapshot) checkAuth();
  }

  function reconnectNow() {
    if (feed.reconnectNow()) S.downSince = Date.now();
    render();
  }

  function handleMessage(msg) {
    if (msg.kind === 'snapshot') {
      applySnapshot(msg);
    } else if (msg.kind === 'alarm' && msg.alarm) {
      applyAlarm(msg.alarm);
      render();
    } else if (msg.kind === 'device' && msg.device) {
      // Device updates come in bursts (once a second, one per changed device): coalesced.
      S.devices.set(deviceKey(msg.device.site, msg.device.id), msg.device);
      scheduleRender();
    }
  }

  function applySnapshot(msg) {
    S.alarms.clear();
    for (const a of msg.alarms || []) {
      if (a.state !== 'closed' && !S.closedIds.has(a.id)) S.alarms.set(a.id, a);
    }
    S.devices.clear();
    for (const d of msg.devices || []) S.devices.set(deviceKey(d.site, d.id), d);
    for (const item of [...(msg.alarms || []), ...(msg.devices || [])]) {
      const iso = item.raised_at || item.last_seen;
      if (iso) {
        learnZone(iso);
        break;
      }
    }
    S.everConnected = true;
    S.downSince = null;
    S.authFailed = false;
    S.snapshots += 1;
    loadSites();
    checkHealth();
    refreshDialogs();
    render();
  }

  // Apply an alarm's newest view; an older one (e.g. an HTTP answer overtaken by the live
  // feed, or the other way round) never overwrites a newer one. Closed is final: an alarm
  // never reopens (a recurrence after closing is a new alarm with a new id), so a late
  // message about a closed alarm must not bring it back.
  function applyAlarm(alarm) {
    if (S.closedIds.has(alarm.id)) return;
    const known = S.alarms.get(alarm.id);
    if (known && parseTime(alarm.updated_at) < parseTime(known.updated_at)) return;
    if (alarm.state === 'closed') {
      S.alarms.delete(alarm.id);
      S.closedIds.add(alarm.id);
      if (S.closedIds.size > CLOSED_IDS_MAX) S.closedIds.delete(S.closedIds.values().next().value);
      S.recent = [alarm, ...S.recent].slice(0, RECENT_MAX);
    } else {
      S.alarms.set(alarm.id, alarm);
    }
    refreshDialogs();
  }

  async function checkAuth() {
    const res = await api('/api/sites', { timeoutMs: 5000 });
    const refused = res.status === 401 || res.status === 403;
    if (refused !== S.authFailed) {
      S.authFailed = refused;
      render();
    }
  }

  async function loadSites() {
    const res = await api('/api/sites');
    if (res.ok && Array.isArray(res.body)) {
      S.sites.clear();
      for (const s of res.body) S.sites.set(s.id, s);
      render();
    }
  }

  // The gateway's own health (is it still talking to the MQTT broker?) and a check that
  // the live connection is not silently dead: two failed checks in a row force a reconnect.
  async function checkHealth() {
    const res = await api('/api/health', { timeoutMs: 5000 });
    const box = $('gw-health');
    if (!res.ok || !res.body) {
      S.healthFailures += 1;
      if (S.healthFailures >= 2 && feed.live) reconnectNow();
      return;
    }
    S.healthFailures = 0;
    const date = Date.parse(res.headers.get('date') || '');
    if (!Number.isNaN(date)) {
      const skew = date - Date.now();
      S.skewMs = Math.abs(skew) > 3000 ? skew : 0; // the header has one-second resolution
    }
    const h = res.body;
    if (h.broker) learnZone(h.broker.connected_since);
    $('gateway-id').textContent = h.gateway ? `网关 ${h.gateway}` : '';
    const problems = [];
    if (h.broker && h.broker.connected === false) problems.push('网关与 MQTT 代理断开，设备数据暂停');
    if (h.status && h.status !== 'ok' && !problems.length) problems.push('网关运行异常，请联系维护人员');
    box.textContent = problems.join('；');
    box.hidden = problems.length === 0;
  }

  // ------------------------------------------------------------------ sound
  // Web Audio only (no audio files): an oscillator beep pattern. Browsers allow sound only
  // after a user gesture, hence the banner. `sounding` is true while the pattern repeats.
  const audio = {
    ctx: null,
    timer: null, // pattern repeat for critical alarms
    linkTimer: null, // pattern repeat for a lost connection
    nodes: new Set(),
  };

  function audioArmed() {
    return !!audio.ctx && audio.ctx.state === 'running';
  }

  async function armAudio() {
    try {
      if (!audio.ctx) {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) {
          toast('此浏览器不支持声音报警，请留意闪烁提示', true);
          return;
        }
        audio.ctx = new Ctx();
        audio.ctx.onstatechange = () => render();
      }
      if (audio.ctx.state !== 'running') await audio.ctx.resume();
    } catch (_) {
      /* stays unarmed: the banner remains */
    }
    if (audioArmed()) beepPattern([[880, 0, 0.12]], 0.15); // a short confirmation blip
    render();
  }

  // tones: [frequency Hz, start s, length s]
  function beepPattern(tones, volume) {
    const ctx = audio.ctx;
    if (!ctx || ctx.state !== 'running') return;
    const t0 = ctx.currentTime + 0.02;
    for (const [freq, start, length] of tones) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0, t0 + start);
      gain.gain.linearRampToValueAtTime(volume, t0 + start + 0.01);
      gain.gain.setValueAtTime(volume, t0 + start + length - 0.02);
      gain.gain.linearRampToValueAtTime(0, t0 + start + length);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + start);
      osc.stop(t0 + start + length + 0.01);
      audio.nodes.add(osc);
      osc.onended = () => {
        audio.nodes.delete(osc);
        gain.disconnect();
      };
    }
  }

  function silence() {
    for (const osc of audio.nodes) {
      try {
        osc.stop();
      } catch (_) {
        /* already stopped */
      }
    }
    audio.nodes.clear();
  }

  // Critical: two alternating tones three times, then a pause; repeats every 2 s.
  const CRITICAL_PATTERN = [
    [960, 0.0, 0.18], [770, 0.2, 0.18],
    [960, 0.4, 0.18], [770, 0.6, 0.18],
    [960, 0.8, 0.18], [770, 1.0, 0.18],
  ];
  // Monitoring lost for a minute: one low tone every 10 s (the console itself is blind).
  const LINK_PATTERN = [[440, 0, 0.35], [330, 0.45, 0.5]];
  const LINK_LOST_ALARM_MS = 60000;

  function updateSound(unackedCritical) {
    const wantCritical = audioArmed() && unackedCritical > 0;
    if (wantCritical && !audio.timer) {
      beepPattern(CRITICAL_PATTERN, 0.25);
      audio.timer = setInterval(() => beepPattern(CRITICAL_PATTERN, 0.25), 2000);
    } else if (!wantCritical && audio.timer) {
      clearInterval(audio.timer);
      audio.timer = null;
      silence();
    }
    const linkLost =
      audioArmed() && S.everConnected && !feed.live && S.downSince !== null &&
      Date.now() - S.downSince > LINK_LOST_ALARM_MS;
    if (linkLost && !audio.linkTimer) {
      beepPattern(LINK_PATTERN, 0.2);
      audio.linkTimer = setInterval(() => beepPattern(LINK_PATTERN, 0.2), 10000);
    } else if (!linkLost && audio.linkTimer) {
      clearInterval(audio.linkTimer);
      audio.linkTimer = null;
    }
    return { sounding: !!audio.timer, linkLostSounding: !!audio.linkTimer };
  }

  // ------------------------------------------------------------------ rendering
  let renderTimer = null;
  function scheduleRender() {
    if (renderTimer === null) renderTimer = setTimeout(render, 100);
  }

  // Alarm changes render at once (they start and stop the sound); everything is redrawn
  // from the state maps, rows and tiles are kept and updated in place.
  function render() {
    clearTimeout(renderTimer);
    renderTimer = null;
    const alarms = [...S.alarms.values()].sort(compareAlarms);
    const unackedCritical = alarms.filter((a) => a.severity === 'critical' && !a.acked).length;
    const unacked = alarms.filter((a) => !a.acked).length;
    renderAlarms(alarms);
    renderRecent();
    renderDevices();
    renderConnection();

    $('sum-open').textContent = String(alarms.length);
    $('sum-critical').textContent = String(alarms.filter((a) => a.severity === 'critical').length);
    $('sum-unacked').textContent = String(unacked);
    $('alarm-count').textContent = String(alarms.length);
    $('critical-count').textContent = String(unackedCritical);
    $('critical-flash').hidden = unackedCritical === 0;

    const armed = audioArmed();
    const banner = $('sound-banner');
    banner.hidden = armed;
    banner.classList.toggle('urgent', unackedCritical > 0);
    const soundText = $('sound-text');
    soundText.textContent = armed ? '声音报警已启用' : '声音报警未启用';
    soundText.className = armed ? 'sound-on' : 'muted';
    $('sound-test').hidden = !armed;

    const sound = updateSound(unackedCritical);
    document.title = unackedCritical > 0 ? `【紧急 ${unackedCritical}】值班室安全监控台` : '值班室安全监控台';

    window.__consoleState = {
      connected: feed.live,
      alarms: alarms.length,
      unackedCritical,
      unacked,
      audioArmed: armed,
      sounding: sound.sounding,
      linkLostSounding: sound.linkLostSounding,
      devices: S.devices.size,
      snapshots: S.snapshots,
      reconnectAttempts: feed.attempt,
    };
  }

  function renderConnection() {
    const conn = $('conn');
    const text = $('conn-text');
    const banner = $('offline-banner');
    if (feed.live) {
      conn.className = 'conn conn-connected';
      text.textContent = '已连接 · 实时';
      banner.hidden = true;
      $('main').classList.remove('stale');
      return;
    }
    if (!S.everConnected && !S.authFailed && feed.attempt <= 1) {
      conn.className = 'conn conn-connecting';
      text.textContent = '正在连接网关…';
      banner.hidden = true;
      return;
    }
    conn.className = 'conn conn-down';
    text.textContent = '连接中断，正在重连…';
    banner.hidden = false;
    $('main').classList.toggle('stale', S.everConnected);
    const parts = [];
    if (S.authFailed) {
      parts.push(token ? '网关拒绝了访问令牌，请检查网址中的 ?token=' : '网关需要访问令牌：请在网址后加上 ?token=…');
    }
    if (S.downSince !== null) parts.push(`已中断 ${fmtDuration(Date.now() - S.downSince)}`);
    if (feed.connecting) parts.push('正在连接…');
    else if (feed.waiting) parts.push(`${Math.max(0, Math.ceil((feed.reconnectAt - Date.now()) / 1000))} 秒后重试`);
    $('offline-detail').textContent = parts.length ? `（${parts.join('，')}）` : '';
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

    c.sev.replaceChildren(el('span', `badge sev-${a.severity}`, severityLabel(a.severity)));

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

    c.where.replaceChildren(
      el('span', 'sub', siteName(a.site)),
      el('div', 'where-location', a.location || '（未填写位置）'),
      el('span', 'sub mono', a.device),
    );

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

  function renderAlarms(sorted) {
    const tbody = $('alarm-rows');
    const wanted = new Set(sorted.map((a) => a.id));
    for (const [id, tr] of S.rows) {
      if (!wanted.has(id)) {
        tr.remove();
        S.rows.delete(id);
      }
    }
    sorted.forEach((a, i) => {
      let tr = S.rows.get(a.id);
      if (!tr) {
        tr = createRow(a.id);
        S.rows.set(a.id, tr);
      }
      fillRow(tr, a);
      // Move a row only when it is out of place: moving a row would take the keyboard
      // focus away from its buttons.
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    $('no-alarms').hidden = sorted.length > 0;
  }

  function renderRecent() {
    $('recent-count').textContent = String(S.recent.length);
    const items = S.recent.map((a) => {
      const who = a.closed_by ? `关闭人 ${a.closed_by}` : '';
      const disp = a.disposition ? DISPOSITIONS[a.disposition] || a.disposition : '';
      const parts = [
        fmtWallClock(a.closed_at || a.updated_at),
        `${typeLabel(a.type)}（${severityLabel(a.severity)}）`,
        `${siteName(a.site)} ${a.location || ''}`.trim(),
        who,
        disp,
        a.note || '',
      ].filter(Boolean);
      return el('li', '', parts.join(' · '));
    });
    $('recent-list').replaceChildren(...items);
  }

  function siteSection(siteId) {
    let s = S.siteSections.get(siteId);
    if (!s) {
      const section = el('section', 'site-devices');
      section.dataset.site = siteId;
      const h = el('h3');
      const title = el('span', 'site-title');
      const counts = el('span', 'site-counts');
      h.append(title, counts);
      const grid = el('div', 'device-grid');
      section.append(h, grid);
      s = { section, title, counts, grid };
      S.siteSections.set(siteId, s);
    }
    return s;
  }

  function renderDevices() {
    const container = $('device-sites');
    const bySite = new Map();
    for (const d of S.devices.values()) {
      if (!bySite.has(d.site)) bySite.set(d.site, []);
      bySite.get(d.site).push(d);
    }
    const alarmsByDevice = new Map();
    for (const a of S.alarms.values()) {
      const key = deviceKey(a.site, a.device);
      if (!alarmsByDevice.has(key)) alarmsByDevice.set(key, []);
      alarmsByDevice.get(key).push(a);
    }
    // Sites in the configured order, then any the site list does not (yet) name.
    const order = [...S.sites.keys()].filter((id) => bySite.has(id));
    for (const id of bySite.keys()) if (!order.includes(id)) order.push(id);

    for (const [id, s] of S.siteSections) {
      if (!bySite.has(id)) {
        s.section.remove();
        S.siteSections.delete(id);
      }
    }
    const seen = new Set();
    order.forEach((siteId, i) => {
      const s = siteSection(siteId);
      const devices = bySite.get(siteId);
      const counts = { online: 0, offline: 0, fault: 0, unknown: 0 };
      devices.forEach((d, j) => {
        const key = deviceKey(d.site, d.id);
        seen.add(key);
        counts[d.status] = (counts[d.status] || 0) + 1;
        let tile = S.tiles.get(key);
        if (!tile) {
          tile = createTile(key);
          S.tiles.set(key, tile);
        }
        fillTile(tile, d, alarmsByDevice.get(key) || []);
        if (s.grid.children[j] !== tile) s.grid.insertBefore(tile, s.grid.children[j] || null);
      });
      s.title.textContent = siteName(siteId);
      s.counts.textContent = ['online', 'offline', 'fault', 'unknown']
        .filter((k) => counts[k])
        .map((k) => `${DEVICE_STATUS[k]} ${counts[k]}`)
        .join(' · ');
      if (container.children[i] !== s.section) container.insertBefore(s.section, container.children[i] || null);
    });
    for (const [key, tile] of S.tiles) {
      if (!seen.has(key)) {
        tile.remove();
        S.tiles.delete(key);
      }
    }
    $('no-devices').hidden = S.devices.size > 0;
    $('site-names').textContent = S.sites.size ? [...S.sites.values()].map((s) => s.name).join('、') : '—';
  }

  function createTile(key) {
    const tile = el('article', 'tile');
    tile.dataset.device = key;
    const head = el('div', 'tile-head');
    const location = el('span', 'tile-location');
    const status = el('span', 'status-badge');
    head.append(location, status);
    const type = el('div', 'tile-type');
    const values = el('div', 'tile-values');
    const alarm = el('div', 'tile-alarm');
    const seen = el('div', 'tile-seen');
    tile.append(head, type, values, alarm, seen);
    tile._parts = { location, status, type, values, alarm, seen };
    return tile;
  }

  function fillTile(tile, d, alarms) {
    const p = tile._parts;
    tile.className = `tile status-${d.status}${alarms.length ? ' has-alarm' : ''}`;
    tile.dataset.status = d.status;
    p.location.textContent = d.location || d.id;
    p.status.className = `status-badge status-${d.status}`;
    p.status.textContent = DEVICE_STATUS[d.status] || d.status;
    p.type.textContent = `${DEVICE_TYPES[d.type] || d.type} · ${d.name || d.id}`;

    const rows = [];
    for (const [name, value] of Object.entries(d.values || {})) {
      const row = el('div', 'tile-value');
      row.dataset.quantity = name;
      if (name === 'open') {
        row.append(el('span', '', '阀门'), el('b', value === 0 ? 'valve-closed' : 'valve-open', value === 0 ? '已关闭' : '开启'));
      } else {
        row.append(el('span', '', quantityInfo(name).label), el('b', '', fmtQuantity(name, value)));
      }
      if (d.values_at && d.values_at[name]) row.title = `测量时间 ${fmtWallClock(d.values_at[name])}`;
      rows.push(row);
    }
    if (!rows.length) rows.push(el('div', 'muted', '暂无数据'));
    p.values.replaceChildren(...rows);
    p.alarm.textContent = alarms.length ? `报警：${alarms.map((a) => typeLabel(a.type)).join('、')}` : '';
    p.alarm.hidden = !alarms.length;
    tile._lastSeen = d.last_seen;
    fillSeen(tile);
  }

  function fillSeen(tile) {
    const iso = tile._lastSeen;
    tile._parts.seen.textContent = `最后通信：${fmtAgo(iso)}`;
    tile._parts.seen.title = iso ? fmtWallClock(iso) : '';
  }

  // Once a second: durations, "last seen", the clock, the reconnect countdown.
  function tick() {
    $('clock').textContent = fmtClock();
    for (const [id, tr] of S.rows) {
      const a = S.alarms.get(id);
      if (a) fillDuration(tr, a);
    }
    for (const tile of S.tiles.values()) fillSeen(tile);
    if (!feed.live) render(); // countdown, and the link-lost sound after a minute
  }

  // ------------------------------------------------------------------ dialogs
  const dialogs = {
    ack: { dialog: null, alarmId: null },
    close: { dialog: null, alarmId: null },
  };

  function summaryNodes(a) {
    if (!a) return [el('div', 'dialog-info', '此报警已关闭或已不在列表中')];
    const value = alarmValue(a, a.value);
    return [
      el('div', '', `${severityLabel(a.severity)} · ${typeLabel(a.type)} · ${stateLabel(a).text}`),
      el('div', 'sub', `${siteName(a.site)} ${a.location || ''} · ${a.device}${value ? ' · ' + value : ''}`),
      el('div', 'sub', `发生于 ${fmtWallClock(a.raised_at)}`),
    ];
  }

  // The last operator's name, so that the next dialog is quicker (storage may be refused).
  function rememberedOperator() {
    try {
      return localStorage.getItem(OPERATOR_KEY) || '';
    } catch (_) {
      return '';
    }
  }

  function rememberOperator(name) {
    try {
      localStorage.setItem(OPERATOR_KEY, name);
    } catch (_) {
      /* not remembered: the dialog asks again */
    }
  }

  function showDialogError(kind, text) {
    const box = $(`${kind}-error`);
    box.textContent = text || '';
    box.hidden = !text;
  }

  function openDialog(kind, alarmId) {
    const d = dialogs[kind];
    d.alarmId = alarmId;
    const form = $(`${kind}-form`);
    form.reset();
    $(`${kind}-by`).value = rememberedOperator();
    $(`${kind}-submit`).disabled = false;
    showDialogError(kind, '');
    $(`${kind}-summary`).replaceChildren(...summaryNodes(S.alarms.get(alarmId)));
    d.dialog.showModal();
    const by = $(`${kind}-by`);
    (by.value ? (kind === 'ack' ? $('ack-submit') : $('close-disposition')) : by).focus();
  }

  function refreshDialogs() {
    for (const kind of ['ack', 'close']) {
      const d = dialogs[kind];
      if (d.dialog && d.dialog.open) $(`${kind}-summary`).replaceChildren(...summaryNodes(S.alarms.get(d.alarmId)));
    }
  }

  async function submitDialog(kind) {
    const d = dialogs[kind];
    const by = $(`${kind}-by`).value.trim();
    const note = $(`${kind}-note`).value.trim();
    if (!by) {
      showDialogError(kind, kind === 'ack' ? '请填写值班人员姓名' : '请填写处置人员姓名');
      $(`${kind}-by`).focus();
      return;
    }
    const body = { by, note };
    if (kind === 'close') {
      const disposition = $('close-disposition').value;
      if (!disposition) {
        showDialogError(kind, '请选择处置结论');
        $('close-disposition').focus();
        return;
      }
      body.disposition = disposition;
    }
    showDialogError(kind, '');
    const submit = $(`${kind}-submit`);
    submit.disabled = true;
    const res = await api(`/api/alarms/${encodeURIComponent(d.alarmId)}/${kind}`, { method: 'POST', body });
    submit.disabled = false;
    if (!res.ok) {
      showDialogError(kind, errorText(res));
      return;
    }
    rememberOperator(by);
    d.dialog.close();
    if (res.body && res.body.id) applyAlarm(res.body);
    const a = res.body || {};
    toast(`${kind === 'ack' ? '已确认' : '已关闭'}：${typeLabel(a.type)} ${a.location || a.device || ''}`);
    render();
  }

  let toastTimer = null;
  function toast(text, isError = false) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('error', isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      t.hidden = true;
    }, 4000);
  }

  // ------------------------------------------------------------------ start
  function start() {
    dialogs.ack.dialog = $('ack-dialog');
    dialogs.close.dialog = $('close-dialog');
    for (const kind of ['ack', 'close']) {
      $(`${kind}-form`).addEventListener('submit', (event) => {
        event.preventDefault();
        submitDialog(kind);
      });
      dialogs[kind].dialog.querySelector('[data-cancel]').addEventListener('click', () => dialogs[kind].dialog.close());
    }
    $('alarm-rows').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button || button.disabled) return;
      const tr = button.closest('tr[data-alarm-id]');
      if (tr) openDialog(button.dataset.action, tr.dataset.alarmId);
    });
    $('sound-banner').addEventListener('click', armAudio);
    $('sound-test').addEventListener('click', () => beepPattern(CRITICAL_PATTERN.slice(0, 2), 0.25));
    $('reconnect-now').addEventListener('click', reconnectNow);
    // Any click on the page may also unlock sound (the browser allows it on any gesture).
    document.addEventListener('pointerdown', () => {
      if (audio.ctx && audio.ctx.state !== 'running') armAudio();
    });

    render();
    tick();
    setInterval(tick, 1000);
    setInterval(() => {
      if (feed.live) checkHealth();
    }, 10000);
    feed.connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
