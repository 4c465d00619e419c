import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, formatPath, type ConfigProblem } from '../../src/server/config/validate-config.js';

/** A small valid configuration; each case below breaks one thing in a fresh copy. */
function validInput(): Record<string, any> {
  return {
    server: { publicUrl: 'https://token-broker.example' },
    issuers: [
      { name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'] },
      { name: 'eks-prod', issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE', audiences: ['tyk-token-broker'] },
    ],
    signing: { keysDir: '/etc/token-broker/keys' },
    rules: [{ name: 'payments', match: { issuers: ['in-cluster'], namespaces: ['payments'] }, policies: ['payments-read'] }],
  };
}

function problemsOf(input: unknown, options?: { requireKeysDir: boolean }): readonly ConfigProblem[] {
  const result = validateConfig(input, options);
  assert.equal(result.ok, false, 'expected the configuration to be refused');
  return result.ok ? [] : result.problems;
}

interface Case {
  readonly name: string;
  readonly mutate: (input: Record<string, any>) => void;
  /** Every problem expected, exactly, in order. */
  readonly problems: readonly ConfigProblem[];
}

const cases: readonly Case[] = [
  {
    name: 'unknown key at the root',
    mutate: (c) => {
      c.listen = 8080;
    },
    problems: [{ path: 'listen', message: 'unknown key' }],
  },
  {
    name: 'unknown key nested in an issuer',
    mutate: (c) => {
      c.issuers[1].audience = 'tyk-token-broker';
    },
    problems: [{ path: 'issuers[1].audience', message: 'unknown key' }],
  },
  {
    name: 'unknown key nested in a rule match',
    mutate: (c) => {
      c.rules[0].match.namespace = 'payments';
    },
    problems: [{ path: 'rules[0].match.namespace', message: 'unknown key' }],
  },
  {
    name: 'unknown key under cache.memory',
    mutate: (c) => {
      c.cache = { memory: { maxEntries: 10, ttl: 5 } };
    },
    problems: [{ path: 'cache.memory.ttl', message: 'unknown key' }],
  },
  {
    name: 'audiences given as a string instead of a list',
    mutate: (c) => {
      c.issuers[0].audiences = 'tyk-token-broker';
    },
    problems: [{ path: 'issuers[0].audiences', message: 'expected array, received string' }],
  },
  {
    name: 'port given as a string',
    mutate: (c) => {
      c.server.port = '8080';
    },
    problems: [{ path: 'server.port', message: 'expected number, received string' }],
  },
  {
    name: 'allowInsecureHttp given as a string',
    mutate: (c) => {
      c.issuers[0].allowInsecureHttp = 'yes';
    },
    problems: [{ path: 'issuers[0].allowInsecureHttp', message: 'expected boolean, received string' }],
  },
  {
    name: 'issuer name that is not a DNS label',
    mutate: (c) => {
      c.issuers[0].name = 'In_Cluster';
    },
    problems: [{ path: 'issuers[0].name', message: 'must be lower-case letters, digits and dashes (a DNS label)' }],
  },
  {
    name: 'claim condition keyed by something that is not a JSON pointer',
    mutate: (c) => {
      c.rules[0].match.claims = { 'kubernetes.io/pod/name': 'orders-*', '/kubernetes.io/namespace': 'payments' };
    },
    problems: [{ path: 'rules[0].match.claims["kubernetes.io/pod/name"]', message: 'key must be a JSON pointer such as /kubernetes.io/pod/name' }],
  },
  {
    name: 'claim condition keyed by a pointer with an invalid escape',
    mutate: (c) => {
      c.rules[0].match.claims = { '/a~2b': 'x' };
    },
    problems: [{ path: 'rules[0].match.claims["/a~2b"]', message: 'key must be a JSON pointer such as /kubernetes.io/pod/name' }],
  },
  {
    name: 'two issuers with the same name',
    mutate: (c) => {
      c.issuers[1].name = 'in-cluster';
    },
    problems: [{ path: 'issuers[1].name', message: 'duplicate issuer name "in-cluster"' }],
  },
  {
    name: 'the same issuer URL twice',
    mutate: (c) => {
      c.issuers[1].issuer = c.issuers[0].issuer;
    },
    problems: [{ path: 'issuers[1].issuer', message: 'the same issuer URL is configured twice' }],
  },
  {
    name: 'a rule naming an issuer that is not configured',
    mutate: (c) => {
      c.rules[0].match.issuers = ['in-cluster', 'gke-prod'];
    },
    problems: [{ path: 'rules[0].match.issuers[1]', message: 'no issuer is named "gke-prod"' }],
  },
  {
    name: 'plain http issuer on a non-loopback host',
    mutate: (c) => {
      c.issuers[0].issuer = 'http://kubernetes.default.svc';
    },
    problems: [{ path: 'issuers[0].issuer', message: 'plain http is only allowed on loopback; use https, or set allowInsecureHttp: true' }],
  },
  {
    name: 'plain http jwksUri and discoveryUrl on a non-loopback host',
    mutate: (c) => {
      c.issuers[0].discoveryUrl = 'http://10.0.0.1/.well-known/openid-configuration';
      c.issuers[0].jwksUri = 'http://10.0.0.1/openid/v1/jwks';
    },
    problems: [
      { path: 'issuers[0].discoveryUrl', message: 'plain http is only allowed on loopback; use https, or set allowInsecureHttp: true' },
      { path: 'issuers[0].jwksUri', message: 'plain http is only allowed on loopback; use https, or set allowInsecureHttp: true' },
    ],
  },
  {
    name: 'a static jwksFile together with jwksUri',
    mutate: (c) => {
      c.issuers[1].jwksFile = '/etc/jwks.json';
      c.issuers[1].jwksUri = 'https://example.com/jwks';
    },
    problems: [{ path: 'issuers[1].jwksFile', message: 'a static jwksFile excludes jwksUri and discoveryUrl' }],
  },
  {
    name: 'default lifetime above the maximum',
    mutate: (c) => {
      c.tokens = { defaultTtlSeconds: 7200, maxTtlSeconds: 3600 };
    },
    problems: [{ path: 'tokens.defaultTtlSeconds', message: 'must not exceed tokens.maxTtlSeconds (3600)' }],
  },
  {
    name: 'a rule lifetime above the maximum',
    mutate: (c) => {
      c.rules[0].ttlSeconds = 7200;
    },
    problems: [{ path: 'rules[0].ttlSeconds', message: 'exceeds tokens.maxTtlSeconds (3600)' }],
  },
  {
    name: 'a cache refresh margin as long as the shortest lifetime',
    mutate: (c) => {
      c.rules[0].ttlSeconds = 60;
    },
    problems: [{ path: 'cache.refreshBeforeSeconds', message: 'must be shorter than the shortest token lifetime, or no cached token could ever be served' }],
  },
  {
    name: 'headers timeout longer than the request timeout (node:http would refuse to start)',
    mutate: (c) => {
      c.server.headersTimeoutSeconds = 60;
      c.server.requestTimeoutSeconds = 30;
    },
    problems: [{ path: 'server.headersTimeoutSeconds', message: 'must not exceed server.requestTimeoutSeconds (30)' }],
  },
  {
    name: 'policyClaim set to a registered claim',
    mutate: (c) => {
      c.tokens = { policyClaim: 'sub' };
    },
    problems: [{ path: 'tokens.policyClaim', message: '"sub" is a registered or Tyk-reserved claim' }],
  },
  {
    name: 'policyClaim set to a claim Tyk reads as an OAuth client id',
    mutate: (c) => {
      c.tokens = { policyClaim: 'client_id' };
    },
    problems: [{ path: 'tokens.policyClaim', message: '"client_id" is a registered or Tyk-reserved claim' }],
  },
  {
    name: 'scopeClaim and policyClaim the same claim',
    mutate: (c) => {
      c.tokens = { policyClaim: 'scope' };
    },
    problems: [{ path: 'tokens', message: 'policyClaim, scopeClaim and contextClaim must be different claims' }],
  },
  {
    name: 'a subject template with an unknown variable',
    mutate: (c) => {
      c.tokens = { subject: '{cluster}:{namespace}:{serviceAccount}' };
    },
    problems: [{ path: 'tokens.subject', message: 'unknown template variable {cluster}' }],
  },
  {
    name: 'allowed audiences without the default audience',
    mutate: (c) => {
      c.tokens = { audience: 'tyk', allowedAudiences: ['tyk-internal'] };
    },
    problems: [{ path: 'tokens.allowedAudiences', message: 'must include the default audience "tyk"' }],
  },
  {
    name: 'two rules with the same name',
    mutate: (c) => {
      c.rules.push({ name: 'payments', policies: ['other'] });
    },
    problems: [{ path: 'rules[1].name', message: 'duplicate rule name "payments"' }],
  },
  {
    name: 'no signing keys directory outside dev mode',
    mutate: (c) => {
      delete c.signing;
    },
    problems: [{ path: 'signing.keysDir', message: 'required: a directory of PKCS#8 PEM signing keys (only dev mode generates one)' }],
  },
  {
    name: 'no rules at all',
    mutate: (c) => {
      c.rules = [];
    },
    problems: [{ path: 'rules', message: 'Too small: expected array to have >=1 items' }],
  },
];

describe('validateConfig: one problem, named by its field path', () => {
  it('accepts the unmodified base configuration', () => {
    assert.equal(validateConfig(validInput()).ok, true);
  });

  for (const c of cases) {
    it(c.name, () => {
      const input = validInput();
      c.mutate(input);
      assert.deepEqual(problemsOf(input), c.problems);
    });
  }
});

describe('validateConfig: transport security', () => {
  it('accepts plain http on a non-loopback host when allowInsecureHttp is set', () => {
    const input = validInput();
    input.issuers[0].issuer = 'http://kubernetes.default.svc';
    input.issuers[0].allowInsecureHttp = true;
    assert.equal(validateConfig(input).ok, true);
  });

  for (const issuer of ['http://127.0.0.1:6443', 'http://localhost:6443', 'http://[::1]:6443', 'http://127.8.9.10']) {
    it(`accepts plain http on loopback: ${issuer}`, () => {
      const input = validInput();
      input.issuers[0].issuer = issuer;
      assert.equal(validateConfig(input).ok, true);
    });
  }

  it('refuses schemes other than http and https', () => {
    const input = validInput();
    input.issuers[0].issuer = 'ftp://kubernetes.default.svc';
    assert.deepEqual(problemsOf(input), [{ path: 'issuers[0].issuer', message: 'Invalid URL' }]);
  });
});

describe('validateConfig: every problem at once', () => {
  it('reports all shape problems in one pass, not only the first', () => {
    const input = validInput();
    input.extra = true;
    input.issuers[0].audiences = 'tyk-token-broker';
    input.issuers[1].name = 'EKS';
    input.server.port = 0;
    input.rules[0].policies = ['has space'];
    const paths = problemsOf(input).map((p) => p.path);
    assert.deepEqual(paths.sort(), ['extra', 'issuers[0].audiences', 'issuers[1].name', 'rules[0].policies[0]', 'server.port'].sort());
  });

  it('reports all cross-field problems in one pass, with the missing keysDir', () => {
    const input = validInput();
    delete input.signing;
    input.issuers[1].name = 'in-cluster';
    input.rules[0].match.issuers = ['nowhere'];
    input.rules[0].ttlSeconds = 7200;
    input.tokens = { subject: '{cluster}', contextClaim: 'aud' };
    assert.deepEqual(problemsOf(input), [
      { path: 'issuers[1].name', message: 'duplicate issuer name "in-cluster"' },
      { path: 'tokens.contextClaim', message: '"aud" is a registered or Tyk-reserved claim' },
      { path: 'tokens.subject', message: 'unknown template variable {cluster}' },
      { path: 'rules[0].match.issuers[0]', message: 'no issuer is named "nowhere"' },
      { path: 'rules[0].ttlSeconds', message: 'exceeds tokens.maxTtlSeconds (3600)' },
      { path: 'signing.keysDir', message: 'required: a directory of PKCS#8 PEM signing keys (only dev mode generates one)' },
    ]);
  });

  for (const document of [null, [], 'server: x', 42]) {
    it(`refuses a document that is not a mapping: ${JSON.stringify(document)}`, () => {
      const problems = problemsOf(document);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]?.path, '(root)');
      assert.match(problems[0]?.message ?? '', /^expected object, received /);
    });
  }
});

