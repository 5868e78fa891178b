// The IKD desk's page. Every rule (NIK, names, phones, villages) is checked by the desk's Rust
// code through its JSON endpoints; this script only asks and shows.
'use strict';

const TEXTS = (() => {
  const el = document.getElementById('texts');
  return el ? JSON.parse(el.textContent) : {};
})();
function t(key, ...args) {
  let s = TEXTS[key] || key;
  for (const a of args) s = s.replace('{}', a);
  return s;
}
const $ = (id) => document.getElementById(id);
const TOKEN = (document.querySelector('meta[name="desk-token"]') || {}).content || '';

async function api(path, body) {
  const opts = body === undefined
    ? { credentials: 'same-origin' }
    : {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-desk-token': TOKEN },
        body: JSON.stringify(body),
      };
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw { message: t('j_lost') };
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw (data && data.message) ? data : { message: t('j_lost') };
  return data;
}

function say(el, text, kind) {
  el.textContent = text || '';
  el.className = 'msg' + (kind ? ' ' + kind : '') + (el.classList.contains('big') ? ' big' : '');
}
function problemText(p) {
  return p.message + (p.example ? ' (' + t('j_example') + ': ' + p.example + ')' : '');
}
function errorText(e) {
  return e.message + (e.hint ? ' ' + e.hint : '');
}

// ---------- print pages (/slip/N, /lembar) ----------
function printPage() {
  const btn = $('print-now');
  if (btn) btn.addEventListener('click', () => window.print());
  const slip = document.querySelector('.slip[data-auto="true"]');
  if (slip) window.addEventListener('load', () => setTimeout(() => window.print(), 50));
}

// ---------- the app ----------
let STATE = null;
let lastKec = '';

async function refreshState() {
  STATE = await api('/api/state');
  if (!STATE.ready || STATE.locked) return STATE;
  $('who').textContent = STATE.officer + (STATE.team ? ' · ' + STATE.team : '');
  $('nav-count').textContent = STATE.today.activated;
  showVillage(STATE.village);
  return STATE;
}

function show(view) {
  if (!STATE || !STATE.ready) view = 'setup';
  else if (STATE.locked) view = 'unlock';
  document.querySelectorAll('.view').forEach((v) => { v.hidden = v.id !== 'view-' + view; });
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('on', a.dataset.view === view));
  $('nav').hidden = view === 'setup' || view === 'unlock';
  if (view === 'setup') $('setup-officer').focus();
  if (view === 'unlock') $('unlock-pin').focus();
  if (view === 'catat') focusRecord();
  if (view === 'hari-ini') loadToday();
  if (view === 'kirim') loadSend();
  if (view === 'pengaturan') loadSettings();
}
function route() {
  const v = (location.hash || '#catat').slice(1);
  show(['catat', 'hari-ini', 'kirim', 'pengaturan'].includes(v) ? v : 'catat');
}

// --- setup ---
function formData(form) {
  const o = {};
  new FormData(form).forEach((v, k) => { o[k] = String(v); });
  return o;
}
async function setup(ev) {
  ev.preventDefault();
  const msg = $('setup-msg');
  say(msg, '');
  try {
    const r = await api('/api/setup', formData($('setup-form')));
    await refreshState();
    location.hash = '#catat';
    route();
    if (r.enrol_error) say($('record-msg'), t('j_enrol_failed') + ' ' + r.enrol_error, 'bad');
  } catch (e) {
    say(msg, errorText(e), 'bad');
  }
}

// --- the PIN ---
async function unlock(ev) {
  ev.preventDefault();
  const msg = $('unlock-msg');
  say(msg, '');
  const pin = $('unlock-pin').value;
  try {
    await api('/api/unlock', { pin });
    $('unlock-pin').value = '';
    await refreshState();
    route();
  } catch (e) {
    say(msg, errorText(e), 'bad');
    $('unlock-pin').select();
  }
}

