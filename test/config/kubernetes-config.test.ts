import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kubernetesOf, validateConfig, type ConfigProblem } from '../../src/server/config/validate-config.js';
import { loadConfigFile } from '../../src/server/config/load-config.js';
import { MINIMAL_CONFIG_YAML } from '../support/config-yaml.js';
import { useScratchDir } from '../support/scratch-dir.js';

const NEEDS_CLUSTER = 'reads Kubernetes labels or pod metadata, but no issuer this rule applies to has kubernetes enabled';
const OIDC_KUBERNETES = 'kubernetes lookups need kind: kubernetes tokens (namespace, service account, pod claims)';
const SUBJECT_NEEDS_POD = '{workflow} and {node} are read from the pod: every issuer needs kubernetes enabled';
const SUBJECT_OIDC =
  'uses Kubernetes variables ({namespace}, {serviceAccount}, {pod}, {workflow}, {node}) that tokens of a kind: oidc issuer do not carry; use {issuer} and {sub}';

const TEAM_SELECTOR = { matchLabels: { team: 'payments' } };

/** Two kubernetes issuers, Kubernetes enabled at the top level, one baseline rule; each case changes a fresh copy. */
function validInput(): Record<string, any> {
  return {
    server: { publicUrl: 'https://token-broker.example' },
    issuers: [
      { name: 'in-cluster', issuer: 'https://kubernetes.default.svc', audiences: ['tyk-token-broker'] },
      { name: 'eks-prod', issuer: 'https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE', audiences: ['tyk-token-broker'] },
    ],
    signing: { keysDir: '/etc/token-broker/keys' },
    kubernetes: { kubeconfig: '/etc/token-broker/kubeconfig' },
    rules: [{ name: 'baseline', match: { namespaces: ['*'] }, policies: ['status-read'] }],
  };
}

function problemsOf(input: unknown): readonly ConfigProblem[] {
  const result = validateConfig(input);
  assert.equal(result.ok, false, 'expected the configuration to be refused');
  return result.ok ? [] : result.problems;
}

function accepted(input: unknown) {
  const result = validateConfig(input);
  assert.equal(result.ok, true, `expected the configuration to be accepted: ${JSON.stringify(result.ok ? [] : result.problems)}`);
  if (!result.ok) throw new Error('unreachable');
  return result.config;
}

interface Case {
  readonly name: string;
  readonly mutate: (input: Record<string, any>) => void;
  readonly problems: readonly ConfigProblem[];
}