describe('validateConfig: the validated configuration', () => {
  it('fills in every default', () => {
    const result = validateConfig(validInput());
    assert.ok(result.ok);
    const { config } = result;
    assert.deepEqual(config.server, {
      publicUrl: 'https://token-broker.example',
      port: 8080,
      host: '0.0.0.0',
      headersTimeoutSeconds: 10,
      requestTimeoutSeconds: 30,
      shutdownTimeoutSeconds: 20,
    });
    assert.deepEqual(config.issuers[0], {
      name: 'in-cluster',
      issuer: 'https://kubernetes.default.svc',
      audiences: ['tyk-token-broker'],
      kind: 'kubernetes',
      clockSkewSeconds: 30,
      allowInsecureHttp: false,
    });
    assert.deepEqual(config.signing, { algorithm: 'ES256', keysDir: '/etc/token-broker/keys', prePublishSeconds: 300, tykJwksCacheSeconds: 240, retireMarginSeconds: 60 });
    assert.deepEqual(config.tokens, {
      audience: 'tyk',
      defaultTtlSeconds: 600,
      maxTtlSeconds: 3600,
      subject: 'system:serviceaccount:{namespace}:{serviceAccount}',
      policyClaim: 'pol',
      scopeClaim: 'scope',
      contextClaim: 'workload',
      format: 'jwt',
    });
    assert.deepEqual(config.cache, { refreshBeforeSeconds: 60, memory: { maxEntries: 10000 } });
    assert.deepEqual(config.logging, { level: 'info' });
  });

  it('gives a rule without match an empty match, which matches everything', () => {
    const input = validInput();
    input.rules.push({ name: 'everyone', policies: ['status-read'] });
    const result = validateConfig(input);
    assert.ok(result.ok);
    assert.deepEqual(result.config.rules[1], { name: 'everyone', match: {}, policies: ['status-read'] });
  });

  it('is deeply frozen', () => {
    const result = validateConfig(validInput());
    assert.ok(result.ok);
    const { config } = result;
    for (const value of [config, config.server, config.issuers, config.issuers[0], config.issuers[0]?.audiences, config.rules[0]?.match, config.rules[0]?.match.namespaces, config.tokens, config.cache.memory]) {
      assert.equal(Object.isFrozen(value), true);
    }
    assert.throws(() => {
      (config.server as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (config.issuers as unknown as unknown[]).push({});
    }, TypeError);
  });

  it('does not need keysDir for the embedded dev configuration', () => {
    const input = validInput();
    delete input.signing;
    const result = validateConfig(input, { requireKeysDir: false });
    assert.ok(result.ok);
    assert.equal(result.config.signing.keysDir, undefined);
  });

  it('does not modify the input document', () => {
    const input = validInput();
    const before = structuredClone(input);
    validateConfig(input);
    assert.deepEqual(input, before);
  });
});

describe('formatPath', () => {
  const table: readonly [readonly PropertyKey[], string][] = [
    [[], '(root)'],
    [['server', 'port'], 'server.port'],
    [['issuers', 0, 'audiences'], 'issuers[0].audiences'],
    [['rules', 2, 'match', 'claims', '/kubernetes.io/pod/name'], 'rules[2].match.claims["/kubernetes.io/pod/name"]'],
    [['a.b'], '["a.b"]'],
  ];
  for (const [path, expected] of table) {
    it(`${JSON.stringify(path)} -> ${expected}`, () => {
      assert.equal(formatPath(path), expected);
    });
  }
});

describe('validateConfig: Kubernetes facts come only from kind: kubernetes issuers', () => {
  /** One kubernetes issuer and one oidc issuer (a CI system's), as in issue 14's attack. */
  function mixedInput(rule: Record<string, any>): Record<string, any> {
    const input = validInput();
    input.issuers[1] = { name: 'ci', issuer: 'https://token.actions.example', audiences: ['tyk-token-broker'], kind: 'oidc' };
    input.tokens = { subject: '{issuer}:{sub}' };
    input.rules = [rule];
    return input;
  }

  const oidcOnly: readonly { name: string; match: Record<string, any>; policies?: string[]; facts: string }[] = [
    { name: 'namespaces', match: { issuers: ['ci'], namespaces: ['payments'] }, facts: 'namespaces' },
    { name: 'serviceAccounts', match: { issuers: ['ci'], serviceAccounts: ['argo-*'] }, facts: 'serviceAccounts' },
    { name: 'a namespace selector', match: { issuers: ['ci'], namespaceSelector: { matchLabels: { team: 'payments' } } }, facts: 'namespaceSelector' },
    { name: 'workflows', match: { issuers: ['ci'], workflows: ['orders-*'] }, facts: 'workflows' },
    { name: 'a {namespace} policy template', match: { issuers: ['ci'] }, policies: ['{namespace}-read'], facts: 'policy templates over {namespace}/{serviceAccount}' },
  ];
  for (const c of oidcOnly) {
    it(`refuses ${c.name} in a rule scoped only to oidc issuers, with the rule's path`, () => {
      const rule = { name: 'ci-payments', match: c.match, policies: c.policies ?? ['payments-read'], ...(c.policies && { allowedPolicies: ['*-read'] }) };
      const problems = problemsOf(mixedInput(rule));
      // A workflows condition also breaks the trust tiers (pod conditions need administrator scope): both are said.
      assert.ok(
        problems.some((p) => p.path === 'rules[0].match' && p.message === `reads Kubernetes facts (${c.facts}) but applies only to kind: oidc issuers, whose tokens carry none: it can never match`),
        JSON.stringify(problems),
      );
    });
  }

  it('accepts the same condition scoped to the kubernetes issuer, without a warning', () => {
    const result = validateConfig(mixedInput({ name: 'payments', match: { issuers: ['in-cluster'], namespaces: ['payments'] }, policies: ['payments-read'] }));
    assert.ok(result.ok);
    assert.deepEqual(result.warnings, []);
  });

  it('warns, with the rule\'s path, about a rule naming no issuer while both kinds are configured', () => {
    const result = validateConfig(mixedInput({ name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] }));
    assert.ok(result.ok, 'valid: the kubernetes issuer\'s tokens can match it');
    assert.deepEqual(result.warnings, [
      'rules[0].match.issuers: rule "payments" names no issuer while issuers of kind kubernetes and oidc are both configured: it applies to the tokens of every issuer; name the issuers it is meant for',
    ]);
  });

  it('does not warn about a rule naming no issuer when every issuer is of one kind', () => {
    const input = validInput();
    input.rules = [{ name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] }];
    const result = validateConfig(input);
    assert.ok(result.ok);
    assert.deepEqual(result.warnings, []);
  });

  it('warns about a claim condition on the kubernetes.io claim of oidc tokens', () => {
    const result = validateConfig(mixedInput({ name: 'ci', match: { issuers: ['ci'], claims: { '/kubernetes.io/namespace': 'payments' } }, policies: ['payments-read'] }));
    assert.ok(result.ok);
    assert.deepEqual(result.warnings, [
      'rules[0].match.claims["/kubernetes.io/namespace"]: rule "ci" matches the kubernetes.io claim of kind: oidc tokens, which no API server checked; match namespaces or serviceAccounts of a kind: kubernetes issuer instead',
    ]);
  });
});
