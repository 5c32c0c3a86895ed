/* Bureau page: which view is on the screen, and what the closed loop's views share. The page
 * has five: 场所 (the county's sites, the first and default), and the closed loop's 隐患台账,
 * 整改通知, 事件 and 每日自查. The view is in the address (`#view=ledger`), so a reload or a
 * bookmark comes back to it and the browser's back button works.
 *
 * A view's script registers itself with `B.registerView(name, {load, tick, always})`: `load`
 * asks the gateway again (when the view comes on the screen, every 10 s while it is there, and
 * on its 刷新 button); `tick` runs once a second while it is there (the clocks count on the
 * gateway's clock, SafetyClock); `always: true` loads and ticks whatever view is shown, so
 * that the figures on the tabs (hazards awaiting the bureau's check, notices not signed for,
 * open incidents, sites missing their self-report) and in the header (incidents with a missed
 * report) are current on every view.
 *
 * The views' rows name their site with `data-site-id`: `data-site` is the site table's.
 *
 * Loaded after refresh.js and before the views' own scripts and bureau.js.
 */
'use strict';

Object.assign(window.SafetyBureau, (() => {
  const { $, el, parseTime, pad2, fmtWallClock, zoneOffsetOf } = window.SafetyUi;
  const { now } = window.SafetyClock;
  const B = window.SafetyBureau;
  const { S } = B;
  const NAMES = ['sites', 'ledger', 'notices', 'incidents', 'checks'];
  const POLL_MS = 10000;
  const registered = new Map(); // name -> {load, tick, always}
  const loads = {}; // name -> answers applied, for the browser tests
  let current = null;

  function fromHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const view = params.get('view');
    return NAMES.includes(view) ? view : 'sites';
  }

  function show(name) {
    if (name === current) return;
    current = name;
    for (const node of document.querySelectorAll('main > .view')) node.hidden = node.dataset.view !== name;
    for (const link of document.querySelectorAll('nav.bureau-views a[data-view]')) {
      if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    // A site's detail panel belongs to the sites' table.
    if (name !== 'sites' && S.detail.siteId) B.closeDetail();
    const hooks = registered.get(name);
    if (hooks) {
      hooks.load();
      if (hooks.tick) hooks.tick();
    }
    publish();
  }

  function registerView(name, hooks) {
    registered.set(name, hooks);
    loads[name] = 0;
  }

  // A view's answer was drawn: counted for the browser tests.
  function loaded(name) {
    loads[name] = (loads[name] || 0) + 1;
    publish();
  }

  function publish() {
    window.__bureauLoop = { view: current, loads: { ...loads } };
  }

  function poll() {
    for (const [name, hooks] of registered) {
      if (name === current || hooks.always) hooks.load();
    }
  }

  function tick() {
    // The sites come with the overview, which may answer after a view was first drawn.
    fillSites($('ledger-site'));
    for (const [name, hooks] of registered) {
      if (hooks.tick && (name === current || hooks.always)) hooks.tick();
    }
  }

  // ------------------------------------------------------------------ shared by the views
  // The county's sites (from the overview), as options of `select` after its first option.
  function fillSites(select) {
    const sites = S.overview ? S.overview.sites : [];
    const key = sites.map((s) => s.id).join('\n');
    if (select.dataset.sites === key) return;
    select.dataset.sites = key;
    const chosen = select.value;
    const first = select.options[0];
    const options = [...sites]
      .sort((a, b) => a.name.localeCompare(b.name, 'zh-CN'))
      .map((s) => {
        const o = el('option', '', s.name);
        o.value = s.id;
        return o;
      });
    select.replaceChildren(first, ...options);
    if (sites.some((s) => s.id === chosen)) select.value = chosen;
  }

  const siteName = (id) => {
    const s = B.siteOf(id);
    return s ? s.name : id;
  };

  // The gateway's zone offset ("+08:00"), from the times it writes; the browser's until known.
  function gatewayOffset() {
    const offset = S.overview ? zoneOffsetOf(S.overview.generated_at) : null;
    const minutes = offset === null ? -new Date(now()).getTimezoneOffset() : offset;
    const sign = minutes < 0 ? '-' : '+';
    const abs = Math.abs(minutes);
    return { minutes, text: `${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}` };
  }

  // A datetime-local input's value (the gateway's wall time) as ISO 8601 with its offset.
  const wallToIso = (value) => (value ? `${value.length === 16 ? `${value}:00` : value}${gatewayOffset().text}` : null);

  // `ms` as a datetime-local value in the gateway's zone.
  function isoToWall(ms) {
    const t = new Date(ms + gatewayOffset().minutes * 60000);
    return `${t.getUTCFullYear()}-${pad2(t.getUTCMonth() + 1)}-${pad2(t.getUTCDate())}T${pad2(t.getUTCHours())}:${pad2(t.getUTCMinutes())}`;
  }

  // Today in the gateway's zone, YYYY-MM-DD.
  const gatewayToday = () => isoToWall(now()).slice(0, 10);

  // A time the gateway wrote, as it wrote it (its zone): "11-18 10:00"; '—' for none.
  const when = (iso) => (iso ? fmtWallClock(iso).slice(0, 11) : '—');

  const msOf = (iso) => parseTime(iso);

  // A failed answer, in words, into `node` (hidden again on success).
  function showError(node, res) {
    if (!res) {
      node.hidden = true;
      node.textContent = '';
      return;
    }
    node.hidden = false;
    node.textContent = res.status === 403 ? '此账号无权查看' : `加载失败：${B.failureText(res)}`;
  }

  // The refused request's reason, for a dialog.
  function refusalText(res) {
    const body = res.body || {};
    const detail = typeof body.detail === 'string' ? body.detail : body.detail ? JSON.stringify(body.detail) : '';
    if (res.status === 0) return window.SafetyLive.unreachableText(res);
    return `网关拒绝（${res.status}）：${body.error || ''}${detail ? ` — ${detail}` : ''}`;
  }

  // Who the gateway records for the page's actions: the logged-in person.
  function actorText() {
    const me = window.SafetySession.person();
    return me && me.via === 'session' ? `操作人：${me.name}（${me.role_label || me.role}）` : '';
  }

  // Count chips like the sites' ("待核查 2"), with data-count for the tests.
  function chip(cls, label, n) {
    const c = el('span', `loop-chip ${cls}${n ? '' : ' zero'}`, `${label} ${n}`);
    c.dataset.count = String(n);
    return c;
  }

  function startViews() {
    window.addEventListener('hashchange', () => show(fromHash()));
    show(fromHash());
    setInterval(poll, POLL_MS);
    setInterval(tick, 1000);
    // The always-loaded views (the incidents' header figure), whatever view is shown.
    for (const [name, hooks] of registered) if (hooks.always && name !== current) hooks.load();
  }

  return {
    registerView,
    loaded,
    startViews,
    currentView: () => current,
    fillSites,
    siteName,
    gatewayOffset,
    wallToIso,
    isoToWall,
    gatewayToday,
    when,
    msOf,
    showError,
    refusalText,
    actorText,
    chip,
  };
})());
