import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  commandLines,
  commandSubstitution,
  exchangeCommand,
  findBrokerCall,
  findReadOnceTraps,
  findTokenReads,
  quoteContextAt,
  shellAssignments,
  shellFunctions,
  variableReferences,
} from '../../src/tools/lint/script-text.js';

const BROKER = 'https://token-broker.platform.svc.cluster.local';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe('broker calls', () => {
  const cases: [string, string, string | undefined, string | undefined][] = [
    ['the README one-header form', `curl -X POST ${BROKER}/token -H "Authorization: Bearer $(cat /t/token)"`, undefined, `${BROKER}/token`],
    ['the RFC 8693 form', `curl ${BROKER}/token -d grant_type=${GRANT} -d subject_token=x`, undefined, `${BROKER}/token`],
    ['a URL from a variable', `curl "$BROKER_URL/token" -H "Authorization: Bearer $(cat /t/token)"`, undefined, '$BROKER_URL/token'],
    ['an Argo parameter', `curl {{inputs.parameters.broker}}/token --data grant_type=${GRANT}`, undefined, '{{inputs.parameters.broker}}/token'],
    ['the known broker URL alone', 'curl https://broker.internal.example/v1', 'https://broker.internal.example/', 'https://broker.internal.example'],
    ['a /token path without either sign', 'curl https://gateway.example.com/oauth/token -d x=1', undefined, undefined],
    ['a token file path is not an endpoint', 'cat /var/run/secrets/token-broker/token; echo Bearer $(cat /x)', undefined, undefined],
    ['a /token-status path', `curl https://gw.example.com/token-status -d grant_type=${GRANT}`, undefined, undefined],
  ];
  for (const [name, text, brokerUrl, evidence] of cases) {
    it(name, () => {
      const call = findBrokerCall(text, brokerUrl);
      assert.equal(call === undefined ? undefined : text.slice(call.index, call.index + call.length), evidence);
    });
  }
});

describe('token reads', () => {
  it('finds cat, redirection, backticks, curl @file and Python open, resolving variables', () => {
    const script = [
      'A=$(cat /var/run/secrets/token-broker/token)',
      'B="$(< /etc/broker/token)"',
      'C=`cat /run/secrets/t`',
      'curl --data-urlencode subject_token@/var/run/secrets/tb/token',
      'D=$(cat "$TOKEN_FILE")',
      'E=$(cat ${OTHER})',
      "token = open('/var/run/secrets/py/token').read()",
    ].join('\n');
    const reads = findTokenReads(script, new Map([['TOKEN_FILE', '/var/run/secrets/env/token']]));
    assert.deepEqual(
      reads.map((read) => [read.written, read.path, script.slice(read.index, read.index + read.written.length)]),
      [
        ['/var/run/secrets/token-broker/token', '/var/run/secrets/token-broker/token', '/var/run/secrets/token-broker/token'],
        ['/etc/broker/token', '/etc/broker/token', '/etc/broker/token'],
        ['/run/secrets/t', '/run/secrets/t', '/run/secrets/t'],
        ['/var/run/secrets/tb/token', '/var/run/secrets/tb/token', '/var/run/secrets/tb/token'],
        ['$TOKEN_FILE', '/var/run/secrets/env/token', '$TOKEN_FILE'],
        ['${OTHER}', '${OTHER}', '${OTHER}'],
        ['/var/run/secrets/py/token', '/var/run/secrets/py/token', '/var/run/secrets/py/token'],
      ],
    );
  });

  it('shellAssignments keeps plain values only', () => {
    assert.deepEqual([...shellAssignments('export TOKEN_FILE=/t/token\nX="$(cat /a)"\n  local DIR="/d"\n')], [
      ['TOKEN_FILE', '/t/token'],
      ['DIR', '/d'],
    ]);
  });

  it('variableReferences finds $NAME, ${NAME} and $(NAME), not longer names', () => {
    const text = 'a $KEY b ${KEY} c $(KEY) d $KEYS e $KEY_2';
    assert.deepEqual(
      variableReferences(text, 'KEY').map((ref) => text.slice(ref.index, ref.index + ref.length)),
      ['$KEY', '${KEY}', '$(KEY)'],
    );
  });

  it('commandLines joins backslash continuations', () => {
    const script = 'a=1\ncurl x \\\n  -H y \\\n  z\necho done';
    assert.deepEqual(
      commandLines(script).map((line) => script.slice(line.start, line.end)),
      ['a=1', 'curl x \\\n  -H y \\\n  z', 'echo done'],
    );
  });
});

