// The pinned clients run on a Node they declare support for: each direct
// dependency's engines.node minimum (">=X[.Y[.Z]]", the form these use) is
// met by the node running the tests (tests/integration/lib.sh puts the
// Node 22 that package.json pins first on PATH; Debian 12's is 18).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const json = (p) => JSON.parse(readFileSync(new URL(p, here), 'utf8'));
const parts = (v) => v.split('.').map((n) => Number.parseInt(n, 10) || 0);
const atLeast = (have, want) => {
	for (let i = 0; i < 3; i++) {
		if ((have[i] ?? 0) !== (want[i] ?? 0)) return (have[i] ?? 0) > (want[i] ?? 0);
	}
	return true;
};

test('every pinned client supports this node', () => {
	const deps = Object.keys(json('package.json').dependencies);
	const have = parts(process.versions.node);
	const unmet = [];
	let checked = 0;
	for (const d of deps) {
		const range = json(`node_modules/${d}/package.json`).engines?.node;
		const m = range && /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(range.trim());
		if (!m) continue;
		checked++;
		if (!atLeast(have, parts(m[1]))) unmet.push(`${d} wants ${range}`);
	}
	assert.ok(checked >= 3, `only ${checked} clients declare a minimum`);
	assert.deepEqual(unmet, [], `node ${process.versions.node}: ${unmet.join(', ')}`);
});
