/* The login page (/login): login name and password to POST /api/login, which sets the session
 * cookie; then on to `?next=` (the page that sent the person here) or the person's own page.
 * Every refusal in words: a wrong password, a locked account (with how long, from
 * Retry-After), an unreachable gateway. Plain browser JavaScript, no framework, nothing
 * from outside the gateway.
 */
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const BUREAU_ROLES = new Set(['bureau', 'bureau_leader']);

  // Only a path of this gateway: `next` comes from the address, which anyone can write, and
  // sending a person on to a look-alike site right after they typed their password is the
  // oldest trick there is. `//host` and `/\host` are other hosts to a browser.
  function safeNext(raw) {
    if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) {
      return null;
    }
    try {
      const url = new URL(raw, window.location.origin);
      if (url.origin !== window.location.origin) return null;
      // Back to the login page would go round in circles once logged in.
      if (url.pathname === '/login' || url.pathname.startsWith('/login/')) return null;
      return url.pathname + url.search + url.hash;
    } catch (_) {
      return null;
    }
  }

  const params = new URLSearchParams(window.location.search);
  const next = safeNext(params.get('next'));

  // Where a person goes: where they came from; else the bureau's staff to their overview,
  // everyone else to the duty console.
  function destination(role) {
    if (next && next !== '/') return next;
    return BUREAU_ROLES.has(role) ? '/bureau' : '/';
  }

  async function request(path, options = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 15000);
    try {
      const response = await fetch(path, {
        method: options.method || 'GET',
        headers: options.body
          ? { accept: 'application/json', 'content-type': 'application/json' }
          : { accept: 'application/json' },
        body: options.body ? JSON.stringify(options.body) : undefined,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal,
      });
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = null;
      }
      return { status: response.status, body, headers: response.headers };
    } catch (err) {
      return { status: 0, body: null, timedOut: !!err && err.name === 'AbortError' };
    } finally {
      clearTimeout(timer);
    }
  }

  function showError(text) {
    const box = $('error');
    box.textContent = text || '';
    box.hidden = !text;
  }

  // Retry-After is in seconds; people think in whole minutes, rounded up.
  function lockedText(headers) {
    const seconds = Number(headers.get('retry-after'));
    if (!Number.isFinite(seconds) || seconds <= 0) return '登录失败次数过多，请稍后再试';
    return `登录失败次数过多，请 ${Math.max(1, Math.ceil(seconds / 60))} 分钟后再试`;
  }

  function refusalText(res) {
    if (res.status === 0) {
      return res.timedOut ? '网关没有响应，请检查网络后重试' : '无法连接网关，请检查网络后重试';
    }
    if (res.status === 401) return '用户名或密码错误';
    if (res.status === 429) return lockedText(res.headers);
    if (res.status === 422 || res.status === 400) return '请输入有效的用户名和密码';
    return `登录失败（网关返回 ${res.status}），请稍后重试`;
  }

  let busy = false;
  async function submit(event) {
    event.preventDefault();
    if (busy) return;
    const login = $('login').value.trim();
    const password = $('password').value;
    if (!login || !password) {
      showError(!login ? '请输入用户名' : '请输入密码');
      (!login ? $('login') : $('password')).focus();
      return;
    }
    busy = true;
    const button = $('submit');
    button.disabled = true;
    button.textContent = '正在登录…';
    showError('');
    const res = await request('/api/login', { method: 'POST', body: { login, password } });
    if (res.status === 200 && res.body) {
      window.location.assign(destination(res.body.role));
      return;
    }
    busy = false;
    button.disabled = false;
    button.textContent = '登录';
    showError(refusalText(res));
    $('password').value = '';
    $('password').focus();
    window.__loginState = { attempts: (window.__loginState.attempts || 0) + 1, status: res.status };
  }

  // Already logged in (or no accounts at all: the local operator): nothing to do here.
  async function start() {
    window.__loginState = { attempts: 0, status: null };
    $('login-form').addEventListener('submit', submit);
    if (params.has('next')) {
      const notice = $('notice');
      notice.textContent = '请登录后继续';
      notice.hidden = false;
    }
    const res = await request('/api/me');
    if (res.status === 200 && res.body && (res.body.via === 'session' || res.body.via === 'local')) {
      window.location.replace(destination(res.body.role));
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
