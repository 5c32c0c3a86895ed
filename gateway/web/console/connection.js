/* Duty console: the live updates. Owns the page's one live feed (WS /api/live, through
 * shared/live.js): its snapshot REPLACES whatever the page knew (also after every reconnect),
 * then alarm changes and device updates are applied — an older view of an alarm never
 * overwrites a newer one, and a closed alarm never comes back. Also what watches the feed (a
 * refused session, the gateway's health, a silently dead connection), the site names, and the
 * connection indicator and offline banner.
 */
'use strict';

Object.assign(window.SafetyConsole, (() => {
  const { $, parseTime, fmtDuration } = window.SafetyUi;
  const { api, backoffMs, LiveFeed } = window.SafetyLive;
  const { learnSkew, learnZone } = window.SafetyClock;
  const C = window.SafetyConsole;
  const { S, deviceKey } = C;
  const RECENT_MAX = 8;
  const CLOSED_IDS_MAX = 1000;

  // Connected = the live feed's snapshot has arrived on its current connection.
  const feed = new LiveFeed({
    onMessage: handleMessage,
    onClose: lostConnection,
    // 0.5 s, 1 s, 2 s, 4 s, 8 s, then every 10 s; every 10 s while the session is refused.
    delayMs: (attempt) => (S.authFailed ? 10000 : backoffMs(attempt, 10000, 5)),
  });

  function lostConnection(event, hadSnapshot) {
    if (hadSnapshot || S.downSince === null) S.downSince = Date.now();
    C.render();
    // A refused session closes the socket before it opens (the browser then reports only
    // 1006): ask the API, whose 401 reaches session.js.
    if (event.code === 4401) window.SafetySession.refuse();
    else if (!hadSnapshot) checkAuth();
  }

  function reconnectNow() {
    if (feed.reconnectNow()) S.downSince = Date.now();
    C.render();
  }

  function handleMessage(msg) {
    if (msg.kind === 'snapshot') {
      applySnapshot(msg);
    } else if (msg.kind === 'alarm' && msg.alarm) {
      applyAlarm(msg.alarm);
      C.render();
    } else if (msg.kind === 'device' && msg.device) {
      // Device updates come in bursts (once a second, one per changed device): coalesced.
      S.devices.set(deviceKey(msg.device.site, msg.device.id), msg.device);
      C.scheduleRender();
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
    S.snapshots += 1;
    loadSites();
    checkHealth();
    C.refreshDialogs();
    C.render();
    showLinkedAlarm();
  }

  // A group robot's message links to `/#alarm=<id>` (the console asks for a login first and
  // comes back with the hash): once the alarms are shown, that row is scrolled to and marked.
  let linkedShown = false;
  function showLinkedAlarm() {
    const m = /^#alarm=([A-Za-z0-9_.:-]+)$/.exec(window.location.hash);
    if (linkedShown || !m) return;
    const row = document.querySelector(`tr[data-alarm-id="${m[1]}"]`);
    if (!row) return;
    linkedShown = true;
    row.dataset.linked = 'true'; // not a class: every render sets the row's classes anew
    row.scrollIntoView({ block: 'center' });
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
    C.refreshDialogs();
  }

  // A 401 goes to session.js by itself; a 403 (a person with no site here) is only shown.
  async function checkAuth() {
    const res = await api('/api/sites', { timeoutMs: 5000 });
    const forbidden = res.status === 403;
    if (forbidden !== S.forbidden) {
      S.forbidden = forbidden;
      C.render();
    }
  }

  async function loadSites() {
    const res = await api('/api/sites');
    if (res.ok && Array.isArray(res.body)) {
      S.sites.clear();
      for (const s of res.body) S.sites.set(s.id, s);
      C.render();
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
    if (!Number.isNaN(date)) learnSkew(date, 3000); // the header has one-second resolution
    const h = res.body;
    if (h.broker) learnZone(h.broker.connected_since);
    $('gateway-id').textContent = h.gateway ? `网关 ${h.gateway}` : '';
    const problems = [];
    if (h.broker && h.broker.connected === false) problems.push('网关与 MQTT 代理断开，设备数据暂停');
    if (h.status && h.status !== 'ok' && !problems.length) problems.push('网关运行异常，请联系维护人员');
    box.textContent = problems.join('；');
    box.hidden = problems.length === 0;
  }

  // How long monitoring has been lost after having worked (null while it works or never has).
  function downForMs() {
    return S.everConnected && !feed.live && S.downSince !== null ? Date.now() - S.downSince : null;
  }

  function renderConnection() {
    const conn = $('conn');
    const text = $('conn-text');
    const banner = $('offline-banner');
    // The gateway may keep an open feed going after the session ended, but nothing says for
    // how long: the page does not call itself live then (the red banner says why).
    if (S.authFailed) {
      conn.className = 'conn conn-down';
      text.textContent = '已退出登录';
      banner.hidden = true;
      return;
    }
    if (feed.live) {
      conn.className = 'conn conn-connected';
      text.textContent = '已连接 · 实时';
      banner.hidden = true;
      $('main').classList.remove('stale');
      return;
    }
    if (!S.everConnected && !S.forbidden && feed.attempt <= 1) {
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
    if (S.forbidden) parts.push('此账号无权查看本网关的场所');
    if (S.downSince !== null) parts.push(`已中断 ${fmtDuration(Date.now() - S.downSince)}`);
    if (feed.connecting) parts.push('正在连接…');
    else if (feed.waiting) parts.push(`${Math.max(0, Math.ceil((feed.reconnectAt - Date.now()) / 1000))} 秒后重试`);
    $('offline-detail').textContent = parts.length ? `（${parts.join('，')}）` : '';
  }

  // The reconnect button, the health check every 10 s while live, and the first connection.
  function startLive() {
    $('reconnect-now').addEventListener('click', reconnectNow);
    setInterval(() => {
      if (feed.live) checkHealth();
    }, 10000);
    feed.connect();
  }

  return { feed, applyAlarm, downForMs, renderConnection, startLive };
})());
