/* County bureau overview of the safety gateway, every site at a glance: the page's entry.
 * Owns drawing the page from what it knows (render: the summary, the site table, the
 * connection, the sort headers, and `window.__bureauState` for the browser tests), the
 * once-a-second tick, and starting everything.
 *
 * Plain browser JavaScript like the duty console (no framework, no build step; every asset
 * comes from the gateway). The page's scripts, in the order index.html loads them:
 * shared/common.js (words, formatting), shared/live.js (API, live feed), shared/session.js (who
 * is logged in), shared/clock.js (the gateway's clock), shared/tiles.js (a device tile's
 * words); then state.js (what the page knows), sites.js (the summary and the site table),
 * detail.js (a site's detail panel), refresh.js (the overview's refreshes, the live feed and
 * the session), views.js (the views: 场所 and the closed loop's, in the address), ledger.js,
 * notices.js, incidents.js, checks.js (the closed loop's views), and this one last. All text from the gateway is written with textContent.
 */
'use strict';

(() => {
  const { $ } = window.SafetyUi;
  const B = window.SafetyBureau;
  const { S, feed } = B;

  function render() {
    B.renderSummary();
    B.renderRows();
    B.renderConnection();
    B.renderSortHeaders();
    publishState();
  }

  // For people debugging the page, and for the browser tests.
  function publishState() {
    window.__bureauState = {
      live: feed.live,
      pollOk: S.pollOk,
      authFailed: S.authFailed,
      refreshes: S.refreshes,
      refreshesBy: { ...S.refreshesBy },
      requested: S.refreshSeq,
      answered: S.appliedSeq,
      sites: S.overview ? S.overview.sites.length : 0,
      sort: S.sort,
      reverse: S.reverse,
      kind: S.kind,
      detail: S.detail.siteId,
      detailLoads: S.detail.loads,
      order: S.overview ? [...$('site-rows').children].map((tr) => tr.dataset.site) : [],
    };
  }

  // Once a second: waiting times, "last contact", the clock.
  function tick() {
    window.SafetyClock.show();
    B.tickSites();
    B.tickDetail();
  }

  Object.assign(B, { render, publishState });

  function start() {
    B.bindSites();
    B.bindDetail();
    render();
    tick();
    setInterval(tick, 1000);
    B.startRefreshing();
    B.startViews();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
