import { z } from 'zod';
import { BrokerError } from '../../server/errors.js';
import { KUBERNETES_CLAIM } from '../../server/protocol.js';
import { formatPath, kubernetesOf, type ConfigProblem } from '../../server/config/validate-config.js';
import { identityFromClaims, type ClusterMetadata, type Claims, type WorkloadIdentity } from '../../server/identity/workload-identity.js';
import { podBindingRefusal } from '../../server/identity/pod-binding.js';
import { subjectTemplateNeedsPod } from '../../server/mint/access-token-claims.js';
import type { BrokerConfig, IssuerConfig } from '../../server/config/schema.js';
import type { CompiledRules } from '../../server/rules/compiled-rules.js';

/**
 * A workload identity written by hand, for `explain --identity` and `test-rules`: who the workload is (full
 * token claims, or the shorthand a projected token would carry) and what the Kubernetes API would say about it.
 * Documented with examples in test/fixtures/identities/README.md.
 */

const labels = z.record(z.string().min(1, 'a label key must not be empty'), z.string());

/** The shorthand's pod UID when none is given: offline, no pod binding is checked, so any UID does. */
export const FIXTURE_POD_UID = '00000000-0000-4000-8000-000000000000';

const SHORTHAND = ['namespace', 'serviceAccount', 'pod', 'podUid'] as const;

export const identityFixtureSchema = z
  .strictObject({
    issuer: z.string().min(1).describe('Name of an issuer in the configuration (issuers[].name).'),
    claims: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Full subject-token claims (sub, kubernetes.io, ...). `iss` may be omitted: it is the issuer\'s.'),
    namespace: z.string().min(1).optional().describe('Shorthand: the kubernetes.io namespace (with serviceAccount, instead of claims).'),
    serviceAccount: z.string().min(1).optional().describe('Shorthand: the service-account name.'),
    pod: z.string().min(1).optional().describe('Shorthand: the pod name; a token without one is not pod-bound.'),
    podUid: z.string().min(1).optional().describe(`Shorthand: the pod UID. Default: ${FIXTURE_POD_UID}.`),
    namespaceLabels: labels.optional().describe('Labels of the namespace, as the Kubernetes API would return them.'),
    serviceAccountLabels: labels.optional().describe('Labels of the service account.'),
    podLabels: labels.optional().describe('Labels of the live pod (workflows.argoproj.io/workflow names the Argo workflow).'),
    podAnnotations: labels.optional().describe('Annotations of the live pod (workflows.argoproj.io/node-name names the Argo node).'),
  })
  .superRefine((fixture, ctx) => {
    const shorthand = SHORTHAND.filter((key) => fixture[key] !== undefined);
    if (fixture.claims !== undefined) {
      for (const key of shorthand) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'give either claims or the shorthand (namespace, serviceAccount, pod, podUid), not both' });
      }
      return;
    }
    for (const key of ['namespace', 'serviceAccount'] as const) {
      if (fixture[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required (or give the full token claims under claims)' });
    }
    if (fixture.podUid !== undefined && fixture.pod === undefined) {
      ctx.addIssue({ code: 'custom', path: ['podUid'], message: 'needs pod' });
    }
  });

export type IdentityFixture = z.output<typeof identityFixtureSchema>;

/** Zod issues as problems addressed like configuration problems: `cases[2].identity.namespace`. */
export function problemsOf(error: z.ZodError, prefix: readonly PropertyKey[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: formatPath([...prefix, ...issue.path, key]), message: 'unknown key' });
    } else {
      problems.push({ path: formatPath([...prefix, ...issue.path]), message: issue.message.replace(/^Invalid input: /, '') });
    }
  }
  return problems;
}

/** Validates a parsed fixture document; `prefix` is where it sits in its file, for the problems' paths. Pure. */
export function parseIdentityFixture(
  document: unknown,
  prefix: readonly PropertyKey[] = [],
): { readonly ok: true; readonly fixture: IdentityFixture } | { readonly ok: false; readonly problems: readonly ConfigProblem[] } {
  const parsed = identityFixtureSchema.safeParse(document);
  return parsed.success ? { ok: true, fixture: parsed.data } : { ok: false, problems: problemsOf(parsed.error, prefix) };
}

/** What a fixture comes to against a configuration. */
export type FixtureResolution =
  /** The fixture does not fit the configuration (an unknown issuer, a foreign `iss`): fix the fixture. */
  | { readonly kind: 'problems'; readonly problems: readonly ConfigProblem[] }
  /** The broker would refuse this workload before applying the rules, as POST /token would. */
  | { readonly kind: 'refused'; readonly error: BrokerError; readonly notes: readonly string[] }
  | { readonly kind: 'identity'; readonly identity: WorkloadIdentity; readonly notes: readonly string[] };

