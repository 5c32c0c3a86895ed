/* Duty console: acknowledging and closing an alarm. Owns the two dialogs the rows' buttons
 * open (note, disposition; the alarm's summary kept current while open), the POST to
 * /api/alarms/{id}/ack|close with its refusal in words a duty officer can act on, and the
 * toast that confirms an action. Who acted is the logged-in person (the gateway records
 * them, a typed name would only be a note): the dialogs show who that is. Only the local
 * operator (no accounts) types a name, remembered for the next dialog.
 */
'use strict';

Object.assign(window.SafetyConsole, (() => {
  const { $, el, fmtWallClock, typeLabel, severityLabel, stateLabel, alarmValue } = window.SafetyUi;
  const { api, unreachableText, describeDetail } = window.SafetyLive;
  const C = window.SafetyConsole;
  const { S, siteName } = C;
  const HTTP_STATUS = {
    400: '请求不适用',
    401: '登录已失效，请重新登录',
    403: '无权限',
    404: '报警不存在',
    409: '当前状态不允许此操作',
    422: '输入无效',
  };
  const OPERATOR_KEY = 'safety-console.operator';

  // What went wrong, in words a duty officer can act on, with the gateway's own message.
  function errorText(res) {
    if (res.status === 0) return `${unreachableText(res)}，请稍后重试`;
    const head = `操作被拒绝（${res.status}${HTTP_STATUS[res.status] ? ' ' + HTTP_STATUS[res.status] : ''}）`;
    const body = res.body || {};
    const msg = [body.error, describeDetail(body.detail)].filter(Boolean).join('：');
    return msg ? `${head}：${msg}` : head;
  }

  const dialogs = {
    ack: { dialog: null, alarmId: null },
    close: { dialog: null, alarmId: null },
  };

  function summaryNodes(a) {
    if (!a) return [el('div', 'dialog-info', '此报警已关闭或已不在列表中')];
    const value = alarmValue(a, a.value);
    return [
      el('div', '', `${severityLabel(a.severity)} · ${typeLabel(a.type)} · ${stateLabel(a).text}`),
      el('div', 'sub', `${siteName(a.site)} ${a.location || ''} · ${a.device}${value ? ' · ' + value : ''}`),
      el('div', 'sub', `发生于 ${fmtWallClock(a.raised_at)}`),
    ];
  }

  // The last operator's name, so that the next dialog is quicker (storage may be refused).
  function rememberedOperator() {
    try {
      return localStorage.getItem(OPERATOR_KEY) || '';
    } catch (_) {
      return '';
    }
  }

  function rememberOperator(name) {
    try {
      localStorage.setItem(OPERATOR_KEY, name);
    } catch (_) {
      /* not remembered: the dialog asks again */
    }
  }

  function showDialogError(kind, text) {
    const box = $(`${kind}-error`);
    box.textContent = text || '';
    box.hidden = !text;
  }

  // The logged-in person acts; the local operator names who acts.
  function showActor(kind) {
    const session = window.SafetySession;
    const asks = session.isLocal();
    $(`${kind}-by-row`).hidden = !asks;
    const actor = $(`${kind}-actor`);
    actor.hidden = asks;
    if (!asks) {
      const p = session.person();
      actor.textContent = `操作人：${p.name}（${p.role_label || p.role}）`;
    }
    return asks;
  }

  function openDialog(kind, alarmId) {
    const d = dialogs[kind];
    d.alarmId = alarmId;
    const form = $(`${kind}-form`);
    form.reset();
    const asks = showActor(kind);
    $(`${kind}-by`).value = asks ? rememberedOperator() : '';
    $(`${kind}-submit`).disabled = false;
    showDialogError(kind, '');
    $(`${kind}-summary`).replaceChildren(...summaryNodes(S.alarms.get(alarmId)));
    if (kind === 'ack') {
      // Only a critical alarm opens an incident (seed 003); the box says so by being there.
      const a = S.alarms.get(alarmId);
      $('ack-real-row').hidden = !a || a.severity !== 'critical';
    }
    d.dialog.showModal();
    const by = $(`${kind}-by`);
    (!asks || by.value ? (kind === 'ack' ? $('ack-submit') : $('close-disposition')) : by).focus();
  }

  // An open dialog's summary follows its alarm (or says it has gone).
  function refreshDialogs() {
    for (const kind of ['ack', 'close']) {
      const d = dialogs[kind];
      if (d.dialog && d.dialog.open) $(`${kind}-summary`).replaceChildren(...summaryNodes(S.alarms.get(d.alarmId)));
    }
  }

  async function submitDialog(kind) {
    const d = dialogs[kind];
    const asks = showActor(kind);
    const by = $(`${kind}-by`).value.trim();
    const note = $(`${kind}-note`).value.trim();
    if (asks && !by) {
      showDialogError(kind, kind === 'ack' ? '请填写值班人员姓名' : '请填写处置人员姓名');
      $(`${kind}-by`).focus();
      return;
    }
    const body = asks ? { by, note } : { note };
    if (kind === 'ack' && !$('ack-real-row').hidden && $('ack-real').checked) body.real = true;
    if (kind === 'close') {
      const disposition = $('close-disposition').value;
      if (!disposition) {
        showDialogError(kind, '请选择处置结论');
        $('close-disposition').focus();
        return;
      }
      body.disposition = disposition;
    }
    showDialogError(kind, '');
    const submit = $(`${kind}-submit`);
    submit.disabled = true;
    const res = await api(`/api/alarms/${encodeURIComponent(d.alarmId)}/${kind}`, { method: 'POST', body });
    submit.disabled = false;
    if (!res.ok) {
      showDialogError(kind, errorText(res));
      return;
    }
    if (asks) rememberOperator(by);
    d.dialog.close();
    if (res.body && res.body.id) C.applyAlarm(res.body);
    const a = res.body || {};
    const opened = a.incident ? '，已开启事件（见“事件”）' : '';
    toast(`${kind === 'ack' ? '已确认' : '已关闭'}：${typeLabel(a.type)} ${a.location || a.device || ''}${opened}`);
    C.render();
  }

  let toastTimer = null;
  function toast(text, isError = false) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('error', isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      t.hidden = true;
    }, 4000);
  }

  // The dialogs' forms, and the rows' ack and close buttons that open them.
  function bindDialogs() {
    dialogs.ack.dialog = $('ack-dialog');
    dialogs.close.dialog = $('close-dialog');
    for (const kind of ['ack', 'close']) {
      $(`${kind}-form`).addEventListener('submit', (event) => {
        event.preventDefault();
        submitDialog(kind);
      });
      dialogs[kind].dialog.querySelector('[data-cancel]').addEventListener('click', () => dialogs[kind].dialog.close());
    }
    $('alarm-rows').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button || button.disabled) return;
      const tr = button.closest('tr[data-alarm-id]');
      if (tr) openDialog(button.dataset.action, tr.dataset.alarmId);
    });
  }

  return { refreshDialogs, toast, bindDialogs };
})());
