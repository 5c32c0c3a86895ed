/* Shared by the duty console (/) and the bureau page (/bureau): how a page talks to the
 * gateway. `api` calls the HTTP API with the browser's session cookie and answers every
 * failure as a value (`unreachableText` puts the usual one in words); a 401 is also told to
 * the page's `onRefused` hook (session.js decides what a page does then); `LiveFeed` keeps
 * one WebSocket to /api/live (the browser sends the cookie with it), reconnecting with
 * capped, jittered backoff. Plain browser JavaScript, loaded before either page's own
 * scripts; it defines `window.SafetyLive` and nothing else.
 */
'use strict';

window.SafetyLive = (() => {
  // Tokens are for scripts (the Authorization header), never in a page's address: one
  // there would stay in the history and in bookmarks. A page opened with one (an old
  // bookmark) drops it from the address and logs in instead.
  (() => {
    const url = new URL(window.location.href);
    if (url.searchParams.has('token')) {
      url.searchParams.delete('token');
      window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    }
  })();

  // Called with the response of every request the gateway refused with 401.
  let refusedHook = () => {};
  const onRefused = (hook) => {
    refusedHook = hook;
  };

  // ------------------------------------------------------------------ HTTP
  // -> { ok, status, body, headers }; status 0 when the gateway could not be reached.
  async function api(path, options = {}) {
    const headers = { accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), options.timeoutMs || 8000);
    try {
      const response = await fetch(path, {
        method: options.method || 'GET',
        headers,
        body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'same-origin',
      });
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = null;
      }
      const res = { ok: response.ok, status: response.status, body, headers: response.headers };
      if (res.status === 401 && !options.quietRefusal) refusedHook(res);
      return res;
    } catch (err) {
      const aborted = err && err.name === 'AbortError';
      return { ok: false, status: 0, body: { error: aborted ? '请求超时' : '网络错误' } };
    } finally {
      clearTimeout(timer);
    }
  }

  // A request that never reached the gateway (status 0), in words.
  const unreachableText = (res) => `无法连接网关（${(res.body && res.body.error) || '网络错误'}）`;

  // ------------------------------------------------------------------ live feed
  function liveUrl() {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${window.location.host}/api/live`;
  }

  // 0.5 s, 1 s, 2 s, ... doubling `doublings` times at most, never over `capMs`; with some
  // jitter so that many pages do not all knock at the same moment after a gateway restart.
  function backoffMs(attempt, capMs, doublings) {
    const base = Math.min(capMs, 500 * 2 ** Math.min(attempt, doublings));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  // The page's one connection to WS /api/live. The gateway first sends a snapshot, then
  // changes; `live` is true once the snapshot of the current connection has arrived. Every
  // parsed message goes to `onMessage`; a lost connection to `onClose(event, hadSnapshot)`,
  // after the next attempt is scheduled `delayMs(attempt)` later (attempts count from the
  // last snapshot).
  class LiveFeed {
    constructor({ onMessage, onClose = () => {}, delayMs, openTimeoutMs = 10000 }) {
      this._onMessage = onMessage;
      this._onClose = onClose;
      this._delayMs = delayMs;
      this._openTimeoutMs = openTimeoutMs;
      this._ws = null;
      this._live = false;
      this._attempt = 0;
      this._timer = null;
      this._reconnectAt = 0;
    }

    get live() {
      return this._live;
    }

    get connecting() {
      return this._ws !== null;
    }

    get waiting() {
      return this._timer !== null;
    }

    get attempt() {
      return this._attempt;
    }

    get reconnectAt() {
      return this._reconnectAt;
    }

    connect() {
      clearTimeout(this._timer);
      this._timer = null;
      if (this._ws) return;
      let ws;
      try {
        ws = new WebSocket(liveUrl());
      } catch (_) {
        this._scheduleReconnect();
        return;
      }
      this._ws = ws;
      // A connection that neither opens nor delivers its snapshot in time is given up.
      const openTimer = setTimeout(() => {
        if (this._ws === ws && !this._live) ws.close();
      }, this._openTimeoutMs);
      ws.onmessage = (event) => {
        if (this._ws !== ws) return;
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        if (msg.kind === 'snapshot') {
          this._live = true;
          this._attempt = 0;
        }
        this._onMessage(msg);
      };
      ws.onclose = (event) => {
        clearTimeout(openTimer);
        if (this._ws !== ws) return;
        this._ws = null;
        const hadSnapshot = this._live;
        this._live = false;
        this._scheduleReconnect();
        this._onClose(event, hadSnapshot);
      };
      ws.onerror = () => {
        /* onclose follows and handles it */
      };
    }

    // Drop the connection (its close no longer counts) and open a new one at once.
    // -> whether the dropped one was live.
    reconnectNow() {
      if (this._ws) {
        const ws = this._ws;
        this._ws = null;
        ws.close();
      }
      const wasLive = this._live;
      this._live = false;
      clearTimeout(this._timer);
      this._timer = null;
      this.connect();
      return wasLive;
    }

    _scheduleReconnect() {
      if (this._timer) return;
      const delay = this._delayMs(this._attempt);
      this._attempt += 1;
      this._reconnectAt = Date.now() + delay;
      this._timer = setTimeout(() => {
        this._timer = null;
        this.connect();
      }, delay);
    }
  }

  // A refusal's `detail` in words: a string as it is, pydantic's list as "where message".
  function describeDetail(detail) {
    if (detail === null || detail === undefined || detail === '') return '';
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d && d.msg ? `${d.loc || ''} ${d.msg}`.trim() : JSON.stringify(d))).join('；');
    }
    return JSON.stringify(detail);
  }

  return Object.freeze({ api, onRefused, unreachableText, describeDetail, backoffMs, LiveFeed });
})();
