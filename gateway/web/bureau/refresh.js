/* Bureau page: keeping the figures current. The figures come from GET /api/overview, polled
 * every 10 s; the live feed (WS /api/live, through shared/live.js) only says WHEN to ask
 * again, so that an alarm shows within a second instead of at the next poll (a burst of
 * messages becomes one request; answers that overtake each other never go back in time).
 * Owns the refreshes, the live feed, the connection indicator and the offline banner.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { $, parseTime } = window.SafetyUi;
  const { api, unreachableText, backoffMs, LiveFeed } = window.SafetyLive;
  const { learnSkew, learnZone } = window.SafetyClock;
  const B = window.SafetyBureau;
  const { S } = B;
  const POLL_MS = 10000;

  function failureText(res) {
    if (res.status === 0) return unreachableText(res);
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
    B.publishState();
    const query = new URLSearchParams({ sort: S.sort, reverse: String(S.reverse) });
    if (S.kind) query.set('kind', S.kind);
    const res = await api(`/api/overview?${query}`);
    // Answers may overtake each other: an older one never replaces a newer one.
    if (seq < S.appliedSeq) return;
    S.appliedSeq = seq;
    // A 401 goes to session.js by itself (to the login page); a 403 is shown.
    S.authFailed = res.status === 401 || res.status === 403;
    if (!res.ok || !res.body || !Array.isArray(res.body.sites)) {
      S.pollOk = false;
      S.lastError = failureText(res);
      B.render();
      return;
    }
    const generated = parseTime(res.body.generated_at);
    if (!Number.isNaN(generated)) learnSkew(generated, 2000);
    learnZone(res.body.generated_at);
    S.overview = res.body;
    S.pollOk = true;
    S.lastError = '';
    S.refreshes += 1;
    for (const c of causes) S.refreshesBy[c] = (S.refreshesBy[c] || 0) + 1;
    B.render();
    if (S.detail.siteId) B.loadDetail();
  }

  // Live = the feed's snapshot has arrived on its current connection.
  const feed = new LiveFeed({
    onMessage: onLive,
    onClose: (event) => {
      if (event.code === 4401) window.SafetySession.refuse();
      B.render();
    },
    // 0.5 s, 1 s, 2 s, ... then every 30 s: the 10 s poll goes on meanwhile.
    delayMs: (attempt) => backoffMs(attempt, 30000, 6),
  });

  function onLive(msg) {
    if (msg.kind === 'snapshot') {
      S.deviceStatus.clear();
      for (const d of msg.devices || []) S.deviceStatus.set(`${d.site}/${d.id}`, d.status);
      scheduleRefresh(0, 'snapshot'); // whatever changed while the feed was down
      B.render();
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

  function renderConnection() {
    const conn = $('conn');
    const text = $('conn-text');
    const banner = $('offline-banner');
    if (S.pollOk === false) {
      conn.className = 'conn conn-down';
      text.textContent = '连接中断';
      banner.hidden = false;
      $('offline-title').textContent = S.authFailed ? '访问被拒绝' : '无法获取最新数据';
      $('offline-detail').textContent = S.authFailed ? '（此账号无权查看总览，请换一个账号登录）' : `（${S.lastError}，每 10 秒重试）`;
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

  // The refresh button, the poll every 10 s, the first refresh and the live feed.
  function startRefreshing() {
    // The bureau's page raises no alarm of its own: a refused session simply logs in again.
    window.SafetySession.start({ onRefused: () => window.SafetySession.goLogin() });
    $('refresh-now').addEventListener('click', () => scheduleRefresh());
    setInterval(() => scheduleRefresh(0, 'poll'), POLL_MS);
    refresh();
    feed.connect();
  }

  return { feed, failureText, scheduleRefresh, renderConnection, startRefreshing };
})());
