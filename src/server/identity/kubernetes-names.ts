/**
 * Kubernetes object names as the API server validates them (k8s.io/apimachinery/pkg/util/validation): namespaces
 * are RFC 1123 labels, service accounts, pods, nodes and Secrets RFC 1123 subdomains. A token whose names fail these
 * checks was not minted by an API server, and such a name never reaches a rule, a template or a minted claim. Pure.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** RFC 1123 label: at most 63 lower-case letters, digits and dashes, alphanumeric at both ends. */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL.test(name);
}

/** RFC 1123 subdomain: dot-separated labels, at most 253 characters in all. */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
}
