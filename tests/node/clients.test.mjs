// lemon serve exercised through the clients people point at a local
// server (pinned in package.json): openai (Responses API, streamed and
// whole; tool calls), @anthropic-ai/sdk (Messages, streamed; countTokens),
// @langchain/openai and @langchain/ollama (a chat and a tool call each),
// the Vercel AI SDK (streamText through @ai-sdk/openai-compatible, a
// required tool call), ollama (tools) and llamaindex's OpenAI client.
//
// LEMON_URL: a lemon serve over the real llama-server CPU bundle (chat and
// streams run there); LEMON_REPLAY_URL: a lemon serve whose child is
// tests/tools/llama-server-toolcall-replay.py, which is NOT llama-server but
// a stand-in answering in llama-server's tool-call shape, because no model
// the tests can run emits a tool call: the tool-call cases run there.
// LEMON_KEY: both servers' --api-key; LEMON_MODEL: the model on both.
// Run: node --test clients.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { ChatOpenAI } from '@langchain/openai';
import { ChatOllama } from '@langchain/ollama';
import { tool as lcTool } from '@langchain/core/tools';
import { streamText, generateText, tool as aiTool, jsonSchema } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Ollama } from 'ollama';
import { OpenAI as LlamaOpenAI } from '@llamaindex/openai';
import { z } from 'zod';

const real = process.env.LEMON_URL;
const replay = process.env.LEMON_REPLAY_URL;
const apiKey = process.env.LEMON_KEY;
const model = process.env.LEMON_MODEL;

const weather = {
	type: 'function',
	function: {
		name: 'get_weather',
		description: 'the weather in a city',
		parameters: {
			type: 'object',
			properties: { city: { type: 'string' } },
			required: ['city'],
		},
	},
};

test('openai: Responses API, whole', async () => {
	const c = new OpenAI({ baseURL: `${real}/v1`, apiKey, maxRetries: 0 });
	const r = await c.responses.create({ model, input: 'Say hi', max_output_tokens: 8 });
	assert.equal(r.object, 'response');
	assert.equal(r.status, 'completed');
	assert.equal(typeof r.output_text, 'string');
	assert.ok(r.usage.input_tokens > 0);
});

test('openai: Responses API stream ends with response.completed', async () => {
	const c = new OpenAI({ baseURL: `${real}/v1`, apiKey, maxRetries: 0 });
	const stream = await c.responses.create({ model, input: 'Count', max_output_tokens: 8, stream: true });
	const types = [];
	for await (const ev of stream)
		types.push(ev.type);
	assert.equal(types[0], 'response.created');
	assert.ok(types.includes('response.output_text.delta'), types.join(','));
	assert.equal(types.at(-1), 'response.completed');
});

test('openai: tool call through /v1/chat/completions (stand-in child)', async () => {
	const c = new OpenAI({ baseURL: `${replay}/v1`, apiKey, maxRetries: 0 });
	const r = await c.chat.completions.create({
		model, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris?' }],
	});
	assert.equal(r.choices[0].finish_reason, 'tool_calls');
	const call = r.choices[0].message.tool_calls[0];
	assert.equal(call.function.name, 'get_weather');
	assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
	const s = await c.chat.completions.create({
		model, tools: [weather], stream: true, messages: [{ role: 'user', content: 'Weather in Paris?' }],
	});
	let args = '', name = '';
	for await (const ch of s)
		for (const tc of ch.choices[0]?.delta?.tool_calls ?? []) {
			name += tc.function?.name ?? '';
			args += tc.function?.arguments ?? '';
		}
	assert.equal(name, 'get_weather');
	assert.deepEqual(JSON.parse(args), { city: 'Paris' });
});

test('anthropic: Messages, whole and streamed to message_stop; countTokens', async () => {
	// the SDK's base URL is the server root; it sends x-api-key and anthropic-version
	const c = new Anthropic({ baseURL: real, apiKey, maxRetries: 0 });
	const m = await c.messages.create({
		model, max_tokens: 8, messages: [{ role: 'user', content: 'Say hi' }],
	});
	assert.equal(m.type, 'message');
	assert.equal(m.role, 'assistant');
	assert.equal(m.content[0].type, 'text');
	const types = [];
	const stream = await c.messages.create({
		model, max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'Count' }],
	});
	for await (const ev of stream)
		types.push(ev.type);
	assert.equal(types[0], 'message_start');
	assert.equal(types.at(-1), 'message_stop');
	const n = await c.messages.countTokens({ model, messages: [{ role: 'user', content: 'hello there' }] });
	assert.ok(n.input_tokens > 0);
	await assert.rejects(
		new Anthropic({ baseURL: real, apiKey: 'wrong', maxRetries: 0 }).messages.create({
			model, max_tokens: 8, messages: [{ role: 'user', content: 'x' }],
		}),
		(e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
});

