import { invalidTarget } from '../errors.js';
import type { ResourceIndicator } from './resource-indicator.js';
import type { TykApisConfig } from '../config/tyk-apis-schema.js';
import type { TykPoliciesConfig } from '../config/tyk-policies-schema.js';

/** One URL an API is served at, split for matching. */
interface ServedAt {
  readonly apiId: string;
  readonly origin: string;
  /** Starts and ends with "/". */
  readonly listenPath: string;
}

/**
 * What RFC 8707 `resource` is judged against, compiled once from the `apis` and `policies` blocks: every URL of
 * every API (longest listen path first, as Tyk routes) and the APIs each policy opens.
 */
export interface ResourceTargets {
  readonly servedAt: readonly ServedAt[];
  readonly apisOpenedBy: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Builds the matching tables from validated configuration. Without `apis`, there is nothing a resource can name. Pure. */
export function compileResourceTargets(apis: TykApisConfig | undefined, policies: TykPoliciesConfig | undefined): ResourceTargets {
  const servedAt: ServedAt[] = [];
  for (const api of apis ?? []) {
    for (const text of api.urls) {
      const url = new URL(text);
      servedAt.push({ apiId: api.apiId, origin: url.origin, listenPath: url.pathname });
    }
  }
  servedAt.sort((a, b) => b.listenPath.length - a.listenPath.length);
  const apisOpenedBy = new Map<string, ReadonlySet<string>>();
  for (const [policyId, policy] of Object.entries(policies ?? {})) {
    apisOpenedBy.set(policyId, new Set(policy.apis.map((access) => access.apiId)));
  }
  return { servedAt, apisOpenedBy };
}

/** Whether `path` is the listen path itself (with or without its final "/") or lies below it, at a "/" boundary. */
export function pathIsUnder(path: string, listenPath: string): boolean {
  return path.startsWith(listenPath) || path === listenPath.slice(0, -1);
}

/**
 * The API a resource names: same origin, path at or below the listen path; when listen paths nest, the longest
 * wins, as the gateway would route the request. Undefined when no configured API is named. Pure.
 */
export function apiNamedBy(resource: ResourceIndicator, targets: ResourceTargets): string | undefined {
  return targets.servedAt.find((served) => served.origin === resource.origin && pathIsUnder(resource.path, served.listenPath))?.apiId;
}

/**
 * Narrows the selected policies (granted, or those `scope` asked for) to the ones opening the API the resource
 * names (RFC 8707): the token then carries only what that API honours. Refused, with invalid_target, when the
 * resource names no configured API or no selected policy opens it. Which policies or APIs exist stays out of the
 * description. Pure.
 */
export function narrowToResource(policies: readonly string[], resource: ResourceIndicator, targets: ResourceTargets | undefined): readonly string[] {
  if (targets === undefined || targets.servedAt.length === 0) {
    throw invalidTarget('unknown_resource', 'This broker accepts no "resource" parameter: no API is configured for it; use "audience" and "scope".', {
      detail: 'resource given, but the configuration has no apis block',
    });
  }
  const apiId = apiNamedBy(resource, targets);
  if (apiId === undefined) {
    throw invalidTarget('unknown_resource', 'The "resource" parameter names no API this broker issues tokens for.', {
      detail: `no configured API is served at ${resource.origin}${resource.path.slice(0, 200)}`,
    });
  }
  const narrowed = policies.filter((policy) => targets.apisOpenedBy.get(policy)?.has(apiId) === true);
  if (narrowed.length === 0) {
    throw invalidTarget('resource_not_granted', 'This workload is granted no policy that opens the API the "resource" parameter names.', {
      detail: `API "${apiId}" is opened by none of: ${policies.join(' ').slice(0, 300)}`,
    });
  }
  return narrowed;
}