// --- the session's village ---
function showVillage(v) {
  if (v) {
    $('desa-name').textContent = v.place;
    $('desa-picked').hidden = false;
    $('desa-search').hidden = true;
    say($('desa-msg'), '');
  } else {
    $('desa-picked').hidden = true;
    $('desa-search').hidden = false;
  }
}
let suggestions = [];
let active = -1;
let desaTimer = null;
function renderSuggestions() {
  const list = $('desa-list');
  list.innerHTML = '';
  suggestions.forEach((s, i) => {
    const li = document.createElement('li');
    li.setAttribute('role', 'option');
    li.id = 'desa-opt-' + i;
    li.textContent = s.place;
    if (i === active) { li.className = 'on'; li.setAttribute('aria-selected', 'true'); }
    li.addEventListener('mousedown', (e) => { e.preventDefault(); pickVillage(s); });
    list.appendChild(li);
  });
  list.hidden = suggestions.length === 0;
  $('desa-input').setAttribute('aria-expanded', String(!list.hidden));
}
async function searchVillage() {
  const q = $('desa-input').value.trim();
  if (q.length < 2) { suggestions = []; renderSuggestions(); return; }
  suggestions = await api('/api/desa?q=' + encodeURIComponent(q) + '&kec=' + lastKec);
  active = suggestions.length ? 0 : -1;
  renderSuggestions();
  say($('desa-msg'), suggestions.length ? '' : t('j_no_village'), suggestions.length ? '' : 'bad');
}
async function pickVillage(s) {
  try {
    const v = await api('/api/village', { code: s.code });
    STATE.village = v;
    showVillage(v);
    suggestions = [];
    renderSuggestions();
    $('nik').focus();
  } catch (e) {
    say($('desa-msg'), errorText(e), 'bad');
  }
}
function villageKeys(ev) {
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    if (!suggestions.length) return;
    ev.preventDefault();
    active = (active + (ev.key === 'ArrowDown' ? 1 : suggestions.length - 1)) % suggestions.length;
    renderSuggestions();
  } else if (ev.key === 'Enter') {
    ev.preventDefault();
    if (active >= 0 && suggestions[active]) pickVillage(suggestions[active]);
  } else if (ev.key === 'Escape') {
    suggestions = []; renderSuggestions();
  }
}

// --- NIK as it is typed ---
let nikSeq = 0;
let nikOk = false;
async function checkNik(final) {
  const raw = $('nik').value;
  const digits = raw.replace(/\s/g, '');
  const msg = $('nik-msg');
  const info = $('nik-info');
  if (!final && digits.length < 16 && /^\d*$/.test(digits)) {
    info.hidden = true;
    say(msg, digits.length ? digits.length + '/16' : '', 'quiet');
    nikOk = false;
    return;
  }
  const mine = ++nikSeq;
  const r = await api('/api/nik?nik=' + encodeURIComponent(raw));
  if (mine !== nikSeq) return;
  nikOk = r.ok && !r.duplicate;
  $('nik').classList.toggle('bad', !r.ok || !!r.duplicate);
  info.innerHTML = '';
  if (r.info) {
    lastKec = digits.slice(0, 6);
    const line = document.createElement('div');
    line.className = 'facts';
    line.textContent = r.info.sex + ' · ' + t('j_born') + ' ' + r.info.birth_date + ' · ' +
      r.info.age + ' ' + t('j_years') + ' · ' + t('j_kec') + ' ' + r.info.kecamatan + ', ' +
      r.info.kabupaten + ' — ' + t('j_compare');
    info.appendChild(line);
  }
  for (const w of r.warnings || []) {
    const p = document.createElement('div');
    p.className = 'warn';
    p.textContent = '! ' + w.message;
    info.appendChild(p);
  }
  if (r.district) {
    const p = document.createElement('div');
    p.className = 'warn';
    p.textContent = '! ' + t('j_district', r.district);
    info.appendChild(p);
  }
  if (r.duplicate) {
    const d = r.duplicate;
    const p = document.createElement('div');
    p.className = 'dup';
    p.textContent = t('j_dup') + ': #' + d.seq + ' ' + d.name + ' — ' + d.time + ', ' + d.desa + ' ';
    const a = document.createElement('button');
    a.type = 'button';
    a.textContent = t('j_reprint');
    a.addEventListener('click', () => printSlip('/slip/' + d.seq));
    p.appendChild(a);
    info.appendChild(p);
  }
  info.hidden = !info.childNodes.length;
  say(msg, r.problem ? problemText(r.problem) : '', r.problem ? 'bad' : '');
}

