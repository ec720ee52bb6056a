// Models: the store's models with size, quantization, context length and
// memory plan (GET /api/v1/plans: GPU, partial offload, CPU or too large,
// as a load would plan it), loaded or not; pull with a live progress bar
// (the SSE pull route), delete, load and unload.
import { call, getJSON, readSSE, el, status, errText, bytes } from './api.js';

async function context(name) {
  try {
    const r = await call('/api/show', { json: { model: name } });
    const info = (await r.json()).model_info || {};
    const k = Object.keys(info).find((x) => x.endsWith('.context_length'));
    return k ? String(info[k]) : '';
  } catch { return ''; }
}

async function post(path, body) {
  const r = await call(path, { json: body });
  if (!r.ok) throw new Error(errText(await r.json().catch(() => null), r.status));
}

async function table(box) {
  const [tags, health, plans] = await Promise.all([getJSON('/api/tags'), getJSON('/api/v1/health'),
    getJSON('/api/v1/plans').catch(() => ({ data: [] }))]);
  const loaded = new Map((health.loaded || []).map((l) => [l.model, l]));
  const plan = new Map((plans.data || []).map((p) => [p.id, p]));
  const rows = el('tbody');
  const t = el('table', { id: 'models' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Model'), el('th', {}, 'Size'), el('th', { class: 'hide-narrow' }, 'Quant'),
      el('th', { class: 'hide-narrow' }, 'Context'), el('th', {}, 'Memory plan'), el('th', {}, 'State'),
      el('th', {}, ''))), rows);
  for (const m of tags.models || []) {
    const l = loaded.get(m.name);
    const p = plan.get(m.name);
    const ctx = el('td', { class: 'hide-narrow' }, '');
    const act = async (what, fn) => {
      status(what + ' ' + m.name + '…');
      try { await fn(); status(what + ' ' + m.name + ': done'); } catch (e) { status(e.message, true); }
      await refresh(box);
    };
    const state = l ? `${l.state} on ${l.backend}` +
      (l.n_gpu_layers > 0 ? ` (${l.n_gpu_layers} GPU layers)` : l.backend === 'cpu' ? ' (CPU)' : '') : 'on disk';
    rows.append(el('tr', { 'data-model': m.name },
      el('td', {}, m.name), el('td', {}, bytes(m.size)),
      el('td', { class: 'hide-narrow' }, (m.details && m.details.quantization_level) || ''), ctx,
      el('td', { class: 'plan' + (p && p.plan === 'too_large' ? ' err' : ''), 'data-plan': (p && p.plan) || '' },
        p ? p.summary : ''),
      el('td', {}, state),
      el('td', {}, el('div', { class: 'row' },
        l ? el('button', { onclick: () => act('unloading', () => post('/api/v1/unload', { model_name: m.name })) }, 'Unload')
          : el('button', { onclick: () => act('loading', () => post('/api/v1/load', { model_name: m.name })) }, 'Load'),
        el('button', { onclick: () => confirm(`Delete ${m.name}?`) &&
          act('deleting', () => post('/api/v1/delete', { model: m.name })) }, 'Delete')))));
    context(m.name).then((c) => { ctx.textContent = c; });
  }
  if (!(tags.models || []).length) rows.append(el('tr', {}, el('td', { colspan: '7' }, 'No models yet.')));
  box.replaceChildren(el('div', { class: 'scroll' }, t));
}

async function refresh(box) {
  try { await table(box); } catch (e) { status(e.message, true); }
}

export async function render(main) {
  const box = el('div', { id: 'model-table' });
  const name = el('input', { id: 'pull-name', class: 'grow', placeholder: 'model to pull, e.g. Qwen3-0.6B-GGUF', 'aria-label': 'model to pull' });
  const go = el('button', { id: 'pull', type: 'submit' }, 'Pull');
  const bar = el('progress', { id: 'pull-progress', max: '1', value: '0', hidden: '' });
  const note = el('p', { id: 'pull-status' });
  const form = el('form', {}, el('div', { class: 'row' }, name, go), bar, note);
  main.append(el('h2', {}, 'Local models'), box, el('h2', {}, 'Pull a model'), form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!name.value.trim()) return;
    go.disabled = true; bar.hidden = false; bar.value = 0;
    let failed = null;
    try {
      const r = await call('/api/v1/pull', { json: { model: name.value.trim(), stream: true } });
      if (!r.ok) throw new Error(errText(await r.json().catch(() => null), r.status));
      await readSSE(r, (ev) => {
        if (ev.error) { failed = ev.error.message || String(ev.error); return; }
        if (ev.all_total) { bar.max = ev.all_total; bar.value = ev.all_completed; }
        note.textContent = ev.status + (ev.file ? ` ${ev.file}` : '') +
          (ev.all_total ? ` ${bytes(ev.all_completed)} / ${bytes(ev.all_total)}` : '');
      });
      if (failed) throw new Error(failed);
      bar.value = bar.max;
      note.textContent = `pulled ${name.value.trim()}`;
    } catch (err) {
      note.textContent = err.message;
      note.className = 'err';
    }
    go.disabled = false;
    await refresh(box);
  });
  await table(box);
}
