/* Shared by the duty console (/) and the bureau page (/bureau): what a device's tile says —
 * its class, its status and type in words, its values (a valve's position in words, any other
 * quantity with its unit), its open alarms and when it was last heard from. Each page builds
 * and places its tiles itself (the console keeps and updates them, the bureau's detail panel
 * draws them anew). Plain browser JavaScript, loaded after common.js and before either page's
 * own scripts; it defines `window.SafetyTiles` and nothing else.
 */
'use strict';

window.SafetyTiles = (() => {
  const { DEVICE_TYPES, DEVICE_STATUS, el, quantityInfo, fmtQuantity, fmtWallClock, typeLabel } = window.SafetyUi;

  const tileClass = (d, alarms) => `tile status-${d.status}${alarms.length ? ' has-alarm' : ''}`;
  const statusText = (d) => DEVICE_STATUS[d.status] || d.status;
  const typeText = (d) => `${DEVICE_TYPES[d.type] || d.type} · ${d.name || d.id}`;
  const alarmText = (alarms) => `报警：${alarms.map((a) => typeLabel(a.type)).join('、')}`;
  const seenText = (ago) => `最后通信：${ago}`;

  // One row per value (or a row saying there is none); with `measuredAt`, each row's title
  // says when its value was measured.
  function valueRows(d, { measuredAt = false } = {}) {
    const rows = [];
    for (const [name, value] of Object.entries(d.values || {})) {
      const row = el('div', 'tile-value');
      row.dataset.quantity = name;
      if (name === 'open') {
        row.append(el('span', '', '阀门'), el('b', value === 0 ? 'valve-closed' : 'valve-open', value === 0 ? '已关闭' : '开启'));
      } else {
        row.append(el('span', '', quantityInfo(name).label), el('b', '', fmtQuantity(name, value)));
      }
      if (measuredAt && d.values_at && d.values_at[name]) row.title = `测量时间 ${fmtWallClock(d.values_at[name])}`;
      rows.push(row);
    }
    if (!rows.length) rows.push(el('div', 'muted', '暂无数据'));
    return rows;
  }

  return Object.freeze({ tileClass, statusText, typeText, alarmText, seenText, valueRows });
})();