// --- the other fields, on leaving them ---
async function checkField(id) {
  const el = $(id);
  const value = el.value;
  const msg = $(id + '-msg');
  if (!value.trim() && id === 'email') { say(msg, ''); el.classList.remove('bad'); return true; }
  if (!value.trim()) { say(msg, ''); return false; }
  const r = await api('/api/field', { field: id, value });
  el.classList.toggle('bad', !r.ok);
  say(msg, r.problem ? problemText(r.problem) : '', r.problem ? 'bad' : '');
  if (r.ok && id === 'name') el.value = r.value;
  return r.ok;
}

function formValues() {
  return {
    nik: $('nik').value,
    name: $('name').value,
    phone: $('phone').value,
    email: $('email').value,
    village: STATE.village ? STATE.village.code : '',
    young_ok: $('young-ok').checked,
  };
}

// --- the summary before saving ---
async function review(ev) {
  if (ev) ev.preventDefault();
  const msg = $('record-msg');
  say(msg, '');
  if (!STATE.village) { say($('desa-msg'), t('j_pick_village'), 'bad'); $('desa-input').focus(); return; }
  $('young-ok').checked = false;
  let r;
  try { r = await api('/api/check', formValues()); } catch (e) { say(msg, errorText(e), 'bad'); return; }
  ['nik', 'name', 'phone', 'email'].forEach((f) => { $(f).classList.remove('bad'); });
  if (!r.ok) {
    let first = null;
    for (const p of r.problems) {
      const el = $(p.field === 'village' ? 'desa-msg' : p.field + '-msg');
      if (el) say(el, problemText(p), 'bad');
      const input = $(p.field);
      if (input) { input.classList.add('bad'); if (!first) first = input; }
    }
    say(msg, t('j_fix'), 'bad');
    if (first) first.focus();
    return;
  }
  const rows = $('summary-rows');
  rows.innerHTML = '';
  for (const [k, v] of r.rows) {
    const tr = document.createElement('tr');
    const th = document.createElement('th'); th.textContent = k;
    const td = document.createElement('td'); td.textContent = v;
    tr.append(th, td);
    rows.appendChild(tr);
  }
  const warn = $('summary-warn');
  warn.innerHTML = '';
  for (const w of r.warnings) {
    const li = document.createElement('li');
    li.textContent = w.message;
    warn.appendChild(li);
  }
  $('young-box').hidden = !r.confirm_young;
  if (r.confirm_young) $('young-text').textContent = t('j_young', r.confirm_young);
  $('summary').showModal();
  $('save-btn').focus();
}

function printSlip(url) {
  $('print-frame').src = url + (url.includes('?') ? '&' : '?') + 'auto=1';
}

async function save() {
  if (!$('young-box').hidden && !$('young-ok').checked) {
    $('young-ok').focus();
    $('young-text').classList.add('bad');
    $('young-text').textContent = t('j_young_needed');
    return;
  }
  $('save-btn').disabled = true;
  try {
    const r = await api('/api/save', formValues());
    $('summary').close();
    const box = $('last-saved');
    box.innerHTML = '';
    const h = document.createElement('p');
    h.className = 'ok';
    h.textContent = '✓ ' + t('j_saved') + ' #' + r.seq + ' — ' + r.name + ' (' + r.time + '), ' +
      (r.printed ? t('j_printed_direct') : t('j_printing')) + '. ' + t('j_next');
    const again = document.createElement('a');
    again.href = r.slip;
    again.target = '_blank';
    again.className = 'button';
    again.textContent = t('j_reprint');
    box.append(h, again);
    if (r.print_error) {
      const p = document.createElement('p');
      p.className = 'msg bad';
      p.textContent = r.print_error;
      box.appendChild(p);
    }
    box.hidden = false;
    if (!r.printed) printSlip(r.slip);
    ['nik', 'name', 'phone', 'email'].forEach((f) => { $(f).value = ''; say($(f + '-msg'), ''); });
    $('nik-info').hidden = true;
    nikOk = false;
    focusRecord();
    await refreshState();
  } catch (e) {
    $('summary').close();
    say($('record-msg'), errorText(e), 'bad');
  } finally {
    $('save-btn').disabled = false;
  }
}

