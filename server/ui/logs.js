// Logs: lemon's log lines (its own and the llama-server children's) from
// GET /api/v1/logs, the kept history first, then each line as it comes.
import { call, readSSE, el, status, errText } from './api.js';

let current = null; // the stream of the page shown last, ended on leaving

export async function render(main) {
  if (current) current.abort();
  const ctl = new AbortController();
  current = ctl;
  const filter = el('input', { id: 'log-filter', class: 'grow', placeholder: 'filter', 'aria-label': 'filter lines' });
  const follow = el('input', { id: 'log-follow', type: 'checkbox', checked: '' });
  const pre = el('pre', { id: 'loglines', tabindex: '0', 'aria-label': 'log lines' });
  main.append(el('div', { class: 'row' }, filter, el('label', {}, follow, ' follow')), pre);
  const lines = [];
  const show = () => {
    const f = filter.value;
    pre.textContent = lines.filter((l) => !f || l.includes(f)).join('\n');
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  };
  filter.addEventListener('input', show);
  window.addEventListener('hashchange', () => ctl.abort(), { once: true });
  const r = await call('/api/v1/logs', { signal: ctl.signal });
  if (!r.ok) throw new Error(errText(await r.json().catch(() => null), r.status));
  // the history arrives at once: render after the first batch, then per line
  let pending = null;
  readSSE(r, (ev) => {
    lines.push(ev.line);
    if (lines.length > 5000) lines.shift();
    if (!pending) pending = requestAnimationFrame(() => { pending = null; show(); });
  }).catch((e) => { if (e.name !== 'AbortError') status(e.message, true); });
}
