// System: the doctor report (each check's status and its fix with a copy
// button), the detected devices, the backends and the fallback history
// from /api/v1/health.
import { getJSON, el, status } from './api.js';

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
  main.append(el('p', {}, `lemon ${health.version}`),
    el('h2', {}, 'Checks'), checks(info),
    el('h2', {}, 'Devices'), devices(info),
    el('h2', {}, 'Backends'), ...backends(info, health),
    el('h2', {}, 'Fallback history'), fallbacks(health));
}
