// System: the doctor report (each check's status and its fix with a copy
// button), the detected devices, the backends and the fallback history
// from /api/v1/health; the pinned bundles (GET /api/v1/backends) with
// Install / Reinstall buttons whose progress streams from
// POST /api/v1/backends/install (the server runs one install at a time).
import { getJSON, call, readSSE, errText, el, status, bytes } from './api.js';

function copyButton(text) {
  return el('button', { class: 'copy', type: 'button', onclick: async () => {
    try { await navigator.clipboard.writeText(text); status('copied: ' + text); }
    catch { status('copy failed: select the command instead', true); }
  } }, 'Copy');
}

function checks(info) {
  const rows = el('tbody');
  for (const c of info.checks || []) {
    rows.append(el('tr', { 'data-check': c.id },
      el('td', { class: 'st-' + c.status }, c.status), el('td', {}, c.id),
      el('td', {}, c.message, c.fix ? el('div', { class: 'row' }, el('code', {}, c.fix), copyButton(c.fix)) : null)));
  }
  return el('div', { class: 'scroll' }, el('table', { id: 'checks' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Status'), el('th', {}, 'Check'), el('th', {}, 'Detail'))), rows));
}

function devices(info) {
  const ul = el('ul', { id: 'devices' });
  const h = info.host || {};
  if (h.cpu && h.cpu.model) ul.append(el('li', {}, 'CPU: ' + h.cpu.model));
  for (const g of info.gpus || []) ul.append(el('li', {}, 'GPU: ' + (g.name || g.pci || 'unknown')));
  for (const n of info.npus || []) ul.append(el('li', {}, 'NPU: ' + (n.name || 'unknown')));
  if (!ul.children.length) ul.append(el('li', {}, 'no GPU or NPU found'));
  return ul;
}

function backends(info, health) {
  const b = info.backend || {};
  const rows = el('tbody');
  for (const c of b.candidates || []) {
    rows.append(el('tr', {}, el('td', {}, c.backend), el('td', {}, c.usable ? 'usable' : 'not usable'),
      el('td', {}, c.reason || '')));
  }
  const live = el('ul', { id: 'live' });
  for (const c of health.candidates || []) {
    live.append(el('li', {}, `${c.backend}${c.device ? ' on ' + c.device : ''}: ${c.failed ? 'failed' : 'available'}`));
  }
  return [el('p', { id: 'recommended' }, 'Recommended backend: ', el('strong', {}, b.recommended || 'none')),
    el('div', { class: 'scroll' }, el('table', { id: 'candidates' }, rows)),
    el('h2', {}, 'Backends this server can run'), live];
}

// one row per bundle: real <button>s, so Tab and Enter/Space work
function installedRows(list, tbody, onInstall) {
  tbody.replaceChildren();
  for (const b of list.backends || []) {
    const inst = (b.installed || []).map((v) => v.version + (v.current ? '' : ' (kept)') + (v.works ? '' : ' (broken)')).join(', ');
    const btn = el('button', { type: 'button', class: 'install', 'data-name': b.name,
      'aria-label': (b.current ? 'Reinstall ' : 'Install ') + b.name }, b.current ? 'Reinstall' : 'Install');
    btn.disabled = !!list.installing;
    btn.addEventListener('click', () => onInstall(b.name));
    tbody.append(el('tr', { 'data-backend': b.name }, el('td', {}, b.name), el('td', {}, b.pinned || ''),
      el('td', { class: 'current' }, b.current || 'not installed'), el('td', {}, inst), el('td', {}, btn)));
  }
}

function installer() {
  const tbody = el('tbody');
  const bar = el('progress', { id: 'backend-progress', max: '1', value: '0', hidden: '' });
  const note = el('p', { id: 'backend-status', role: 'status', 'aria-live': 'polite' });
  const load = async () => installedRows(await getJSON('/api/v1/backends'), tbody, install);
  async function install(name) {
    for (const b of tbody.querySelectorAll('button.install')) b.disabled = true;
    bar.hidden = false; bar.removeAttribute('value'); note.className = '';
    note.textContent = `installing ${name}`;
    let failed = null, done = null;
    try {
      const r = await call('/api/v1/backends/install', { json: { name } });
      if (!r.ok) throw new Error(errText(await r.json().catch(() => null), r.status));
      await readSSE(r, (ev) => {
        if (ev.error) { failed = ev.error.message || String(ev.error); return; }
        if (ev.status === 'success') { done = ev; return; }
        if (ev.total) { bar.max = ev.total; bar.value = ev.completed; }
        note.textContent = `${ev.status} ${name}` + (ev.total ? ` ${bytes(ev.completed)} / ${bytes(ev.total)}` : '');
      });
      if (failed) throw new Error(failed);
      if (!done) throw new Error('the install ended without a result');
      bar.value = bar.max;
      note.textContent = `installed ${name} ${done.version}: ${done.path}`;
    } catch (err) {
      note.textContent = `${name}: ${err.message}`;
      note.className = 'err';
    }
    try { await load(); } catch (e) { status(e.message, true); }
  }
  return { load, nodes: [el('div', { class: 'scroll' }, el('table', { id: 'installed-backends' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Backend'), el('th', {}, 'Pinned'), el('th', {}, 'Current'),
      el('th', {}, 'Installed'), el('th', {}, ''))), tbody)), bar, note] };
}

function fallbacks(health) {
  const ul = el('ul', { id: 'fallbacks' });
  for (const f of health.fallbacks || []) {
    ul.append(el('li', {}, `${new Date(f.time * 1000).toLocaleString()}: ${f.model || '-'} ` +
      `${f.from} → ${f.to || 'none'}: ${f.reason}`));
  }
  if (!ul.children.length) ul.append(el('li', {}, 'no fallbacks since the server started'));
  return ul;
}

export async function render(main) {
  const [info, health] = await Promise.all([getJSON('/api/v1/system-info'), getJSON('/api/v1/health')]);
  const inst = installer();
  main.append(el('p', {}, `lemon ${health.version}`),
    el('h2', {}, 'Checks'), checks(info),
    el('h2', {}, 'Devices'), devices(info),
    el('h2', {}, 'Backends'), ...backends(info, health),
    el('h2', {}, 'Installed and available backends'), ...inst.nodes,
    el('h2', {}, 'Fallback history'), fallbacks(health));
  await inst.load();
}
