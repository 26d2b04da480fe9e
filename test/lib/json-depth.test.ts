import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepth } from '../../src/lib/json-depth.ts';

test('jsonDepth counts nesting of the text, skipping strings and escapes', () => {
  assert.equal(jsonDepth('1'), 0);
  assert.equal(jsonDepth('{}'), 1);
  assert.equal(jsonDepth('{"a":[1,{"b":[]}],"c":{}}'), 4);
  assert.equal(jsonDepth('{"a":"[[[{{{"}'), 1, 'brackets inside strings do not count');
  assert.equal(jsonDepth('["\\"[[[", "\\\\", [[]]]'), 3, 'escaped quotes and backslashes end strings correctly');
  assert.equal(jsonDepth('['.repeat(10) + ']'.repeat(10)), 10);
  // Stops at the limit without walking a huge text.
  assert.equal(jsonDepth('['.repeat(1_000_000), 32), 33);
  // Agrees with JSON.parse on valid text.
  const value = { a: [[[{ b: [1, 2, { c: 'x]}' }] }]]] };
  assert.equal(jsonDepth(JSON.stringify(value)), 7);
});