test('langchain: ChatOpenAI chat, and a tool call round trip (stand-in child)', async () => {
	const chat = new ChatOpenAI({ model, apiKey, maxTokens: 8, maxRetries: 0, configuration: { baseURL: `${real}/v1` } });
	const r = await chat.invoke('Say hi');
	assert.equal(typeof r.content, 'string');
	assert.ok(r.usage_metadata.input_tokens > 0);
	const getWeather = lcTool(async ({ city }) => `22 degrees in ${city}`, {
		name: 'get_weather', description: 'the weather in a city', schema: z.object({ city: z.string() }),
	});
	const withTools = new ChatOpenAI({ model, apiKey, maxRetries: 0, configuration: { baseURL: `${replay}/v1` } })
		.bindTools([getWeather]);
	const ai = await withTools.invoke('Weather in Paris?');
	assert.equal(ai.tool_calls[0].name, 'get_weather');
	assert.deepEqual(ai.tool_calls[0].args, { city: 'Paris' });
	const result = await getWeather.invoke(ai.tool_calls[0]);
	const final = await withTools.invoke([['user', 'Weather in Paris?'], ai, result]);
	assert.equal(final.content, '22 degrees');
});

test('langchain: ChatOllama chat, and a tool call round trip (stand-in child)', async () => {
	const chat = new ChatOllama({ model, baseUrl: real, numPredict: 8, headers: { Authorization: `Bearer ${apiKey}` } });
	const r = await chat.invoke('Say hi');
	assert.equal(typeof r.content, 'string');
	assert.ok(r.usage_metadata.input_tokens > 1);
	const getWeather = lcTool(async ({ city }) => `22 degrees in ${city}`, {
		name: 'get_weather', description: 'the weather in a city', schema: z.object({ city: z.string() }),
	});
	const withTools = new ChatOllama({ model, baseUrl: replay, headers: { Authorization: `Bearer ${apiKey}` } })
		.bindTools([getWeather]);
	const ai = await withTools.invoke('Weather in Paris?');
	assert.equal(ai.tool_calls[0].name, 'get_weather');
	assert.deepEqual(ai.tool_calls[0].args, { city: 'Paris' });
	const result = await getWeather.invoke(ai.tool_calls[0]);
	const final = await withTools.invoke([['user', 'Weather in Paris?'], ai, result]);
	assert.equal(final.content, '22 degrees');
});

test('ai sdk: streamText, and a required tool call (stand-in child)', async () => {
	const lemon = createOpenAICompatible({ name: 'lemon', baseURL: `${real}/v1`, apiKey, includeUsage: true });
	const r = streamText({ model: lemon(model), prompt: 'Count', maxOutputTokens: 8 });
	let text = '';
	for await (const t of r.textStream)
		text += t;
	assert.equal(typeof text, 'string');
	assert.ok((await r.usage).inputTokens > 0);
	const lemonReplay = createOpenAICompatible({ name: 'lemon', baseURL: `${replay}/v1`, apiKey });
	const g = await generateText({
		model: lemonReplay(model),
		prompt: 'Weather in Paris?',
		toolChoice: 'required',
		tools: {
			get_weather: aiTool({
				description: 'the weather in a city',
				inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
			}),
		},
	});
	assert.equal(g.toolCalls[0].toolName, 'get_weather');
	assert.deepEqual(g.toolCalls[0].input, { city: 'Paris' });
});

test('ollama: chat with tools (stand-in child)', async () => {
	const o = new Ollama({ host: replay, headers: { Authorization: `Bearer ${apiKey}` } });
	const r = await o.chat({ model, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather] });
	assert.deepEqual(r.message.tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
	const parts = [];
	for await (const p of await o.chat({ model, stream: true, tools: [weather], messages: [{ role: 'user', content: 'Weather?' }] }))
		parts.push(p);
	assert.equal(parts.filter((p) => p.message.tool_calls?.length).length, 1);
	assert.equal(parts.at(-1).done, true);
	const back = await o.chat({
		model, tools: [weather], messages: [
			{ role: 'user', content: 'Weather in Paris?' }, r.message,
			{ role: 'tool', content: '22C', tool_name: 'get_weather' }],
	});
	assert.equal(back.message.content, '22 degrees');
});

test('llamaindex: OpenAI client chat', async () => {
	const llm = new LlamaOpenAI({ model, apiKey, maxTokens: 8, maxRetries: 0, additionalSessionOptions: { baseURL: `${real}/v1` } });
	const r = await llm.chat({ messages: [{ role: 'user', content: 'Say hi' }] });
	assert.equal(r.message.role, 'assistant');
	assert.equal(typeof r.message.content, 'string');
});