describe('the expiry trap', () => {
  const isToken = (rhs: string): boolean => rhs.includes('$(cat /t/token)') || rhs.includes('/token -H');

  it('flags a token read at the top and used after a loop starts', () => {
    const script = 'set -eu\nTOKEN=$(cat /t/token)\nfor i in 1 2 3; do\n  curl -H "Authorization: Bearer $TOKEN" x\ndone\n';
    assert.deepEqual(findReadOnceTraps(script, 'shell', isToken), [{ variable: 'TOKEN', index: 8, laterLine: 3, reason: 'loop' }]);
  });

  it('flags a token used after a sleep', () => {
    const script = 'export T=$(cat /t/token)\ncurl -H "Bearer $T" a\nsleep 3600\ncurl -H "Bearer ${T}" b\n';
    assert.deepEqual(findReadOnceTraps(script, 'shell', isToken), [{ variable: 'T', index: 0, laterLine: 3, reason: 'sleep' }]);
  });

  it('does not flag a read inside the loop, a value re-read later, or a one-shot script', () => {
    const inside = 'for i in 1 2; do\n  TOKEN=$(cat /t/token)\n  curl -H "Bearer $TOKEN" x\ndone\n';
    const reread = 'TOKEN=$(cat /t/token)\nwhile true; do\n  curl -H "Bearer $TOKEN" x\n  TOKEN=$(cat /t/token)\ndone\n';
    const oneShot = 'TOKEN=$(cat /t/token)\ncurl -H "Bearer $TOKEN" x\n';
    const unused = 'TOKEN=$(cat /t/token)\ncurl -H "Bearer $TOKEN" x\nfor f in a b; do echo $f; done\n';
    for (const script of [inside, reread, oneShot, unused]) assert.deepEqual(findReadOnceTraps(script, 'shell', isToken), [], script);
  });

  it('does not flag an assignment inside a function body, which runs again with each call', () => {
    const script = 'get() {\n  T=$(cat /t/token)\n  curl -H "Bearer $T" x\n}\nwhile true; do\n  get\n  echo "$T"\ndone\n';
    assert.deepEqual(findReadOnceTraps(script, 'shell', isToken), []);
  });

  it('shellFunctions lists function bodies', () => {
    const script = 'exchange() {\n  curl x\n}\nfunction other {\n  echo y\n}\nnot_a_function {\n}\n';
    assert.deepEqual([...shellFunctions(script)], [
      ['exchange', '  curl x'],
      ['other', '  echo y'],
    ]);
  });

  it('reads Python: a module-level assignment used after a loop', () => {
    const script = "import time\ntoken = open('/t/token').read()\nwhile True:\n    call(token)\n    time.sleep(60)\n";
    assert.deepEqual(findReadOnceTraps(script, 'python', (rhs) => rhs.includes("open('/t/token')")), [
      { variable: 'token', index: 12, laterLine: 3, reason: 'loop' },
    ]);
  });
});

describe('shell quoting for a replacement', () => {
  it('knows the quoting at a position', () => {
    const script = `a 'single "x' "double 'y' $(inner 'z') w" plain # it's a comment\nnext`;
    const at = (needle: string): number => script.indexOf(needle);
    assert.equal(quoteContextAt(script, at('single')), 'single');
    assert.equal(quoteContextAt(script, at('double')), 'double');
    assert.equal(quoteContextAt(script, at('y\'')), 'double');
    assert.equal(quoteContextAt(script, at('inner')), 'none');
    assert.equal(quoteContextAt(script, at('z')), 'single');
    assert.equal(quoteContextAt(script, at(' w')), 'double');
    assert.equal(quoteContextAt(script, at('plain')), 'none');
    assert.equal(quoteContextAt(script, at('next')), 'none');
  });

  it('writes the exchange so that it expands in any quoting', () => {
    const command = exchangeCommand(`${BROKER}/`, '/var/run/secrets/token-broker/token');
    assert.equal(
      command,
      `curl -sS --fail -X POST ${BROKER}/token -H "Authorization: Bearer $(cat /var/run/secrets/token-broker/token)" -H 'Accept: text/plain'`,
    );
    assert.equal(commandSubstitution('c', 'none'), '"$(c)"');
    assert.equal(commandSubstitution('c', 'double'), '$(c)');
    assert.equal(commandSubstitution('c', 'single'), `'"$(c)"'`);
  });
});