const refused: readonly Case[] = [
  // Templates and allowedPolicies
  {
    name: 'a template without allowedPolicies',
    mutate: (c) => c.rules.push({ name: 'team', match: { namespaceSelector: TEAM_SELECTOR }, policies: ['{namespace.labels.team}-read'] }),
    problems: [{ path: 'rules[1].allowedPolicies', message: 'required: "{namespace.labels.team}-read" is a template, and allowedPolicies bounds what it may produce' }],
  },
  {
    name: 'a requestable template without allowedPolicies',
    mutate: (c) => c.rules.push({ name: 'team', match: { namespaces: ['payments'] }, requestable: ['{namespace}-write'] }),
    problems: [{ path: 'rules[1].allowedPolicies', message: 'required: "{namespace}-write" is a template, and allowedPolicies bounds what it may produce' }],
  },
  {
    name: 'a literal outside its own allowedPolicies',
    mutate: (c) =>
      c.rules.push({
        name: 'team',
        match: { namespaces: ['payments'] },
        policies: ['{namespace}-read', 'payments-admin'],
        allowedPolicies: ['*-read'],
      }),
    problems: [{ path: 'rules[1].policies[1]', message: '"payments-admin" is not in this rule\'s allowedPolicies' }],
  },
  {
    name: 'a requestable literal outside its own allowedPolicies',
    mutate: (c) => c.rules.push({ name: 'team', match: { namespaces: ['payments'] }, requestable: ['payments-write'], allowedPolicies: ['*-read'] }),
    problems: [{ path: 'rules[1].requestable[0]', message: '"payments-write" is not in this rule\'s allowedPolicies' }],
  },
  {
    name: 'a template reading the pod',
    mutate: (c) => c.rules.push({ name: 'team', match: { namespaces: ['payments'] }, requestable: ['{pod.labels.team}-write'], allowedPolicies: ['*-write'] }),
    problems: [
      {
        path: 'rules[1].requestable[0]',
        message:
          '{pod.labels.team} cannot be used in a policy: templates may read only {issuer}, {namespace}, {serviceAccount}, {namespace.labels.KEY} and {serviceAccount.labels.KEY} (values set by administrators, never by a workflow\'s submitter)',
      },
    ],
  },
  {
    name: 'a template with unbalanced braces',
    mutate: (c) => c.rules.push({ name: 'team', match: { namespaces: ['payments'] }, policies: ['{namespace-read'], allowedPolicies: ['*'] }),
    problems: [{ path: 'rules[1].policies[0]', message: 'unbalanced braces in "{namespace-read"' }],
  },

  // Selector expressions
  {
    name: 'In without values',
    mutate: (c) => c.rules.push({ name: 'sel', match: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] } }, policies: ['x'] }),
    problems: [{ path: 'rules[1].match.namespaceSelector.matchExpressions[0].values', message: 'In needs at least one value' }],
  },
  {
    name: 'NotIn with an empty list of values',
    mutate: (c) =>
      c.rules.push({
        name: 'sel',
        match: { serviceAccountSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'team', operator: 'NotIn', values: [] }] } },
        policies: ['x'],
      }),
    problems: [{ path: 'rules[1].match.serviceAccountSelector.matchExpressions[1].values', message: 'NotIn needs at least one value' }],
  },
  {
    name: 'Exists with values',
    mutate: (c) =>
      c.rules.push({
        name: 'sel',
        match: { namespaces: ['payments'], podSelector: { matchExpressions: [{ key: 'team', operator: 'Exists', values: ['payments'] }] } },
        requestable: ['x'],
      }),
    problems: [{ path: 'rules[1].match.podSelector.matchExpressions[0].values', message: 'Exists takes no values' }],
  },
  {
    name: 'DoesNotExist with values',
    mutate: (c) =>
      c.rules.push({
        name: 'sel',
        match: { namespaces: ['payments'], podAnnotationSelector: { matchExpressions: [{ key: 'skip', operator: 'DoesNotExist', values: ['true'] }] } },
        requestable: ['x'],
      }),
    problems: [{ path: 'rules[1].match.podAnnotationSelector.matchExpressions[0].values', message: 'DoesNotExist takes no values' }],
  },
  {
    name: 'a matchLabels value a label cannot hold',
    mutate: (c) => c.rules.push({ name: 'sel', match: { namespaceSelector: { matchLabels: { team: 'evil*' } } }, policies: ['x'] }),
    problems: [{ path: 'rules[1].match.namespaceSelector.matchLabels.team', message: 'must be a Kubernetes label value' }],
  },
  {
    name: 'an unknown operator',
    mutate: (c) => c.rules.push({ name: 'sel', match: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Gt', values: ['1'] }] } }, policies: ['x'] }),
    problems: [{ path: 'rules[1].match.namespaceSelector.matchExpressions[0].operator', message: 'Invalid option: expected one of "In"|"NotIn"|"Exists"|"DoesNotExist"' }],
  },

  // Kubernetes must be enabled for a rule that reads the cluster
  {
    name: 'a namespaceSelector without any kubernetes block',
    mutate: (c) => {
      delete c.kubernetes;
      c.rules.push({ name: 'sel', match: { namespaceSelector: TEAM_SELECTOR }, policies: ['x'] });
    },
    problems: [{ path: 'rules[1].match', message: NEEDS_CLUSTER }],
  },
  {
    name: 'a serviceAccountSelector with kubernetes disabled',
    mutate: (c) => {
      c.kubernetes.enabled = false;
      c.rules.push({ name: 'sel', match: { serviceAccountSelector: { matchLabels: { role: 'deployer' } } }, policies: ['x'] });
    },
    problems: [{ path: 'rules[1].match', message: NEEDS_CLUSTER }],
  },
  {
    name: 'a submitter rule without kubernetes',
    mutate: (c) => {
      delete c.kubernetes;
      c.rules.push({ name: 'sel', match: { namespaces: ['payments'], workflows: ['release-*'] }, requestable: ['x'] });
    },
    problems: [{ path: 'rules[1].match', message: NEEDS_CLUSTER }],
  },
  {
    name: 'a label template without kubernetes',
    mutate: (c) => {
      delete c.kubernetes;
      c.rules.push({ name: 'sel', match: { namespaces: ['payments'] }, policies: ['{serviceAccount.labels.role}'], allowedPolicies: ['deployer'] });
    },
    problems: [{ path: 'rules[1].match', message: NEEDS_CLUSTER }],
  },
  {
    name: 'a selector on a rule limited to the one issuer without kubernetes',
    mutate: (c) => {
      delete c.kubernetes;
      c.issuers[0].kubernetes = { kubeconfig: '/etc/token-broker/in-cluster' };
      c.rules.push({ name: 'sel', match: { issuers: ['eks-prod'], namespaceSelector: TEAM_SELECTOR }, policies: ['x'] });
    },
    problems: [{ path: 'rules[1].match', message: NEEDS_CLUSTER }],
  },
  {
    name: 'an issuer turning kubernetes off for itself',
    mutate: (c) => {
      c.issuers[1].kubernetes = { enabled: false };
      c.rules.push({ name: 'sel', match: { issuers: ['eks-prod'], namespaceSelector: TEAM_SELECTOR }, policies: ['x'] });
    },
    problems: [{ path: 'rules[1].match', message: NEEDS_CLUSTER }],
  },

  // Issuer kinds
  {
    name: 'kubernetes enabled on a kind: oidc issuer',
    mutate: (c) => {
      c.issuers[1].kind = 'oidc';
      c.issuers[1].kubernetes = { kubeconfig: '/etc/token-broker/eks' };
      c.tokens = { subject: '{issuer}:{sub}' };
    },
    problems: [{ path: 'issuers[1].kind', message: OIDC_KUBERNETES }],
  },

  // The subject template
  {
    name: '{workflow} in tokens.subject without kubernetes',
    mutate: (c) => {
      delete c.kubernetes;
      c.tokens = { subject: 'argo:{namespace}:{workflow}' };
    },
    problems: [{ path: 'tokens.subject', message: SUBJECT_NEEDS_POD }],
  },
  {
    name: '{node} in tokens.subject with kubernetes on only one of two issuers',
    mutate: (c) => {
      delete c.kubernetes;
      c.issuers[0].kubernetes = { kubeconfig: '/etc/token-broker/in-cluster' };
      c.tokens = { subject: '{namespace}/{node}' };
    },
    problems: [{ path: 'tokens.subject', message: SUBJECT_NEEDS_POD }],
  },
  {
    name: '{workflow} in tokens.subject without {namespace} (workflow names are unique only within a namespace)',
    mutate: (c) => {
      c.tokens = { subject: 'argo:{workflow}' };
    },
    problems: [{ path: 'tokens.subject', message: '{workflow} must be qualified by {namespace}, e.g. "argo:{namespace}:{workflow}"' }],
  },
  {
    name: '{workflow} in tokens.subject with kubernetes disabled',
    mutate: (c) => {
      c.kubernetes.enabled = false;
      c.tokens = { subject: 'argo:{namespace}:{workflow}' };
    },
    problems: [{ path: 'tokens.subject', message: SUBJECT_NEEDS_POD }],
  },
  {
    name: '{workflow} in tokens.subject with an oidc issuer',
    mutate: (c) => {
      c.issuers[1].kind = 'oidc';
      c.tokens = { subject: 'argo:{namespace}:{workflow}' };
    },
    problems: [
      { path: 'tokens.subject', message: SUBJECT_OIDC },
      { path: 'tokens.subject', message: SUBJECT_NEEDS_POD },
    ],
  },
  {
    name: 'an unknown variable in tokens.subject',
    mutate: (c) => {
      c.tokens = { subject: 'argo:{namespace.labels.team}' };
    },
    problems: [{ path: 'tokens.subject', message: 'unknown template variable {namespace.labels.team}' }],
  },

  // The kubernetes block itself
  {
    name: 'an unknown key in the kubernetes block',
    mutate: (c) => {
      c.kubernetes.namespaceLabels = true;
    },
    problems: [{ path: 'kubernetes.namespaceLabels', message: 'unknown key' }],
  },
  {
    name: 'an unknown podBinding mode',
    mutate: (c) => {
      c.issuers[0].kubernetes = { podBinding: 'warn' };
    },
    problems: [{ path: 'issuers[0].kubernetes.podBinding', message: 'Invalid option: expected one of "enforce"|"off"' }],
  },
  {
    name: 'a pod cache longer than 300 s',
    mutate: (c) => {
      c.kubernetes.cacheSeconds = { pod: 301 };
    },
    problems: [{ path: 'kubernetes.cacheSeconds.pod', message: 'Too big: expected number to be <=300' }],
  },
];

describe('validateConfig: Kubernetes-aware rules and settings', () => {
  it('the base configuration is valid', () => {
    accepted(validInput());
  });

  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const input = validInput();
      c.mutate(input);
      assert.deepEqual(problemsOf(input), c.problems);
    });
  }

  const acceptedCases: readonly { name: string; mutate: (input: Record<string, any>) => void }[] = [
    {
      name: 'a label template with allowedPolicies',
      mutate: (c) =>
        c.rules.push({ name: 'team', match: { namespaceSelector: TEAM_SELECTOR }, policies: ['{namespace.labels.team}-read'], allowedPolicies: ['*-read'] }),
    },
    {
      name: 'literals inside their own allowedPolicies',
      mutate: (c) => c.rules.push({ name: 'team', match: { namespaces: ['payments'] }, policies: ['payments-read'], requestable: ['orders-read'], allowedPolicies: ['*-read'] }),
    },
    {
      name: 'a {namespace} template without kubernetes (it reads the token, not the API)',
      mutate: (c) => {
        delete c.kubernetes;
        c.rules.push({ name: 'team', match: { namespaces: ['payments'] }, policies: ['{namespace}-read'], allowedPolicies: ['*-read'] });
      },
    },
    {
      name: 'a selector on a rule limited to the issuer with its own kubernetes block',
      mutate: (c) => {
        delete c.kubernetes;
        c.issuers[0].kubernetes = { kubeconfig: '/etc/token-broker/in-cluster' };
        c.rules.push({ name: 'sel', match: { issuers: ['in-cluster'], namespaceSelector: TEAM_SELECTOR }, policies: ['x'] });
      },
    },
    {
      name: 'a selector on a rule for any issuer when one of them has kubernetes',
      mutate: (c) => {
        delete c.kubernetes;
        c.issuers[1].kubernetes = { kubeconfig: '/etc/token-broker/eks' };
        c.rules.push({ name: 'sel', match: { namespaceSelector: TEAM_SELECTOR }, policies: ['x'] });
      },
    },
    {
      name: 'an oidc issuer next to a top-level kubernetes block (it applies only to kind: kubernetes)',
      mutate: (c) => {
        c.issuers[1].kind = 'oidc';
        c.tokens = { subject: '{issuer}:{sub}' };
      },
    },
    {
      name: 'an oidc issuer with a disabled kubernetes block',
      mutate: (c) => {
        c.issuers[1].kind = 'oidc';
        c.issuers[1].kubernetes = { enabled: false };
        c.tokens = { subject: '{issuer}:{sub}' };
      },
    },
    {
      name: '{workflow} and {node} in tokens.subject with kubernetes everywhere',
      mutate: (c) => {
        c.tokens = { subject: 'argo:{namespace}:{workflow}:{node}' };
      },
    },
    {
      name: 'every selector operator with the values it needs',
      mutate: (c) =>
        c.rules.push({
          name: 'sel',
          match: {
            namespaceSelector: {
              matchLabels: { team: 'payments' },
              matchExpressions: [
                { key: 'tier', operator: 'In', values: ['prod'] },
                { key: 'quarantine', operator: 'NotIn', values: ['true'] },
                { key: 'owner', operator: 'Exists' },
                { key: 'frozen', operator: 'DoesNotExist', values: [] },
              ],
            },
          },
          policies: ['x'],
        }),
    },
  ];
  for (const c of acceptedCases) {
    it(`accepts ${c.name}`, () => {
      const input = validInput();
      c.mutate(input);
      accepted(input);
    });
  }

  it('fills the kubernetes defaults', () => {
    const input = validInput();
    input.kubernetes = {};
    assert.deepEqual(accepted(input).kubernetes, {
      enabled: true,
      podBinding: 'enforce',
      verification: 'jwks',
      cacheSeconds: { namespace: 60, serviceAccount: 60, pod: 10 },
    });
  });
});

