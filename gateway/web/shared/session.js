/* Shared by the duty console (/) and the bureau page (/bureau): who is logged in. Asks
 * GET /api/me when the page starts and every `everyMs` after (a session ended elsewhere, by a
 * logout in another tab, a password change or the idle limit, shows itself within that
 * long), shows the person and the 退出登录 button in the top bar (`#who`), and hands a refused
 * session (401 from any request, or the live feed closing with 4401) to the page's
 * `onRefused` once: the bureau page goes to the login page, the duty console decides by what
 * it is showing. With no accounts (the local operator, `via: local`) nothing is ever refused
 * and the top bar shows nobody. Loaded after live.js; defines `window.SafetySession`.
 */
'use strict';

window.SafetySession = (() => {
  const { api, onRefused: onApiRefused } = window.SafetyLive;
  const $ = (id) => document.getElementById(id);

  let me = null; // the last GET /api/me answer
  let refused = false;
  let onRefused = () => goLogin();
  const listeners = [];

  // Back to this page (and its #hash) after logging in.
  function loginUrl() {
    const here = window.location.pathname + window.location.hash;
    return `/login?next=${encodeURIComponent(here)}`;
  }

  function goLogin() {
    window.location.assign(loginUrl());
  }

  function refuse() {
    if (refused) return;
    refused = true;
    onRefused();
  }

  // -> 'ok' | 'refused' | 'unreachable'
  async function check() {
    const res = await api('/api/me', { timeoutMs: 5000, quietRefusal: true });
    if (res.ok && res.body && typeof res.body.login === 'string') {
      me = res.body;
      renderWho();
      for (const fn of listeners) fn(me);
      return 'ok';
    }
    if (res.status === 401) {
      refuse();
      return 'refused';
    }
    return 'unreachable';
  }

  function renderWho() {
    const box = $('who');
    if (!box) return;
    const shown = !!me && me.via === 'session';
    box.hidden = !shown;
    if (!shown) return;
    $('who-name').textContent = me.name;
    $('who-role').textContent = me.role_label || me.role;
  }

  async function logout() {
    const button = $('logout');
    button.disabled = true;
    const res = await api('/api/logout', { method: 'POST', body: {}, quietRefusal: true });
    // 401: the session had already ended; the login page is where to go either way.
    if (res.ok || res.status === 401) {
      window.location.assign('/login');
      return;
    }
    button.disabled = false;
    button.textContent = '退出失败，请重试';
  }

  // `onRefused`: what the page does when the gateway no longer knows its session.
  function start({ onRefused: handler, everyMs = 10000 } = {}) {
    if (handler) onRefused = handler;
    onApiRefused(() => refuse());
    const button = $('logout');
    if (button) button.addEventListener('click', logout);
    check();
    setInterval(() => {
      if (!refused) check();
    }, everyMs);
  }

  return Object.freeze({
    start,
    check,
    refuse,
    goLogin,
    loginUrl,
    onPerson: (fn) => listeners.push(fn),
    person: () => me,
    // The local operator (no accounts): dialogs ask for a name, as before accounts existed.
    isLocal: () => !me || me.via === 'local',
    isRefused: () => refused,
  });
})();
