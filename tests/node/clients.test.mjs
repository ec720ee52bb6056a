// lemon serve exercised through the clients people point at a local
// server (pinned in package.json): openai (Responses API, streamed and
// whole; tool calls through chat completions and Responses),
// @anthropic-ai/sdk (Messages, streamed; countTokens; tool_use),
// @langchain/openai and @langchain/ollama (a chat and a tool-call round
// trip each), the Vercel AI SDK (streamText through
// @ai-sdk/openai-compatible, a required tool call, a tool run by the SDK),
// ollama (tools) and llamaindex's OpenAI client (a chat, a tool call).
//
// LEMON_URL: a lemon serve over the real llama-server CPU bundle, with two
// models: LEMON_MODEL (the random tiny model: chats and streams) and
// LEMON_TOOL_MODEL (tests/tools/make-toolcall-gguf.py: constructed weights,
// the Qwen2 vocabulary and Qwen2.5's tool template, on which the real
// llama-server calls get_weather {"city": "Paris"} through its lazy
// <tool_call> grammar and, once the call and its tool result are sent back,
// answers "It is sunny."; with the result but not the call it answers
// "Unknown call."). Every tool call below comes from the real engine.
// LEMON_KEY: the server's --api-key.
// Run: node --test clients.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { ChatOpenAI } from '@langchain/openai';
import { ChatOllama } from '@langchain/ollama';
import { tool as lcTool } from '@langchain/core/tools';
import { streamText, generateText, stepCountIs, tool as aiTool, jsonSchema } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Ollama } from 'ollama';
import { OpenAI as LlamaOpenAI } from '@llamaindex/openai';
import { z } from 'zod';

const real = process.env.LEMON_URL;
const apiKey = process.env.LEMON_KEY;
const model = process.env.LEMON_MODEL;
const toolModel = process.env.LEMON_TOOL_MODEL;
const ask = 'What is the weather?';
const answer = 'It is sunny.';

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

