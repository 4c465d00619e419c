import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ARGO_COMPLETED_LABEL, podBindingRefusal, type BoundPod } from '../../src/server/identity/pod-binding.js';
import { BrokerError, type ReasonCode } from '../../src/server/errors.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import { PAYMENTS_RUNNER_POD } from '../support/workload-identities.js';

const POD_UID = '0d8b260e-0000-4000-8000-000000000001';
const OTHER_UID = '0d8b260e-0000-4000-8000-000000000002';

function identity(overrides: Partial<WorkloadIdentity> = {}): WorkloadIdentity {
  return {
    ...PAYMENTS_RUNNER_POD,
    podUid: POD_UID,
    ...overrides,
  };
}

const { podName: _podName, podUid: _podUid, ...withoutPod } = identity();

function pod(overrides: Partial<BoundPod> = {}): BoundPod {
  return { uid: POD_UID, labels: { 'workflows.argoproj.io/workflow': 'orders-sync-x7k2p', [ARGO_COMPLETED_LABEL]: 'false' }, ...overrides };
}

const DESCRIPTIONS: Partial<Record<ReasonCode, string>> = {
  pod_not_found: 'The pod this subject token was issued to no longer exists; a token copied out of a finished step is not accepted.',
  pod_uid_mismatch: 'A pod with this name exists, but it is not the pod the subject token was issued to (it was re-created).',
  pod_terminating: 'The pod this subject token was issued to is terminating.',
  workflow_completed: 'The Argo step this subject token was issued to has completed.',
};

describe('podBindingRefusal: finished pods', () => {
  for (const phase of ['Succeeded', 'Failed']) {
    it(`phase ${phase} -> pod_finished (a finished pod runs nothing that could present its token)`, () => {
      assertRefusal(podBindingRefusal(identity(), pod({ phase })), 'pod_finished', `The pod this subject token was issued to has finished (${phase}).`);
    });
  }
  for (const phase of ['Pending', 'Running', 'Unknown', undefined]) {
    it(`phase ${String(phase)}: no refusal`, () => {
      assert.equal(podBindingRefusal(identity(), pod({ phase })), undefined);
    });
  }
});

function assertRefusal(refusal: BrokerError | undefined, code: ReasonCode, description = DESCRIPTIONS[code]): void {
  assert.ok(refusal instanceof BrokerError, `expected a refusal with ${code}`);
  assert.equal(refusal.code, code);
  assert.equal(refusal.status, 400);
  assert.equal(refusal.oauthError, 'invalid_request');
  assert.equal(refusal.description, description);
}

describe('podBindingRefusal', () => {
  it('the token\'s live pod, same UID, running: no refusal', () => {
    assert.equal(podBindingRefusal(identity(), pod()), undefined);
  });

  it('a pod that is not an Argo pod (no labels): no refusal', () => {
    assert.equal(podBindingRefusal(identity(), pod({ labels: {} })), undefined);
  });

  it('pod gone -> pod_not_found', () => {
    assertRefusal(podBindingRefusal(identity(), undefined), 'pod_not_found');
  });

  it('a pod of the same name with another UID (re-created) -> pod_uid_mismatch', () => {
    assertRefusal(podBindingRefusal(identity(), pod({ uid: OTHER_UID })), 'pod_uid_mismatch');
  });

  it('a re-created pod is a mismatch even when it is terminating or completed', () => {
    assertRefusal(
      podBindingRefusal(identity(), pod({ uid: OTHER_UID, deletionTimestamp: '2026-01-01T00:00:30Z', labels: { [ARGO_COMPLETED_LABEL]: 'true' } })),
      'pod_uid_mismatch',
    );
  });

  it('deletionTimestamp set -> pod_terminating', () => {
    assertRefusal(podBindingRefusal(identity(), pod({ deletionTimestamp: '2026-01-01T00:00:30Z' })), 'pod_terminating');
  });

  it('an unreadable deletionTimestamp is still a deletion', () => {
    assertRefusal(podBindingRefusal(identity(), pod({ deletionTimestamp: 'unparsable' })), 'pod_terminating');
  });

  it('terminating wins over completed', () => {
    assertRefusal(
      podBindingRefusal(identity(), pod({ deletionTimestamp: '2026-01-01T00:00:30Z', labels: { [ARGO_COMPLETED_LABEL]: 'true' } })),
      'pod_terminating',
    );
  });

  it('Argo completed=true -> workflow_completed', () => {
    assert.equal(ARGO_COMPLETED_LABEL, 'workflows.argoproj.io/completed');
    assertRefusal(podBindingRefusal(identity(), pod({ labels: { [ARGO_COMPLETED_LABEL]: 'true' } })), 'workflow_completed');
  });

  it('Argo completed=false: no refusal', () => {
    assert.equal(podBindingRefusal(identity(), pod({ labels: { [ARGO_COMPLETED_LABEL]: 'false' } })), undefined);
  });

  it('a token bound to a Secret -> not_pod_bound, saying so', () => {
    assertRefusal(
      podBindingRefusal({ ...withoutPod, secretName: 'argo-runner-token-x7k2p' }, pod()),
      'not_pod_bound',
      'The subject token is bound to a Secret, not a pod; this broker accepts only pod-bound projected tokens.',
    );
  });

  it('a token bound to nothing -> not_pod_bound', () => {
    assertRefusal(
      podBindingRefusal(withoutPod, undefined),
      'not_pod_bound',
      'The subject token is not bound to a pod; mount a projected service-account token in the step\'s pod.',
    );
  });

  it('a pod name without a pod UID is not a binding', () => {
    const { podUid: _uid, ...nameOnly } = identity();
    assertRefusal(
      podBindingRefusal(nameOnly, pod()),
      'not_pod_bound',
      'The subject token is not bound to a pod; mount a projected service-account token in the step\'s pod.',
    );
  });

  it('a pod UID without a pod name is not a binding', () => {
    const { podName: _name, ...uidOnly } = identity();
    assertRefusal(
      podBindingRefusal(uidOnly, pod()),
      'not_pod_bound',
      'The subject token is not bound to a pod; mount a projected service-account token in the step\'s pod.',
    );
  });
});
