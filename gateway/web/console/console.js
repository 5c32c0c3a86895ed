/* Duty-room console of the safety gateway: the page's entry. Owns drawing the whole page from
 * what it knows (render: the alarm table, the device grid, the connection, the counts, the
 * critical flash, the sound, the title, and `window.__consoleState` for the browser tests),
 * the once-a-second tick, and starting everything.
 *
 * Plain browser JavaScript, no framework and no build step; every asset comes from the
 * gateway. The page's scripts, in the order index.html loads them: shared/common.js (words,
 * formatting), shared/live.js (API, live feed), shared/session.js (who is logged in),
 * shared/clock.js (the gateway's clock),
 * shared/tiles.js (a device tile's words); then state.js (what the page knows), alarms.js (the
 * alarm table), devices.js (the device grid), sound.js, dialogs.js (ack and close),
 * connection.js (the live updates), and this one last. State arrives over WS /api/live;
 * people's actions go to the HTTP API. All text from the gateway is written with textContent.
 */
'use strict';

(() => {
  const { $ } = window.SafetyUi;
  const C = window.SafetyConsole;
  const { S, feed } = C;

  let renderTimer = null;
  function scheduleRender() {
    if (renderTimer === null) renderTimer = setTimeout(render, 100);
  }

  // Alarm changes render at once (they start and stop the sound); everything is redrawn
  // from the state maps, rows and tiles are kept and updated in place.
  function render() {
    clearTimeout(renderTimer);
    renderTimer = null;
    const alarms = [...S.alarms.values()].sort(C.compareAlarms);
    const unackedCritical = alarms.filter((a) => a.severity === 'critical' && !a.acked).length;
    const unacked = alarms.filter((a) => !a.acked).length;
    C.renderAlarms(alarms);
    C.renderRecent();
    C.renderDevices();
    C.renderConnection();

    $('sum-open').textContent = String(alarms.length);
    $('sum-critical').textContent = String(alarms.filter((a) => a.severity === 'critical').length);
    $('sum-unacked').textContent = String(unacked);
    $('alarm-count').textContent = String(alarms.length);
    $('critical-count').textContent = String(unackedCritical);
    $('critical-flash').hidden = unackedCritical === 0;

    // A refused session with nothing on the screen: to the login page, and back here after.
    // With alarms open the page stays, banner and sound: a console that quietly turned into
    // a login form would leave an alarm sounding nowhere.
    if (S.authFailed && alarms.length === 0 && !S.leaving) {
      S.leaving = true;
      window.SafetySession.goLogin();
    }
    $('logged-out').hidden = !S.authFailed || S.leaving;

    const sound = C.renderSound(unackedCritical, C.downForMs());
    document.title = unackedCritical > 0 ? `【紧急 ${unackedCritical}】值班室安全监控台` : '值班室安全监控台';

    window.__consoleState = {
      connected: feed.live,
      alarms: alarms.length,
      unackedCritical,
      unacked,
      audioArmed: sound.armed,
      sounding: sound.sounding,
      linkLostSounding: sound.linkLostSounding,
      devices: S.devices.size,
      snapshots: S.snapshots,
      reconnectAttempts: feed.attempt,
      loggedOut: S.authFailed,
      person: (window.SafetySession.person() || {}).login || null,
    };
  }

  // Once a second: durations, "last seen", the clock, the reconnect countdown.
  function tick() {
    window.SafetyClock.show();
    C.tickAlarms();
    C.tickDevices();
    if (!feed.live) render(); // countdown, and the link-lost sound after a minute
  }

  Object.assign(C, { render, scheduleRender });

  function sessionRefused() {
    S.authFailed = true;
    render();
  }

  function start() {
    $('login-again').href = window.SafetySession.loginUrl();
    window.SafetySession.onPerson(() => render());
    window.SafetySession.start({ onRefused: sessionRefused });
    C.bindDialogs();
    C.bindSound();
    render();
    tick();
    setInterval(tick, 1000);
    C.startLive();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
