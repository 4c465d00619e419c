import { createHash } from 'node:crypto';

/**
 * The UID the stand-in cluster gives a service account unless told otherwise, and the one the stand-in issuer
 * puts in its tokens: derived from the namespace and name, so a token and the service account it names agree as
 * they do in a real cluster (where the API server copies the UID into the token). A test that re-creates a
 * service account passes another UID explicitly.
 */
export function standInServiceAccountUid(namespace: string, name: string): string {
  const hex = createHash('sha256').update(`serviceaccount\0${namespace}\0${name}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
