import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonPointer, resolveJsonPointer } from '../../src/server/rules/json-pointer.js';

describe('parseJsonPointer', () => {
  const cases: readonly (readonly [string, readonly string[]])[] = [
    ['', []],
    ['/', ['']],
    ['/a', ['a']],
    ['/kubernetes.io/pod/name', ['kubernetes.io', 'pod', 'name']],
    ['/a~1b', ['a/b']],
    ['/m~0n', ['m~n']],
    // ~01 is "~1" literally: ~1 is replaced first, then ~0 (RFC 6901 section 4)
    ['/~01', ['~1']],
    ['/~10', ['/0']],
    ['/a//b', ['a', '', 'b']],
    ['/items/0', ['items', '0']],
  ];
  for (const [pointer, tokens] of cases) {
    it(`parses ${JSON.stringify(pointer)}`, () => {
      assert.deepEqual(parseJsonPointer(pointer), tokens);
    });
  }

  it('refuses a pointer that does not start with "/"', () => {
    assert.throws(() => parseJsonPointer('a/b'), /not a JSON pointer/);
  });
});

describe('resolveJsonPointer', () => {
  // The example document of RFC 6901 section 5, plus nesting and a Kubernetes claim.
  const document = {
    foo: ['bar', 'baz'],
    '': 0,
    'a/b': 1,
    'c%d': 2,
    'e^f': 3,
    'g|h': 4,
    'i\\j': 5,
    'k"l': 6,
    ' ': 7,
    'm~n': 8,
    nested: { list: [{ name: 'first' }, { name: 'second' }], nothing: null },
    'kubernetes.io': { namespace: 'payments', pod: { name: 'wf-step-1' } },
  };
  const resolve = (pointer: string) => resolveJsonPointer(document, parseJsonPointer(pointer));

  const found: readonly (readonly [string, unknown])[] = [
    ['', document],
    ['/foo', ['bar', 'baz']],
    ['/foo/0', 'bar'],
    ['/foo/1', 'baz'],
    ['/', 0],
    ['/a~1b', 1],
    ['/c%d', 2],
    ['/e^f', 3],
    ['/g|h', 4],
    ['/i\\j', 5],
    ['/k"l', 6],
    ['/ ', 7],
    ['/m~0n', 8],
    ['/nested/list/1/name', 'second'],
    ['/nested/nothing', null],
    ['/kubernetes.io/pod/name', 'wf-step-1'],
  ];
  for (const [pointer, value] of found) {
    it(`resolves ${JSON.stringify(pointer)}`, () => {
      assert.deepEqual(resolve(pointer), value);
    });
  }

  const absent: readonly string[] = [
    '/missing',
    '/foo/2', // past the end
    '/foo/-', // RFC 6901 "-" names the element after the last: never present
    '/foo/01', // leading zero is not an array index
    '/foo/-1',
    '/foo/1.0',
    '/foo/ 1',
    '/foo/length', // array properties are not members
    '/foo/0/0', // into a string
    '/nested/nothing/x', // through null
    '/a~1b/x', // through a number
    '/a/b', // "/" is not a path separator inside a token once escaped
    '/kubernetes.io/pod/name/length',
  ];
  for (const pointer of absent) {
    it(`resolves ${JSON.stringify(pointer)} to undefined`, () => {
      assert.equal(resolve(pointer), undefined);
    });
  }

  const prototypeKeys: readonly string[] = [
    '/__proto__',
    '/constructor',
    '/constructor/name',
    '/toString',
    '/hasOwnProperty',
    '/nested/__proto__',
    '/nested/constructor/prototype',
    '/foo/constructor',
    '/foo/__proto__',
  ];
  for (const pointer of prototypeKeys) {
    it(`does not reach the prototype through ${JSON.stringify(pointer)}`, () => {
      assert.equal(resolve(pointer), undefined);
    });
  }

  it('resolves an own "__proto__" member of parsed JSON, which is data, not the prototype', () => {
    const parsed: unknown = JSON.parse('{"__proto__": {"role": "admin"}}');
    assert.deepEqual(resolveJsonPointer(parsed, parseJsonPointer('/__proto__/role')), 'admin');
    assert.equal(resolveJsonPointer({}, parseJsonPointer('/__proto__/role')), undefined);
  });

  it('resolves nothing below a primitive document', () => {
    assert.equal(resolveJsonPointer('text', ['length']), undefined);
    assert.equal(resolveJsonPointer(42, ['x']), undefined);
    assert.equal(resolveJsonPointer(null, ['x']), undefined);
    assert.equal(resolveJsonPointer(undefined, ['x']), undefined);
  });
});