function claimsOf(fixture: IdentityFixture, issuer: IssuerConfig): Claims {
  if (fixture.claims !== undefined) return { ...fixture.claims, iss: issuer.issuer };
  const namespace = fixture.namespace ?? '';
  const serviceAccount = fixture.serviceAccount ?? '';
  // What kube-apiserver puts in a projected token (see /work/shared/reference/kubernetes-argo.md).
  return {
    iss: issuer.issuer,
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    aud: [...issuer.audiences],
    [KUBERNETES_CLAIM]: {
      namespace,
      serviceaccount: { name: serviceAccount },
      ...(fixture.pod !== undefined && { pod: { name: fixture.pod, uid: fixture.podUid ?? FIXTURE_POD_UID } }),
    },
  };
}

const LABEL_SETS = ['namespaceLabels', 'serviceAccountLabels', 'podLabels', 'podAnnotations'] as const;

/**
 * Turns a fixture into the identity an exchange would judge, following the exchange's lookups: labels are
 * available only when Kubernetes is enabled for the issuer and the rules read them (namespace and service-account
 * labels), or the pod is read at all (pod binding, submitter-tier rules, a {workflow}/{node} `sub`). The fixture
 * describes a live pod, so with pod binding enforced only a token without a pod, or a pod labelled completed, is
 * refused. Pure.
 */
export function resolveIdentityFixture(
  fixture: IdentityFixture,
  config: BrokerConfig,
  rules: CompiledRules,
  prefix: readonly PropertyKey[] = [],
): FixtureResolution {
  const issuer = config.issuers.find((candidate) => candidate.name === fixture.issuer);
  if (issuer === undefined) {
    return {
      kind: 'problems',
      problems: [
        {
          path: formatPath([...prefix, 'issuer']),
          message: `no issuer is named "${fixture.issuer}" in the configuration (issuers: ${config.issuers.map((i) => i.name).join(', ')})`,
        },
      ],
    };
  }
  const iss = fixture.claims?.iss;
  if (iss !== undefined && iss !== issuer.issuer) {
    return {
      kind: 'problems',
      problems: [{ path: formatPath([...prefix, 'claims', 'iss']), message: `must be "${issuer.issuer}" (issuer "${issuer.name}"), or be left out` }],
    };
  }

  const notes: string[] = [];
  let identity: WorkloadIdentity;
  try {
    identity = identityFromClaims(issuer, claimsOf(fixture, issuer));
  } catch (error) {
    if (error instanceof BrokerError) return { kind: 'refused', error, notes };
    throw error;
  }

  const kubernetes = kubernetesOf(config, issuer);
  const given = LABEL_SETS.filter((set) => fixture[set] !== undefined);
  if (kubernetes === undefined || !kubernetes.enabled) {
    if (given.length > 0) {
      notes.push(`issuer "${issuer.name}" has no Kubernetes API enabled, so the broker reads no labels: the fixture's ${given.join(', ')} were ignored`);
    }
    return { kind: 'identity', identity, notes };
  }

  const hasPod = identity.namespace !== undefined && identity.podName !== undefined && identity.podUid !== undefined;
  const readsPod = kubernetes.podBinding === 'enforce' || rules.needs.pod || subjectTemplateNeedsPod(config.tokens.subject);
  const podLabels = fixture.podLabels ?? {};
  if (kubernetes.podBinding === 'enforce') {
    const refusal = podBindingRefusal(identity, hasPod ? { uid: identity.podUid ?? '', labels: podLabels } : undefined);
    if (refusal !== undefined) return { kind: 'refused', error: refusal, notes };
  }
  const cluster: ClusterMetadata = {
    ...(rules.needs.namespaceLabels && { namespaceLabels: fixture.namespaceLabels ?? {} }),
    ...(rules.needs.serviceAccountLabels && { serviceAccountLabels: fixture.serviceAccountLabels ?? {} }),
    ...(readsPod && hasPod && { podLabels, podAnnotations: fixture.podAnnotations ?? {} }),
  };
  const unread = given.filter((set) => cluster[set] === undefined);
  if (unread.length > 0) notes.push(`the broker would not read ${unread.join(', ')} for this workload (no rule needs them, or it has no pod): ignored`);
  notes.push('offline: Kubernetes metadata is the fixture\'s, and pod binding assumes the pod is live');
  return { kind: 'identity', identity: { ...identity, cluster }, notes };
}