function focusRecord() {
  if (STATE && STATE.village) $('nik').focus(); else $('desa-input').focus();
}

// Enter moves to the next field; on the last one it checks the form.
function enterMoves(ev) {
  if (ev.key !== 'Enter' || ev.target.tagName !== 'INPUT' || ev.target.id === 'desa-input') return;
  ev.preventDefault();
  const order = ['nik', 'name', 'phone', 'email'];
  const i = order.indexOf(ev.target.id);
  if (i >= 0 && i < order.length - 1) $(order[i + 1]).focus(); else review();
}

// --- today ---
async function loadToday() {
  const r = await api('/api/today');
  $('today-count').textContent = t('j_counts', r.counts.activated) +
    (r.counts.voided ? ' · ' + t('j_voided', r.counts.voided) : '');
  const body = $('today-rows');
  body.innerHTML = '';
  for (const row of r.rows) {
    const tr = document.createElement('tr');
    if (row.voided || row.voids) tr.className = 'voided';
    const cells = [
      '#' + row.seq, row.time.split(' ').slice(1).join(' '), row.name, row.nik, row.desa,
      row.voids ? t('j_void_of', row.voids) + (row.reason ? ': ' + row.reason : '')
        : (row.voided ? t('j_voided_word') : row.status),
    ];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    const act = document.createElement('td');
    if (!row.voided && !row.voids) {
      const p = document.createElement('button');
      p.type = 'button'; p.textContent = t('j_reprint');
      p.addEventListener('click', () => printSlip('/slip/' + row.seq));
      const v = document.createElement('button');
      v.type = 'button'; v.className = 'danger'; v.textContent = t('j_void');
      v.addEventListener('click', () => askVoid(row));
      act.append(p, ' ', v);
    }
    tr.appendChild(act);
    body.appendChild(tr);
  }
  $('today-empty').hidden = r.rows.length > 0;
}

let voiding = null;
function askVoid(row) {
  voiding = row;
  $('void-title').textContent = t('j_void_title', row.seq);
  $('void-who').textContent = row.name + ' · NIK ' + row.nik + ' · ' + row.desa + ' · ' + row.time;
  document.querySelectorAll('#void-reasons input[type=radio]').forEach((r) => { r.checked = false; });
  $('void-other').hidden = true;
  $('void-other').value = '';
  say($('void-msg'), '');
  $('void-dialog').showModal();
  document.querySelector('#void-reasons input[type=radio]').focus();
}
async function doVoid() {
  const picked = document.querySelector('#void-reasons input[type=radio]:checked');
  if (!picked) { say($('void-msg'), t('j_pick_reason'), 'bad'); return; }
  const reason = picked.value === 'lainnya' ? $('void-other').value.trim() : picked.value;
  if (!reason) { say($('void-msg'), t('j_pick_reason'), 'bad'); $('void-other').focus(); return; }
  try {
    const r = await api('/api/void', { seq: voiding.seq, reason });
    $('void-dialog').close();
    $('today-count').textContent = '';
    await loadToday();
    await refreshState();
    say($('today-msg'), t('j_void_done', r.seq, r.name), 'ok');
  } catch (e) {
    say($('void-msg'), errorText(e), 'bad');
  }
}

