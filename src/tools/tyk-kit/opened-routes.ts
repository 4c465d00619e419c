import { ROUTE_METHODS } from '../../server/config/tyk-route-pattern.js';
import type { TykPolicySpec } from './tyk-policies.js';

/** What a set of granted policies opens on one API, after Tyk merges them. */
export interface OpenedApi {
  readonly apiId: string;
  /** True when every applied policy opens the whole API (`allowed_urls: []` in each). */
  readonly wholeApi: boolean;
  /** The union of the policies' routes (Tyk's MergeAllowedURLs), methods merged per path. */
  readonly routes: readonly { readonly methods: readonly string[]; readonly path: string }[];
  /** Methods no route opens on any path of this API: always refused by Tyk. */
  readonly refusedMethods: readonly string[];
}

/** What the granted policies open, by API, plus the granted policies the configuration does not describe. */
export interface OpenedRoutes {
  readonly apis: readonly OpenedApi[];
  /** Granted policies without a `policies` entry: what they open is decided in Tyk alone. */
  readonly undescribed: readonly string[];
}

/**
 * The APIs and routes a token carrying `policyIds` may call, as Tyk merges its policies per API
 * (internal/policy/apply.go): the `allowed_urls` are the union of every policy's entries for the API, so a
 * whole-API policy merged with a route-limited one is route-limited. Pure.
 */
export function openedRoutes(policyIds: readonly string[], described: Readonly<Record<string, TykPolicySpec>> | undefined): OpenedRoutes {
  const byApi = new Map<string, Map<string, string[]>>();
  const undescribed: string[] = [];
  for (const id of policyIds) {
    const spec = described !== undefined && Object.hasOwn(described, id) ? described[id] : undefined;
    if (spec === undefined) {
      undescribed.push(id);
      continue;
    }
    for (const api of spec.apis) {
      const paths = byApi.get(api.apiId) ?? new Map<string, string[]>();
      for (const route of api.routes ?? []) {
        const methods = paths.get(route.path) ?? [];
        for (const method of route.methods) if (!methods.includes(method)) methods.push(method);
        paths.set(route.path, methods);
      }
      byApi.set(api.apiId, paths);
    }
  }
  const apis = [...byApi].map(([apiId, paths]): OpenedApi => {
    const routes = [...paths].map(([path, methods]) => ({ path, methods }));
    const opened = new Set(routes.flatMap((route) => route.methods));
    return {
      apiId,
      wholeApi: routes.length === 0,
      routes,
      refusedMethods: routes.length === 0 ? [] : ROUTE_METHODS.filter((method) => !opened.has(method)),
    };
  });
  return { apis, undescribed };
}

/** One line per API, such as "orders: may GET|HEAD /orders/{id}$, POST /orders/$; may not DELETE PUT". Pure. */
export function renderOpenedRoutes(opened: OpenedRoutes): string[] {
  const lines = opened.apis.map((api) => {
    if (api.wholeApi) return `${api.apiId}: may call every path and method`;
    const may = api.routes.map((route) => `${route.methods.join('|')} ${route.path}`).join(', ');
    return `${api.apiId}: may ${may}${api.refusedMethods.length > 0 ? `; may not ${api.refusedMethods.join(' ')}` : ''}`;
  });
  for (const id of opened.undescribed) lines.push(`${id}: not described in the policies block; what it opens is decided in Tyk`);
  return lines;
}
