// lemon serve exercised through the official openai npm client (pinned in
// package.json). Needs LEMON_URL (http://127.0.0.1:PORT), LEMON_KEY (the
// server's --api-key) and LEMON_MODEL (a pulled model); LEMON_EMBD is the
// model's embedding width. Run: node --test serve.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = `${process.env.LEMON_URL}/v1`;
const model = process.env.LEMON_MODEL;
const client = new OpenAI({ baseURL, apiKey: process.env.LEMON_KEY, maxRetries: 0, timeout: 60000 });

test('models.list names the pulled model', async () => {
	const ids = [];
	for await (const m of client.models.list())
		ids.push(m.id);
	assert.ok(ids.includes(model), `models: ${ids}`);
});

test('chat completion, non-streaming', async () => {
	const r = await client.chat.completions.create({
		model, max_tokens: 8,
		messages: [{ role: 'user', content: 'Say hello' }],
	});
	assert.equal(r.object, 'chat.completion');
	assert.equal(r.model, model);
	assert.equal(typeof r.choices[0].message.content, 'string');
	assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
	assert.ok(r.usage.prompt_tokens > 0);
});

test('chat completion, streaming', async () => {
	const stream = await client.chat.completions.create({
		model, max_tokens: 12, stream: true,
		messages: [{ role: 'user', content: 'Count to ten' }],
	});
	let chunks = 0, text = '', finish = null;
	for await (const c of stream) {
		assert.equal(c.object, 'chat.completion.chunk');
		chunks++;
		text += c.choices[0]?.delta?.content ?? '';
		finish = c.choices[0]?.finish_reason ?? finish;
	}
	assert.ok(chunks >= 3, `only ${chunks} chunks`);
	assert.ok(text.length > 0);
	assert.ok(finish === 'length' || finish === 'stop', `finish ${finish}`);
});

test('text completion', async () => {
	const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6 });
	assert.equal(typeof r.choices[0].text, 'string');
	assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 6);
});

test('text completion, streaming', async () => {
	const stream = await client.completions.create({ model, prompt: 'The sky', max_tokens: 6, stream: true });
	let n = 0;
	for await (const c of stream)
		n += c.choices.length;
	assert.ok(n >= 2);
});

test('embeddings', async () => {
	const r = await client.embeddings.create({ model, input: ['hello world', 'lemons'] });
	assert.equal(r.data.length, 2);
	assert.equal(r.data[0].embedding.length, Number(process.env.LEMON_EMBD));
	assert.ok(r.data[0].embedding.every(Number.isFinite));
	assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
});

test('unknown model is a 404 in the OpenAI error shape', async () => {
	await assert.rejects(
		client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
		(e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found' &&
			e.type === 'invalid_request_error');
});

test('path-like model name is a 400', async () => {
	await assert.rejects(
		client.chat.completions.create({ model: '../../etc/passwd', messages: [{ role: 'user', content: 'x' }] }),
		(e) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_model_name');
});

test('wrong API key is a 401', async () => {
	const bad = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
	await assert.rejects(bad.models.list(),
		(e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
});

test('stats describe the last request', async () => {
	await client.chat.completions.create({ model, max_tokens: 5, stream: false,
		messages: [{ role: 'user', content: 'hi' }] });
	const r = await fetch(`${process.env.LEMON_URL}/api/v1/stats`,
		{ headers: { Authorization: `Bearer ${process.env.LEMON_KEY}` } });
	const s = await r.json();
	assert.equal(s.model, model);
	assert.equal(s.endpoint, 'chat/completions');
	assert.ok(s.output_tokens >= 1 && s.output_tokens <= 5);
	assert.ok(s.input_tokens >= 1);
	assert.ok(s.tokens_per_second > 0);
});

test('a backend killed mid-stream surfaces as an error; the next request works', async () => {
	const health = async () => (await fetch(`${process.env.LEMON_URL}/api/v1/health`,
		{ headers: { Authorization: `Bearer ${process.env.LEMON_KEY}` } })).json();
	const stream = await client.chat.completions.create({
		model, max_tokens: 2000, stream: true, ignore_eos: true,
		messages: [{ role: 'user', content: 'go on forever' }],
	});
	let chunks = 0;
	await assert.rejects(async () => {
		for await (const c of stream) {
			if (++chunks === 3) {
				const h = await health();
				const child = h.loaded.find((l) => l.role === 'chat' && l.state === 'ready');
				process.kill(child.pid, 'SIGKILL');
			}
		}
	}, (e) => e instanceof OpenAI.APIError && /backend stopped/.test(e.message));
	assert.ok(chunks >= 3);
	const r = await client.chat.completions.create({ model, max_tokens: 3,
		messages: [{ role: 'user', content: 'again' }] });
	assert.equal(r.object, 'chat.completion');
});
