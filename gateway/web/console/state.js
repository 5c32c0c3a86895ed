/* Duty console: what the page knows. `S` holds the open alarms, the devices and sites, the
 * recently closed alarms and the state of the connection, plus the DOM nodes kept to be
 * updated in place (each drawn by the module that owns it). Loaded first of the console's own
 * scripts; defines `window.SafetyConsole`, the namespace the console's other scripts add
 * their functions to (each calls the others' through it, at call time).
 */
'use strict';

window.SafetyConsole = (() => {
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
    authFailed: false, // the session was refused (latched: until someone logs in again)
    leaving: false, // on the way to the login page
    forbidden: false, // the gateway answers 403: the person may read no site here
  };

  const deviceKey = (site, device) => `${site}/${device}`;
  const siteName = (id) => (S.sites.get(id) && S.sites.get(id).name) || id;

  return { S, deviceKey, siteName };
})();
