/* Shared by the duty console (/) and the bureau page (/bureau): the gateway's clock as the
 * page knows it. The gateway's time may differ from the browser's (`learnSkew`), and the
 * page's clock (`#clock`) shows the gateway's zone, learnt from the times it writes
 * (`learnZone`); `now()` and `ago()` count durations and "… ago" on the gateway's clock.
 * Plain browser JavaScript, loaded after common.js and before either page's own scripts; it
 * defines `window.SafetyClock` and nothing else.
 */
'use strict';

window.SafetyClock = (() => {
  const { fmtAgo, fmtClock, zoneOffsetOf } = window.SafetyUi;
  let skewMs = 0; // gateway clock minus browser clock, when they differ noticeably
  let zoneOffsetMin = null; // the gateway's UTC offset (its times carry it), for the clock

  const now = () => Date.now() + skewMs;

  // The gateway's time `gatewayMs`, read just now: a difference within `toleranceMs` (the
  // resolution of where it was read) counts as none.
  function learnSkew(gatewayMs, toleranceMs) {
    const skew = gatewayMs - Date.now();
    skewMs = Math.abs(skew) > toleranceMs ? skew : 0;
  }

  // Show the time on the page's clock.
  function show() {
    document.getElementById('clock').textContent = fmtClock(now(), zoneOffsetMin);
  }

  function learnZone(iso) {
    const offset = zoneOffsetOf(iso);
    if (offset === null) return;
    zoneOffsetMin = offset;
    show();
  }

  const ago = (iso) => fmtAgo(iso, now());

  return Object.freeze({ now, learnSkew, learnZone, show, ago });
})();