describe('kubernetesOf: the cluster settings that apply to an issuer', () => {
  it('an issuer\'s own block wins over the top-level one', () => {
    const input = validInput();
    input.issuers[1].kubernetes = { kubeconfig: '/etc/token-broker/eks', podBinding: 'off' };
    const config = accepted(input);
    assert.equal(kubernetesOf(config, config.issuers[0]!), config.kubernetes);
    assert.equal(kubernetesOf(config, config.issuers[0]!)?.kubeconfig, '/etc/token-broker/kubeconfig');
    assert.equal(kubernetesOf(config, config.issuers[1]!)?.kubeconfig, '/etc/token-broker/eks');
    assert.equal(kubernetesOf(config, config.issuers[1]!)?.podBinding, 'off');
  });

  it('a kind: oidc issuer does not inherit the top-level block', () => {
    const input = validInput();
    input.issuers[1].kind = 'oidc';
    input.tokens = { subject: '{issuer}:{sub}' };
    const config = accepted(input);
    assert.equal(kubernetesOf(config, config.issuers[1]!), undefined);
    assert.equal(kubernetesOf(config, config.issuers[0]!)?.enabled, true);
  });

  it('no block anywhere: undefined', () => {
    const input = validInput();
    delete input.kubernetes;
    const config = accepted(input);
    assert.equal(kubernetesOf(config, config.issuers[0]!), undefined);
  });
});