// --- send ---
let polling = null;
function showSend(s) {
  const box = $('send-state');
  box.innerHTML = '';
  box.className = 'state ' + s.state;
  if (s.state === 'idle') return;
  const p = document.createElement('p');
  p.textContent = s.message;
  box.appendChild(p);
  if (s.hint) { const h = document.createElement('p'); h.className = 'hint'; h.textContent = s.hint; box.appendChild(h); }
  if (s.problems && s.problems.length) {
    const ul = document.createElement('ul');
    for (const x of s.problems) { const li = document.createElement('li'); li.textContent = x; ul.appendChild(li); }
    box.appendChild(ul);
  }
  $('send-btn').disabled = s.state === 'running';
}
async function pollSend() {
  const s = await api('/api/send');
  showSend(s);
  if (s.state === 'running') { polling = setTimeout(pollSend, 500); } else {
    polling = null;
    await refreshState();
    pendingLine();
  }
}
function pendingLine() {
  $('send-pending').textContent = !STATE.enrolled ? t('j_not_enrolled')
    : (STATE.pending ? t('j_pending', STATE.pending) : t('j_nothing_pending'));
}
async function loadSend() {
  await refreshState();
  pendingLine();
  const s = await api('/api/send');
  showSend(s);
  if (s.state === 'running' && !polling) pollSend();
  const places = await api('/api/usb');
  const dl = $('usb-places');
  dl.innerHTML = '';
  for (const p of places.places) { const o = document.createElement('option'); o.value = p; dl.appendChild(o); }
  if (!$('usb-folder').value && places.places.length) $('usb-folder').value = places.places[0];
}
async function send() {
  $('send-btn').disabled = true;
  try {
    const s = await api('/api/send', {});
    showSend(s);
    if (!polling) polling = setTimeout(pollSend, 300);
  } catch (e) {
    showSend({ state: 'failed', message: errorText(e) });
    $('send-btn').disabled = false;
  }
}
async function usb() {
  const msg = $('usb-msg');
  say(msg, '');
  try {
    const r = await api('/api/usb', { folder: $('usb-folder').value });
    say(msg, r.message, 'ok');
  } catch (e) {
    say(msg, errorText(e), 'bad');
  }
}

// --- settings ---
async function loadSettings() {
  await refreshState();
  const f = $('settings-form');
  f.officer.value = STATE.officer;
  f.team.value = STATE.team;
  f.office.value = STATE.office;
  f.paper.value = String(STATE.paper);
  f.printer.value = STATE.printer || '';
  $('enrol-box').open = !STATE.enrolled;
  f.officer.focus();
}
async function saveSettings(ev) {
  ev.preventDefault();
  const msg = $('settings-msg');
  const o = formData($('settings-form'));
  o.paper = Number(o.paper);
  try {
    const r = await api('/api/settings', o);
    await refreshState();
    say(msg, t('j_saved_settings') + (r.enrolled ? ' ' + t('j_enrolled') : ''), 'ok');
    const f = $('settings-form');
    f.server.value = ''; f.token.value = ''; f.server_id.value = '';
  } catch (e) {
    say(msg, errorText(e), 'bad');
  }
}

async function start() {
  if (!$('record-form')) { printPage(); return; }
  $('setup-form').addEventListener('submit', setup);
  $('unlock-form').addEventListener('submit', unlock);
  $('record-form').addEventListener('submit', review);
  $('record-form').addEventListener('keydown', enterMoves);
  $('desa-input').addEventListener('input', () => { clearTimeout(desaTimer); desaTimer = setTimeout(searchVillage, 120); });
  $('desa-input').addEventListener('keydown', villageKeys);
  $('desa-change').addEventListener('click', () => { showVillage(null); $('desa-input').value = ''; $('desa-input').focus(); });
  $('nik').addEventListener('input', () => checkNik(false));
  $('nik').addEventListener('blur', () => { if ($('nik').value.trim()) checkNik(true); });
  for (const f of ['name', 'phone', 'email']) $(f).addEventListener('blur', () => checkField(f));
  $('save-btn').addEventListener('click', save);
  $('edit-btn').addEventListener('click', () => { $('summary').close(); $('nik').focus(); });
  $('cancel-btn').addEventListener('click', () => {
    $('summary').close();
    ['nik', 'name', 'phone', 'email'].forEach((f) => { $(f).value = ''; say($(f + '-msg'), ''); });
    $('nik-info').hidden = true;
    $('nik').focus();
  });
  $('void-go').addEventListener('click', doVoid);
  $('void-cancel').addEventListener('click', () => $('void-dialog').close());
  document.querySelectorAll('#void-reasons input[type=radio]').forEach((r) => r.addEventListener('change', () => {
    $('void-other').hidden = r.value !== 'lainnya' || !r.checked;
    if (!$('void-other').hidden) $('void-other').focus();
  }));
  $('send-btn').addEventListener('click', send);
  $('usb-btn').addEventListener('click', usb);
  $('settings-form').addEventListener('submit', saveSettings);
  window.addEventListener('hashchange', route);
  try {
    await refreshState();
  } catch (e) {
    document.body.textContent = errorText(e);
    return;
  }
  route();
}
document.addEventListener('DOMContentLoaded', start);
