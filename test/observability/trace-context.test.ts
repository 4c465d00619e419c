import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { incomingTraceContext, parseTraceParent, parseTraceState } from '../../src/server/observability/trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe('parseTraceParent: W3C Trace Context, strictly', () => {
  it('reads a version 00 traceparent', () => {
    assert.deepEqual(parseTraceParent(VALID), { traceId: TRACE_ID, parentSpanId: SPAN_ID, traceFlags: 1 });
    assert.deepEqual(parseTraceParent(`00-${TRACE_ID}-${SPAN_ID}-00`), { traceId: TRACE_ID, parentSpanId: SPAN_ID, traceFlags: 0 });
  });

  it('reads a later version by its version 00 prefix, when what follows the flags starts with "-"', () => {
    assert.deepEqual(parseTraceParent(`01-${TRACE_ID}-${SPAN_ID}-01`), { traceId: TRACE_ID, parentSpanId: SPAN_ID, traceFlags: 1 });
    assert.deepEqual(parseTraceParent(`cc-${TRACE_ID}-${SPAN_ID}-09-future`), { traceId: TRACE_ID, parentSpanId: SPAN_ID, traceFlags: 9 });
  });

  const invalid: [string, string | string[] | undefined][] = [
    ['absent', undefined],
    ['empty', ''],
    ['two headers (an array)', [VALID, VALID]],
    ['two headers joined by Node', `${VALID}, ${VALID}`],
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ['version 00 with more fields', `${VALID}-extra`],
    ['a later version followed by other than "-"', `01-${TRACE_ID}-${SPAN_ID}-01x`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['uppercase hex', `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ['short trace id', `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ['long parent id', `00-${TRACE_ID}-${SPAN_ID}0-01`],
    ['one-digit flags', `00-${TRACE_ID}-${SPAN_ID}-1`],
    ['surrounding space', ` ${VALID}`],
    ['trailing newline', `${VALID}\n`],
    ['other separators', `00_${TRACE_ID}_${SPAN_ID}_01`],
    ['non-hex', `00-${TRACE_ID.slice(0, 31)}g-${SPAN_ID}-01`],
    ['oversized later version', `01-${TRACE_ID}-${SPAN_ID}-01-${'a'.repeat(300)}`],
  ];
  for (const [name, value] of invalid) {
    it(`ignores ${name}`, () => assert.equal(parseTraceParent(value), undefined));
  }

  it('property: whatever it accepts is 32 and 16 lowercase hex digits, not zero, taken from the header itself', () => {
    const hexString = (length: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF-x'), minLength: length, maxLength: length });
    const candidate = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.tuple(hexString(2), hexString(32), hexString(16), hexString(2), fc.string({ maxLength: 8 })).map(([v, t, p, f, rest]) => `${v}-${t}-${p}-${f}${rest}`),
    );
    fc.assert(
      fc.property(candidate, (value) => {
        const parsed = parseTraceParent(value);
        if (parsed === undefined) return;
        assert.match(parsed.traceId, /^[0-9a-f]{32}$/);
        assert.match(parsed.parentSpanId, /^[0-9a-f]{16}$/);
        assert.notEqual(parsed.traceId, '0'.repeat(32));
        assert.notEqual(parsed.parentSpanId, '0'.repeat(16));
        assert.equal(value.slice(3, 35), parsed.traceId);
        assert.ok(parsed.traceFlags >= 0 && parsed.traceFlags <= 255);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseTraceState', () => {
  it('keeps a well-formed list', () => {
    assert.equal(parseTraceState('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'), 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    assert.equal(parseTraceState('tenant@vendor=x, other=y'), 'tenant@vendor=x, other=y');
  });

  const invalid: [string, string | string[] | undefined][] = [
    ['absent', undefined],
    ['empty', ''],
    ['an array', ['a=1', 'b=2']],
    ['over 512 characters', `a=${'x'.repeat(511)}`],
    ['33 members', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')],
    ['a duplicate key', 'a=1,a=2'],
    ['an uppercase key', 'Rojo=1'],
    ['a value with "="', 'a=b=c'],
    ['a control character', 'a=b\u0007'],
    ['a newline (log injection)', 'a=b\n{"level":60}'],
    ['no value', 'a='],
    ['only commas', ',,'],
  ];
  for (const [name, value] of invalid) {
    it(`drops ${name}`, () => assert.equal(parseTraceState(value), undefined));
  }
});

describe('incomingTraceContext', () => {
  it('is undefined without a traceparent, whatever the tracestate', () => {
    assert.equal(incomingTraceContext({ tracestate: 'a=1' }), undefined);
    assert.equal(incomingTraceContext({ traceparent: 'garbage', tracestate: 'a=1' }), undefined);
  });

  it('keeps a valid traceparent and drops a malformed tracestate', () => {
    assert.deepEqual(incomingTraceContext({ traceparent: VALID, tracestate: 'a=b=c' }), { traceId: TRACE_ID, parentSpanId: SPAN_ID, traceFlags: 1, traceState: undefined });
    assert.deepEqual(incomingTraceContext({ traceparent: VALID, tracestate: 'a=1' }), { traceId: TRACE_ID, parentSpanId: SPAN_ID, traceFlags: 1, traceState: 'a=1' });
  });
});