describe('loadConfigFile: KUBECONFIG fills kubernetes.kubeconfig only when the file names none', () => {
  const scratch = useScratchDir('tb-kubeconfig-');
  const base = MINIMAL_CONFIG_YAML;
  let counter = 0;
  async function load(yaml: string, env: { KUBECONFIG?: string }) {
    counter += 1;
    return loadConfigFile(await scratch.write(`broker-${counter}.yaml`, yaml), env);
  }

  it('fills a kubernetes block that names no kubeconfig', async () => {
    const config = await load(`${base}kubernetes:\n  podBinding: enforce\n`, { KUBECONFIG: '/home/ops/.kube/config' });
    assert.equal(config.kubernetes?.kubeconfig, '/home/ops/.kube/config');
    assert.equal(config.kubernetes?.podBinding, 'enforce');
  });

  it('uses the first file of a colon-separated KUBECONFIG', async () => {
    const config = await load(`${base}kubernetes: {}\n`, { KUBECONFIG: '/a/config:/b/config' });
    assert.equal(config.kubernetes?.kubeconfig, '/a/config');
  });

  it('the file\'s kubeconfig wins', async () => {
    const config = await load(`${base}kubernetes:\n  kubeconfig: /etc/token-broker/kubeconfig\n`, { KUBECONFIG: '/home/ops/.kube/config' });
    assert.equal(config.kubernetes?.kubeconfig, '/etc/token-broker/kubeconfig');
  });

  it('does not create a kubernetes block the file does not have', async () => {
    const config = await load(base, { KUBECONFIG: '/home/ops/.kube/config' });
    assert.equal(config.kubernetes, undefined);
  });

  it('an empty KUBECONFIG leaves the in-cluster default', async () => {
    const config = await load(`${base}kubernetes: {}\n`, { KUBECONFIG: '' });
    assert.equal(config.kubernetes?.kubeconfig, undefined);
  });

  it('does not touch an issuer\'s own kubernetes block', async () => {
    const yaml = base.replace('    audiences: [tyk-token-broker]\n', '    audiences: [tyk-token-broker]\n    kubernetes: {}\n');
    const config = await load(yaml, { KUBECONFIG: '/home/ops/.kube/config' });
    assert.equal(config.issuers[0]?.kubernetes?.kubeconfig, undefined);
    assert.equal(config.kubernetes, undefined);
  });
});
