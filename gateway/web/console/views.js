/* Duty console: which view is on the screen. The page has five: 报警 (the alarm table and the
 * device grid, always live), and the closed loop's 事件, 隐患台账, 每日自查 and 值班. The view
 * is in the address (`#view=hazards`), so a reload or a bookmark comes back to it and the
 * browser's back button works; `#alarm=<id>` (the link in a group chat's message) is the
 * alarm view.
 *
 * A view's script registers itself with `C.registerView(name, {show, hide})`: `show` is
 * called each time the view comes on the screen (to load what it shows), `hide` when it
 * leaves. Whatever view is open, the critical-alarm flash and the sound stay (they are
 * outside the views), and clicking the flash goes to the alarm table.
 */
'use strict';

(() => {
  const C = window.SafetyConsole;
  // `device` is a device's commissioning page (device.js), reached from its tile.
  const NAMES = ['alarms', 'incidents', 'hazards', 'checks', 'duty', 'device'];
  const registered = new Map(); // name -> {show, hide}
  let current = null;

  function fromHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    if (params.get('device')) return 'device'; // #device=<site>/<id>
    const view = params.get('view');
    return NAMES.includes(view) ? view : 'alarms';
  }

  function show(name) {
    if (name === current) return;
    const previous = current;
    current = name;
    for (const el of document.querySelectorAll('main > .view')) {
      el.hidden = el.dataset.view !== name;
    }
    for (const link of document.querySelectorAll('nav.views a[data-view]')) {
      if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (previous && registered.has(previous) && registered.get(previous).hide) {
      registered.get(previous).hide();
    }
    if (registered.has(name)) registered.get(name).show();
    C.viewState = { view: name };
  }

  function go(name) {
    if (!NAMES.includes(name)) return;
    const hash = `#view=${name}`;
    if (window.location.hash !== hash) window.location.hash = hash; // hashchange shows it
    else show(name);
  }

  function registerView(name, hooks) {
    registered.set(name, hooks);
    if (current === name) hooks.show();
  }

  function startViews() {
    window.addEventListener('hashchange', () => show(fromHash()));
    const flash = document.getElementById('critical-flash');
    if (flash) {
      flash.style.cursor = 'pointer';
      flash.addEventListener('click', () => go('alarms'));
    }
    show(fromHash());
  }

  Object.assign(C, { registerView, showView: go, currentView: () => current, startViews });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', startViews);
  else startViews();
})();
