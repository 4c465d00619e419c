/**
 * Route patterns in a policy's `allowed_urls`, as the Tyk Gateway reads them (TykTechnologies/tyk
 * gateway/mw_granular_access.go and internal/httputil/mux.go, PreparePathRegexp):
 *
 * - every `{...}` is a path parameter and becomes `([^/]+)`, so a regex quantifier such as `{2}` is not one;
 * - the result is a Go (RE2) regular expression, matched unanchored (`MatchString`): `/orders/` opens every
 *   path containing it, `$` ends a match;
 * - by default (`http_server_options.enable_path_prefix_matching: false`) it is matched against the full request
 *   path, listen path included; with prefix matching on, Tyk prepends `^` to a pattern starting with `/` and also
 *   tries the path with the listen path stripped;
 * - the request method must be one of the entry's `methods`, compared as written (GET does not imply HEAD);
 * - a pattern that does not compile is skipped (the request is refused unless another entry allows it).
 *
 * The broker writes every route as `^` + its path, so it means the same full gateway path in either mode.
 */

/** The HTTP methods a route may open, upper-case as Tyk compares them. */
export const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

const PARAMETER = /\{([^}]+)\}/g;

/** RE2 has no lookaround and no backreferences; JavaScript would accept them and Tyk would skip the entry. */
const NOT_RE2 = [
  { pattern: /\(\?<?[=!]/, what: 'lookahead or lookbehind' },
  { pattern: /\\[1-9]/, what: 'a backreference' },
  { pattern: /\\k</, what: 'a named backreference' },
];

/** The `url` the broker writes into `allowed_urls` for a route path: anchored at the start. Pure. */
export function tykAllowedUrl(path: string): string {
  return `^${path}`;
}

/** The regular expression Tyk matches an `allowed_urls` entry as, parameters replaced. Pure. */
export function tykPatternSource(url: string): string {
  return url.replace(PARAMETER, '([^/]+)');
}

/**
 * Why a route path cannot be an `allowed_urls` pattern, or undefined when it can. It must start with "/" (the
 * broker anchors it there) and compile both as RE2 would and as JavaScript does, after parameters are replaced.
 * Pure.
 */
export function routePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with "/": the full request path at the gateway, listen path included, such as /orders/{id}$';
  if (path.startsWith('//')) return 'must not start with "//"';
  if (/\s/.test(path)) return 'must not contain whitespace';
  const source = tykPatternSource(tykAllowedUrl(path));
  for (const { pattern, what } of NOT_RE2) {
    if (pattern.test(source)) return `uses ${what}, which Tyk's regular expressions (RE2) do not have`;
  }
  try {
    new RegExp(source);
  } catch (error) {
    return `is not a valid regular expression: ${error instanceof Error ? error.message : String(error)}`;
  }
  return undefined;
}

/** Whether a route (methods + path) opens `method` on the full request `path`, by Tyk's default rules. Pure. */
export function routeOpens(route: { readonly methods: readonly string[]; readonly path: string }, method: string, path: string): boolean {
  return route.methods.includes(method) && new RegExp(tykPatternSource(tykAllowedUrl(route.path))).test(path);
}
