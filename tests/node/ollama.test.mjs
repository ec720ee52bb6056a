// lemon's Ollama API exercised through the official ollama npm client
// (pinned in package.json). Needs LEMON_URL (http://127.0.0.1:PORT),
// LEMON_KEY (the server's --api-key), LEMON_MODEL (a pulled model),
// LEMON_EMBD (its embedding width) and LEMON_PULL (a registry model the
// server can pull, not yet pulled). Run: node --test ollama.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';

const model = process.env.LEMON_MODEL;
const embd = Number(process.env.LEMON_EMBD);
const ollama = new Ollama({
	host: process.env.LEMON_URL,
	headers: { Authorization: `Bearer ${process.env.LEMON_KEY}` },
});

function assertStats(r, maxEval) {
	assert.equal(r.done, true);
	assert.ok(['stop', 'length'].includes(r.done_reason), `done_reason ${r.done_reason}`);
	assert.ok(r.eval_count >= 1 && r.eval_count <= maxEval, `eval_count ${r.eval_count}`);
	assert.ok(r.prompt_eval_count >= 1, `prompt_eval_count ${r.prompt_eval_count}`);
	// nanoseconds: a whole request takes well over a microsecond
	assert.ok(r.total_duration > 1000, `total_duration ${r.total_duration}`);
	assert.ok(r.total_duration >= r.eval_duration);
	assert.ok(r.eval_duration > 0 && r.prompt_eval_duration > 0);
	assert.ok(r.load_duration >= 0);
	assert.ok(!Number.isNaN(Date.parse(r.created_at)), `created_at ${r.created_at}`);
}

test('version', async () => {
	const v = await ollama.version();
	assert.match(v.version, /^\d+\.\d+\.\d+/);
});

test('list (tags) names the pulled model with its size', async () => {
	const r = await ollama.list();
	const m = r.models.find((x) => x.name === model);
	assert.ok(m, `models: ${r.models.map((x) => x.name)}`);
	assert.ok(m.size > 0);
	assert.equal(m.details.format, 'gguf');
	assert.ok(!Number.isNaN(Date.parse(m.modified_at)));
});

test('chat, streaming: one object per piece, stats on the last', async () => {
	const stream = await ollama.chat({
		model, stream: true, options: { num_predict: 12, temperature: 0 },
		messages: [{ role: 'user', content: 'Count to ten' }],
	});
	let parts = 0, text = '', last = null;
	for await (const c of stream) {
		assert.equal(c.model, model);
		assert.equal(c.message.role, 'assistant');
		if (!c.done) {
			parts++;
			text += c.message.content;
		}
		last = c;
	}
	assert.ok(parts >= 3, `only ${parts} pieces`);
	assert.ok(text.length > 0);
	assert.equal(last.message.content, '');
	assertStats(last, 12);
});

test('chat, not streaming', async () => {
	const r = await ollama.chat({
		model, options: { num_predict: 6 },
		messages: [{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'Say hello' }],
	});
	assert.equal(r.message.role, 'assistant');
	assert.ok(r.message.content.length > 0);
	assertStats(r, 6);
});

test('generate, not streaming and streaming', async () => {
	const r = await ollama.generate({ model, prompt: 'Once upon a time', options: { num_predict: 5 } });
	assert.equal(typeof r.response, 'string');
	assert.ok(r.response.length > 0);
	assertStats(r, 5);
	const stream = await ollama.generate({ model, prompt: 'The sky', stream: true, options: { num_predict: 5 } });
	let parts = 0, last = null;
	for await (const c of stream) {
		parts += c.done ? 0 : 1;
		last = c;
	}
	assert.ok(parts >= 2);
	assertStats(last, 5);
});

test('generate, raw prompt through the text completion', async () => {
	const r = await ollama.generate({ model, prompt: 'abc', raw: true, options: { num_predict: 4 } });
	assert.ok(r.response.length > 0);
	assertStats(r, 4);
});

test('embed: one vector per input', async () => {
	const r = await ollama.embed({ model, input: ['first text', 'second text'] });
	assert.equal(r.model, model);
	assert.equal(r.embeddings.length, 2);
	for (const e of r.embeddings)
		assert.equal(e.length, embd);
	assert.notDeepEqual(r.embeddings[0], r.embeddings[1]);
	const one = await ollama.embed({ model, input: 'first text' });
	assert.equal(one.embeddings.length, 1);
	// the same text alone is the same vector as its place in the batch:
	// llama.cpp's float sums depend on the batch's shape (F saw a 1e-7
	// difference under load), so equal within 1e-4 and nearer to its own
	// batch entry than to the other one by orders of magnitude
	const dist = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
	assert.ok(dist(one.embeddings[0], r.embeddings[0]) < 1e-4,
		`single vs batched 'first text' differ by ${dist(one.embeddings[0], r.embeddings[0])}`);
	assert.ok(dist(one.embeddings[0], r.embeddings[0]) * 100 <
		  dist(one.embeddings[0], r.embeddings[1]));
});

test('show: details and architecture from the GGUF header', async () => {
	const r = await ollama.show({ model });
	assert.equal(r.details.format, 'gguf');
	assert.equal(r.details.family, 'llama');
	assert.equal(r.model_info['general.architecture'], 'llama');
	assert.ok(r.model_info['general.parameter_count'] > 0);
	assert.match(r.details.parameter_size, /^\d+(\.\d)?[KMB]$/);
	assert.ok(r.model_info['llama.context_length'] > 0);
});

test('pull streams progress to success, then delete removes the model', async () => {
	const pull = process.env.LEMON_PULL;
	const stream = await ollama.pull({ model: pull, stream: true });
	const statuses = [];
	let total = 0, completed = 0;
	for await (const p of stream) {
		statuses.push(p.status);
		if (p.total) {
			total = p.total;
			completed = p.completed;
		}
	}
	assert.equal(statuses[0], 'pulling manifest');
	assert.equal(statuses.at(-1), 'success');
	assert.ok(statuses.some((s) => s.startsWith('downloading')), statuses.join());
	assert.ok(total > 0 && completed === total, `${completed}/${total}`);
	assert.ok((await ollama.list()).models.some((m) => m.name === pull));
	const again = await ollama.pull({ model: `${pull}:latest` });
	assert.equal(again.status, 'success');
	await ollama.delete({ model: pull });
	assert.ok(!(await ollama.list()).models.some((m) => m.name === pull));
	await assert.rejects(ollama.delete({ model: pull }), (e) => e.status_code === 404);
});

test('pull of a name the registry lacks ends in an error', async () => {
	const stream = await ollama.pull({ model: 'not-in-registry', stream: true });
	await assert.rejects((async () => { for await (const p of stream) void p; })(),
		/not in the registry/);
});

test('ps lists the loaded model', async () => {
	const r = await ollama.ps();
	assert.ok(r.models.some((m) => m.name === model), `ps: ${JSON.stringify(r.models)}`);
});

test('unknown model: ResponseError 404 with Ollama\'s message', async () => {
	await assert.rejects(
		ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
		(e) => e.name === 'ResponseError' && e.status_code === 404 && /not found/.test(e.error));
	await assert.rejects(ollama.show({ model: 'no-such-model' }),
		(e) => e.status_code === 404);
});

test('bad request: 400', async () => {
	await assert.rejects(ollama.chat({ model, messages: 'not a list' }),
		(e) => e.status_code === 400 && /messages/.test(e.error));
});
