/* Duty console: the device grid — one section per site (in the configured order) with a tile
 * per device saying its status, values, open alarms and when it was last heard from. Tiles
 * and sections are kept and updated in place; what a tile says is shared with the bureau page
 * (shared/tiles.js).
 */
'use strict';

Object.assign(window.SafetyConsole, (() => {
  const { DEVICE_STATUS, $, el, fmtWallClock } = window.SafetyUi;
  const { tileClass, statusText, typeText, alarmText, seenText, valueRows } = window.SafetyTiles;
  const { ago } = window.SafetyClock;
  const { S, deviceKey, siteName } = window.SafetyConsole;

  function siteSection(siteId) {
    let s = S.siteSections.get(siteId);
    if (!s) {
      const section = el('section', 'site-devices');
      section.dataset.site = siteId;
      const h = el('h3');
      const title = el('span', 'site-title');
      const counts = el('span', 'site-counts');
      h.append(title, counts);
      const grid = el('div', 'device-grid');
      section.append(h, grid);
      s = { section, title, counts, grid };
      S.siteSections.set(siteId, s);
    }
    return s;
  }

  function renderDevices() {
    const container = $('device-sites');
    const bySite = new Map();
    for (const d of S.devices.values()) {
      if (!bySite.has(d.site)) bySite.set(d.site, []);
      bySite.get(d.site).push(d);
    }
    const alarmsByDevice = new Map();
    for (const a of S.alarms.values()) {
      const key = deviceKey(a.site, a.device);
      if (!alarmsByDevice.has(key)) alarmsByDevice.set(key, []);
      alarmsByDevice.get(key).push(a);
    }
    // Sites in the configured order, then any the site list does not (yet) name.
    const order = [...S.sites.keys()].filter((id) => bySite.has(id));
    for (const id of bySite.keys()) if (!order.includes(id)) order.push(id);

    for (const [id, s] of S.siteSections) {
      if (!bySite.has(id)) {
        s.section.remove();
        S.siteSections.delete(id);
      }
    }
    const seen = new Set();
    order.forEach((siteId, i) => {
      const s = siteSection(siteId);
      const devices = bySite.get(siteId);
      const counts = { online: 0, offline: 0, fault: 0, unknown: 0 };
      devices.forEach((d, j) => {
        const key = deviceKey(d.site, d.id);
        seen.add(key);
        counts[d.status] = (counts[d.status] || 0) + 1;
        let tile = S.tiles.get(key);
        if (!tile) {
          tile = createTile(key);
          S.tiles.set(key, tile);
        }
        fillTile(tile, d, alarmsByDevice.get(key) || []);
        if (s.grid.children[j] !== tile) s.grid.insertBefore(tile, s.grid.children[j] || null);
      });
      s.title.textContent = siteName(siteId);
      s.counts.textContent = ['online', 'offline', 'fault', 'unknown']
        .filter((k) => counts[k])
        .map((k) => `${DEVICE_STATUS[k]} ${counts[k]}`)
        .join(' · ');
      if (container.children[i] !== s.section) container.insertBefore(s.section, container.children[i] || null);
    });
    for (const [key, tile] of S.tiles) {
      if (!seen.has(key)) {
        tile.remove();
        S.tiles.delete(key);
      }
    }
    $('no-devices').hidden = S.devices.size > 0;
    $('site-names').textContent = S.sites.size ? [...S.sites.values()].map((s) => s.name).join('、') : '—';
  }

  function createTile(key) {
    const tile = el('article', 'tile');
    tile.dataset.device = key;
    const head = el('div', 'tile-head');
    const location = el('a', 'tile-location'); // to the device's page (device.js)
    location.href = `#device=${encodeURIComponent(key).replace('%2F', '/')}`;
    location.title = '设备详情与调试';
    const status = el('span', 'status-badge');
    head.append(location, status);
    const type = el('div', 'tile-type');
    const values = el('div', 'tile-values');
    const alarm = el('div', 'tile-alarm');
    const seen = el('div', 'tile-seen');
    tile.append(head, type, values, alarm, seen);
    tile._parts = { location, status, type, values, alarm, seen };
    return tile;
  }

  function fillTile(tile, d, alarms) {
    const p = tile._parts;
    tile.className = tileClass(d, alarms);
    tile.dataset.status = d.status;
    p.location.textContent = d.location || d.id;
    p.status.className = `status-badge status-${d.status}`;
    p.status.textContent = statusText(d);
    p.type.textContent = typeText(d);
    p.values.replaceChildren(...valueRows(d, { measuredAt: true }));
    p.alarm.textContent = alarms.length ? alarmText(alarms) : '';
    p.alarm.hidden = !alarms.length;
    tile._lastSeen = d.last_seen;
    fillSeen(tile);
  }

  function fillSeen(tile) {
    const iso = tile._lastSeen;
    tile._parts.seen.textContent = seenText(ago(iso));
    tile._parts.seen.title = iso ? fmtWallClock(iso) : '';
  }

  // Once a second: "last seen".
  function tickDevices() {
    for (const tile of S.tiles.values()) fillSeen(tile);
  }

  return { renderDevices, tickDevices };
})());
