import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  EXTRA_POD_NAME,
  EXTRA_POD_UID,
  UnexpectedAnswerError,
  isNotFoundStatus,
  readNamespace,
  readPod,
  readServiceAccount,
  readTokenReview,
  statusMessage,
} from '../../src/server/kubernetes/kubernetes-answers.js';

/*
 * The pure half of the Kubernetes adapter: what a body must look like before any of it reaches pod binding or a
 * rule. The adapter's own tests send these through the real client; here the bodies are hostile on purpose.
 */

const pod = (metadata: Record<string, unknown>, status: unknown = { phase: 'Running' }) => ({ apiVersion: 'v1', kind: 'Pod', metadata, status });

describe('Kubernetes answers: an object must be the one asked about', () => {
  it('a pod answer with its labels, annotations, phase and deletion time', () => {
    const answer = pod({ name: 'step-1', namespace: 'payments', uid: 'u-1', labels: { team: 'payments' }, deletionTimestamp: new Date('2026-01-01T00:00:00Z') });
    assert.deepEqual(readPod(answer, 'payments', 'step-1'), {
      name: 'step-1',
      namespace: 'payments',
      uid: 'u-1',
      labels: { team: 'payments' },
      annotations: {},
      deletionTimestamp: '2026-01-01T00:00:00Z',
      phase: 'Running',
    });
  });

  it('an unreadable deletion time still means terminating', () => {
    const answer = pod({ name: 'step-1', namespace: 'payments', uid: 'u-1', deletionTimestamp: new Date('not a time') });
    assert.equal(readPod(answer, 'payments', 'step-1').deletionTimestamp, 'unparsable');
  });

  it('property: any other name or namespace in the answer is refused, never read as the object asked about', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (name, namespace) => {
        fc.pre(name !== 'step-1' || namespace !== 'payments');
        assert.throws(() => readPod(pod({ name, namespace, uid: 'u-1' }), 'payments', 'step-1'), UnexpectedAnswerError);
        assert.throws(() => readServiceAccount({ metadata: { name, namespace, uid: 'u-1' } }, 'payments', 'step-1'), UnexpectedAnswerError);
      }),
    );
  });

  for (const [what, metadata, message] of [
    ['no uid', { name: 'payments' }, 'namespace without metadata.uid'],
    ['an empty uid', { name: 'payments', uid: '' }, 'namespace without metadata.uid'],
    ['a label that is not a string', { name: 'payments', uid: 'u', labels: { team: 1 } }, 'metadata.labels["team"] is not a string'],
    ['annotations that are a list', { name: 'payments', uid: 'u', annotations: ['a'] }, 'metadata.annotations is not an object'],
    ['a deletion time that is a number', { name: 'payments', uid: 'u', deletionTimestamp: 5 }, 'metadata.deletionTimestamp is not a timestamp'],
  ] as const) {
    it(`a namespace with ${what} is refused`, () => {
      assert.throws(() => readNamespace({ metadata }, 'payments'), { name: 'Error', message });
    });
  }

  it('a body without metadata, or not an object at all, is refused', () => {
    for (const body of [undefined, null, 'payments', [], {}, { metadata: [] }]) {
      assert.throws(() => readNamespace(body, 'payments'), { message: 'namespace without metadata' });
    }
  });
});

describe('Kubernetes answers: TokenReview', () => {
  const review = (status: unknown) => ({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status });

  it('the pod binding comes from user.extra, one value per key', () => {
    const answer = review({
      authenticated: true,
      audiences: ['tyk-token-broker'],
      user: { username: 'system:serviceaccount:payments:runner', extra: { [EXTRA_POD_NAME]: ['step-1'], [EXTRA_POD_UID]: ['u-1'] } },
    });
    assert.deepEqual(readTokenReview(answer), {
      authenticated: true,
      audiences: ['tyk-token-broker'],
      username: 'system:serviceaccount:payments:runner',
      podName: 'step-1',
      podUid: 'u-1',
    });
  });

  it('property: an extra key with other than exactly one string is refused (no binding the broker could trust)', () => {
    const notOne = fc.oneof(fc.constant([]), fc.array(fc.string(), { minLength: 2, maxLength: 4 }), fc.constant([1]), fc.constant('u-1'));
    fc.assert(
      fc.property(fc.constantFrom(EXTRA_POD_NAME, EXTRA_POD_UID), notOne, (key, value) => {
        assert.throws(() => readTokenReview(review({ authenticated: true, user: { extra: { [key]: value } } })), UnexpectedAnswerError);
      }),
    );
  });

  for (const [what, status, message] of [
    ['authenticated as a string', { authenticated: 'true' }, 'status.authenticated is not a boolean'],
    ['audiences with a number', { authenticated: true, audiences: [1] }, 'status.audiences is not a list of strings'],
    ['a user that is a string', { authenticated: true, user: 'admin' }, 'status.user is not an object'],
    ['a username that is a number', { authenticated: true, user: { username: 7 } }, 'status.user.username is not a string'],
  ] as const) {
    it(`${what} is refused`, () => {
      assert.throws(() => readTokenReview(review(status)), { message });
    });
  }

  it('no status at all is refused; an empty status is not authenticated', () => {
    assert.throws(() => readTokenReview({ kind: 'TokenReview' }), { message: 'TokenReview without status' });
    assert.deepEqual(readTokenReview(review({})), { authenticated: false, audiences: [] });
  });
});

describe('Kubernetes answers: Status bodies', () => {
  it('only a Status NotFound is a 404 answer; a proxy\'s 404 page is not', () => {
    assert.equal(isNotFoundStatus('{"kind":"Status","reason":"NotFound","code":404}'), true);
    assert.equal(isNotFoundStatus({ kind: 'Status', reason: 'NotFound' }), true);
    for (const body of ['<html>404</html>', '{"kind":"Status","reason":"Forbidden"}', '{"reason":"NotFound"}', undefined]) {
      assert.equal(isNotFoundStatus(body), false, String(body));
    }
  });

  it('the API server\'s message is quoted, shortened to 200 characters; other bodies say nothing', () => {
    assert.equal(statusMessage('{"kind":"Status","message":"pods \\"x\\" is forbidden"}'), ': pods "x" is forbidden');
    assert.equal(statusMessage(JSON.stringify({ message: 'm'.repeat(500) })).length, 202);
    for (const body of ['not json eyJhbGciOi', '{"message":5}', { message: 'an object the client built' }]) assert.equal(statusMessage(body), '');
  });
});
