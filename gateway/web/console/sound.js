/* Duty console: the sound. Web Audio only (no audio files): oscillator beep patterns — a
 * repeating alarm while a critical alarm is unacknowledged, a low tone every 10 s once the
 * live feed has been lost for a minute. Browsers allow sound only after a user gesture, hence
 * the banner asking for a click; this module owns the banner, the "sound on" line and the
 * test button too.
 */
'use strict';

Object.assign(window.SafetyConsole, (() => {
  const { $ } = window.SafetyUi;
  const C = window.SafetyConsole;

  const audio = {
    ctx: null,
    timer: null, // pattern repeat for critical alarms
    linkTimer: null, // pattern repeat for a lost connection
    nodes: new Set(),
  };

  function audioArmed() {
    return !!audio.ctx && audio.ctx.state === 'running';
  }

  async function armAudio() {
    try {
      if (!audio.ctx) {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) {
          C.toast('此浏览器不支持声音报警，请留意闪烁提示', true);
          return;
        }
        audio.ctx = new Ctx();
        audio.ctx.onstatechange = () => C.render();
      }
      if (audio.ctx.state !== 'running') await audio.ctx.resume();
    } catch (_) {
      /* stays unarmed: the banner remains */
    }
    if (audioArmed()) beepPattern([[880, 0, 0.12]], 0.15); // a short confirmation blip
    C.render();
  }

  // tones: [frequency Hz, start s, length s]
  function beepPattern(tones, volume) {
    const ctx = audio.ctx;
    if (!ctx || ctx.state !== 'running') return;
    const t0 = ctx.currentTime + 0.02;
    for (const [freq, start, length] of tones) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0, t0 + start);
      gain.gain.linearRampToValueAtTime(volume, t0 + start + 0.01);
      gain.gain.setValueAtTime(volume, t0 + start + length - 0.02);
      gain.gain.linearRampToValueAtTime(0, t0 + start + length);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + start);
      osc.stop(t0 + start + length + 0.01);
      audio.nodes.add(osc);
      osc.onended = () => {
        audio.nodes.delete(osc);
        gain.disconnect();
      };
    }
  }

  function silence() {
    for (const osc of audio.nodes) {
      try {
        osc.stop();
      } catch (_) {
        /* already stopped */
      }
    }
    audio.nodes.clear();
  }

  // Critical: two alternating tones three times, then a pause; repeats every 2 s.
  const CRITICAL_PATTERN = [
    [960, 0.0, 0.18], [770, 0.2, 0.18],
    [960, 0.4, 0.18], [770, 0.6, 0.18],
    [960, 0.8, 0.18], [770, 1.0, 0.18],
  ];
  // Monitoring lost for a minute: one low tone every 10 s (the console itself is blind).
  const LINK_PATTERN = [[440, 0, 0.35], [330, 0.45, 0.5]];
  const LINK_LOST_ALARM_MS = 60000;

  // `downForMs`: how long the live feed has been lost after having worked (null: it has not).
  function updateSound(unackedCritical, downForMs) {
    const wantCritical = audioArmed() && unackedCritical > 0;
    if (wantCritical && !audio.timer) {
      beepPattern(CRITICAL_PATTERN, 0.25);
      audio.timer = setInterval(() => beepPattern(CRITICAL_PATTERN, 0.25), 2000);
    } else if (!wantCritical && audio.timer) {
      clearInterval(audio.timer);
      audio.timer = null;
      silence();
    }
    const linkLost = audioArmed() && downForMs !== null && downForMs > LINK_LOST_ALARM_MS;
    if (linkLost && !audio.linkTimer) {
      beepPattern(LINK_PATTERN, 0.2);
      audio.linkTimer = setInterval(() => beepPattern(LINK_PATTERN, 0.2), 10000);
    } else if (!linkLost && audio.linkTimer) {
      clearInterval(audio.linkTimer);
      audio.linkTimer = null;
    }
    return { sounding: !!audio.timer, linkLostSounding: !!audio.linkTimer };
  }

  // The banner and the sound line, then the sound itself. -> { armed, sounding, linkLostSounding }
  function renderSound(unackedCritical, downForMs) {
    const armed = audioArmed();
    const banner = $('sound-banner');
    banner.hidden = armed;
    banner.classList.toggle('urgent', unackedCritical > 0);
    const soundText = $('sound-text');
    soundText.textContent = armed ? '声音报警已启用' : '声音报警未启用';
    soundText.className = armed ? 'sound-on' : 'muted';
    $('sound-test').hidden = !armed;
    return { armed, ...updateSound(unackedCritical, downForMs) };
  }

  function bindSound() {
    $('sound-banner').addEventListener('click', armAudio);
    $('sound-test').addEventListener('click', () => beepPattern(CRITICAL_PATTERN.slice(0, 2), 0.25));
    // Any click on the page may also unlock sound (the browser allows it on any gesture).
    document.addEventListener('pointerdown', () => {
      if (audio.ctx && audio.ctx.state !== 'running') armAudio();
    });
  }

  return { renderSound, bindSound };
})());