test('openai: tool call, whole and streamed, and the round trip', async () => {
	const c = new OpenAI({ baseURL: `${real}/v1`, apiKey, maxRetries: 0 });
	const r = await c.chat.completions.create({
		model: toolModel, tools: [weather], messages: [{ role: 'user', content: ask }],
	});
	assert.equal(r.choices[0].finish_reason, 'tool_calls');
	assert.equal(r.choices[0].message.tool_calls.length, 1);
	const call = r.choices[0].message.tool_calls[0];
	assert.equal(call.type, 'function');
	assert.equal(call.function.name, 'get_weather');
	assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
	const s = await c.chat.completions.create({
		model: toolModel, tools: [weather], stream: true, messages: [{ role: 'user', content: ask }],
	});
	let args = '', name = '', finish = null;
	for await (const ch of s) {
		for (const tc of ch.choices[0]?.delta?.tool_calls ?? []) {
			name += tc.function?.name ?? '';
			args += tc.function?.arguments ?? '';
		}
		finish = ch.choices[0]?.finish_reason ?? finish;
	}
	assert.equal(name, 'get_weather');
	assert.deepEqual(JSON.parse(args), { city: 'Paris' });
	assert.equal(finish, 'tool_calls');
	const back = await c.chat.completions.create({
		model: toolModel, tools: [weather], messages: [
			{ role: 'user', content: ask }, r.choices[0].message,
			{ role: 'tool', tool_call_id: call.id, content: '22C' }],
	});
	assert.equal(back.choices[0].finish_reason, 'stop');
	assert.equal(back.choices[0].message.content, answer);
	// tool_choice "required": the child's strict grammar instead of the lazy one
	const req = await c.chat.completions.create({
		model: toolModel, tools: [weather], tool_choice: 'required', messages: [{ role: 'user', content: ask }],
	});
	assert.deepEqual(JSON.parse(req.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
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

test('openai: Responses API function call round trip', async () => {
	const c = new OpenAI({ baseURL: `${real}/v1`, apiKey, maxRetries: 0 });
	const tools = [{ type: 'function', name: 'get_weather', description: 'the weather in a city', parameters: weather.function.parameters }];
	const r = await c.responses.create({ model: toolModel, input: ask, tools });
	assert.equal(r.status, 'completed');
	const calls = r.output.filter((o) => o.type === 'function_call');
	assert.equal(calls.length, 1);
	assert.equal(calls[0].name, 'get_weather');
	assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Paris' });
	const back = await c.responses.create({
		model: toolModel, tools, input: [
			{ role: 'user', content: ask }, calls[0],
			{ type: 'function_call_output', call_id: calls[0].call_id, output: '22C' }],
	});
	assert.equal(back.output_text, answer);
});

test('anthropic: tool_use and the tool_result round trip, whole and streamed', async () => {
	const c = new Anthropic({ baseURL: real, apiKey, maxRetries: 0 });
	const tools = [{ name: 'get_weather', description: 'the weather in a city', input_schema: weather.function.parameters }];
	const m = await c.messages.create({ model: toolModel, max_tokens: 64, tools, messages: [{ role: 'user', content: ask }] });
	assert.equal(m.stop_reason, 'tool_use');
	const uses = m.content.filter((b) => b.type === 'tool_use');
	assert.equal(uses.length, 1);
	assert.equal(uses[0].name, 'get_weather');
	assert.deepEqual(uses[0].input, { city: 'Paris' });
	const stream = c.messages.stream({ model: toolModel, max_tokens: 64, tools, messages: [{ role: 'user', content: ask }] });
	const streamed = await stream.finalMessage();
	assert.deepEqual(streamed.content.filter((b) => b.type === 'tool_use').map((b) => [b.name, b.input]),
		[['get_weather', { city: 'Paris' }]]);
	const back = await c.messages.create({
		model: toolModel, max_tokens: 64, tools, messages: [
			{ role: 'user', content: ask }, { role: 'assistant', content: m.content },
			{ role: 'user', content: [{ type: 'tool_result', tool_use_id: uses[0].id, content: '22C' }] }],
	});
	assert.equal(back.stop_reason, 'end_turn');
	assert.deepEqual(back.content.map((b) => b.text), [answer]);
});

test('langchain: ChatOpenAI chat, and a tool call round trip', async () => {
	const chat = new ChatOpenAI({ model, apiKey, maxTokens: 8, maxRetries: 0, configuration: { baseURL: `${real}/v1` } });
	const r = await chat.invoke('Say hi');
	assert.equal(typeof r.content, 'string');
	assert.ok(r.usage_metadata.input_tokens > 0);
	const getWeather = lcTool(async ({ city }) => `22 degrees in ${city}`, {
		name: 'get_weather', description: 'the weather in a city', schema: z.object({ city: z.string() }),
	});
	const withTools = new ChatOpenAI({ model: toolModel, apiKey, maxRetries: 0, configuration: { baseURL: `${real}/v1` } })
		.bindTools([getWeather]);
	const ai = await withTools.invoke(ask);
	assert.equal(ai.tool_calls.length, 1);
	assert.equal(ai.tool_calls[0].name, 'get_weather');
	assert.deepEqual(ai.tool_calls[0].args, { city: 'Paris' });
	const result = await getWeather.invoke(ai.tool_calls[0]);
	assert.equal(result.content, '22 degrees in Paris');
	const final = await withTools.invoke([['user', ask], ai, result]);
	assert.equal(final.content, answer);
	assert.deepEqual(final.tool_calls, []);
});

test('langchain: ChatOllama chat, and a tool call round trip (/api/chat)', async () => {
	const chat = new ChatOllama({ model, baseUrl: real, numPredict: 8, headers: { Authorization: `Bearer ${apiKey}` } });
	const r = await chat.invoke('Say hi');
	assert.equal(typeof r.content, 'string');
	assert.ok(r.usage_metadata.input_tokens > 1);
	const getWeather = lcTool(async ({ city }) => `22 degrees in ${city}`, {
		name: 'get_weather', description: 'the weather in a city', schema: z.object({ city: z.string() }),
	});
	const withTools = new ChatOllama({ model: toolModel, baseUrl: real, headers: { Authorization: `Bearer ${apiKey}` } })
		.bindTools([getWeather]);
	const ai = await withTools.invoke(ask);
	assert.equal(ai.tool_calls.length, 1);
	assert.equal(ai.tool_calls[0].name, 'get_weather');
	assert.deepEqual(ai.tool_calls[0].args, { city: 'Paris' });
	const result = await getWeather.invoke(ai.tool_calls[0]);
	const final = await withTools.invoke([['user', ask], ai, result]);
	assert.equal(final.content, answer);
	assert.deepEqual(final.tool_calls, []);
});

test('ai sdk: streamText, a required tool call, and a tool round trip', async () => {
	const lemon = createOpenAICompatible({ name: 'lemon', baseURL: `${real}/v1`, apiKey, includeUsage: true });
	const r = streamText({ model: lemon(model), prompt: 'Count', maxOutputTokens: 8 });
	let text = '';
	for await (const t of r.textStream)
		text += t;
	assert.equal(typeof text, 'string');
	assert.ok((await r.usage).inputTokens > 0);
	const inputSchema = jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] });
	const g = await generateText({
		model: lemon(toolModel),
		prompt: ask,
		toolChoice: 'required',
		tools: { get_weather: aiTool({ description: 'the weather in a city', inputSchema }) },
	});
	assert.equal(g.toolCalls.length, 1);
	assert.equal(g.toolCalls[0].toolName, 'get_weather');
	assert.deepEqual(g.toolCalls[0].input, { city: 'Paris' });
	assert.equal(g.finishReason, 'tool-calls');
	// the SDK runs the tool and sends its result back (streamed): the final step is text
	const seen = [];
	const s = streamText({
		model: lemon(toolModel),
		prompt: ask,
		stopWhen: stepCountIs(3),
		tools: {
			get_weather: aiTool({
				description: 'the weather in a city', inputSchema,
				execute: async ({ city }) => { seen.push(city); return `22 degrees in ${city}`; },
			}),
		},
	});
	let out = '';
	for await (const t of s.textStream)
		out += t;
	assert.deepEqual(seen, ['Paris']);
	assert.equal(out, answer);
	assert.equal((await s.steps).length, 2);
});

test('ollama: chat with tools, whole and streamed, and the round trip', async () => {
	const o = new Ollama({ host: real, headers: { Authorization: `Bearer ${apiKey}` } });
	const r = await o.chat({ model: toolModel, messages: [{ role: 'user', content: ask }], tools: [weather] });
	assert.deepEqual(r.message.tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
	assert.equal(r.done_reason, 'stop');
	const parts = [];
	for await (const p of await o.chat({ model: toolModel, stream: true, tools: [weather], messages: [{ role: 'user', content: ask }] }))
		parts.push(p);
	const calls = parts.filter((p) => p.message.tool_calls?.length);
	assert.equal(calls.length, 1);
	assert.deepEqual(calls[0].message.tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
	assert.equal(parts.at(-1).done, true);
	const back = await o.chat({
		model: toolModel, tools: [weather], messages: [
			{ role: 'user', content: ask }, r.message,
			{ role: 'tool', content: '22C', tool_name: 'get_weather' }],
	});
	assert.equal(back.message.content, answer);
	assert.equal(back.message.tool_calls, undefined);
	// the same result without the assistant's call: the model says so
	const noCall = await o.chat({
		model: toolModel, tools: [weather], messages: [
			{ role: 'user', content: ask }, { role: 'tool', content: '22C', tool_name: 'get_weather' }],
	});
	assert.equal(noCall.message.content, 'Unknown call.');
});

test('llamaindex: OpenAI client chat', async () => {
	const llm = new LlamaOpenAI({ model, apiKey, maxTokens: 8, maxRetries: 0, additionalSessionOptions: { baseURL: `${real}/v1` } });
	const r = await llm.chat({ messages: [{ role: 'user', content: 'Say hi' }] });
	assert.equal(r.message.role, 'assistant');
	assert.equal(typeof r.message.content, 'string');
});

test('llamaindex: OpenAI client tool call round trip', async () => {
	const llm = new LlamaOpenAI({ model: toolModel, apiKey, maxRetries: 0, additionalSessionOptions: { baseURL: `${real}/v1` } });
	const tools = [{ metadata: { name: 'get_weather', description: 'the weather in a city', parameters: weather.function.parameters } }];
	const r = await llm.chat({ tools, messages: [{ role: 'user', content: ask }] });
	const calls = r.message.options.toolCall;
	assert.equal(calls.length, 1);
	assert.equal(calls[0].name, 'get_weather');
	assert.deepEqual(JSON.parse(calls[0].input), { city: 'Paris' });
	const back = await llm.chat({
		tools, messages: [
			{ role: 'user', content: ask },
			{ role: 'assistant', content: '', options: { toolCall: calls } },
			{ role: 'user', content: '22C', options: { toolResult: { id: calls[0].id, result: '22C', isError: false } } }],
	});
	assert.equal(back.message.content, answer);
});
