import { z } from 'zod';
import { ROUTE_METHODS, routePathProblem } from './tyk-route-pattern.js';

/**
 * What each Tyk policy the rules grant opens: its APIs, the routes on each, its rate limit and quota. Read by
 * `token-broker tyk policies` (which writes the Tyk policies), `explain` and `test-rules`; the exchange reads it
 * only to narrow a token to the API an RFC 8707 `resource` names (with the `apis` block), so a configuration
 * without it behaves as before.
 */

/** Tyk API ids end up in URLs (/tyk/cache/jwks/{apiID}) and file names: a safe alphabet. */
export const TYK_API_ID = /^[A-Za-z0-9._-]+$/;

const routeSchema = z
  .strictObject({
    methods: z
      .array(z.enum(ROUTE_METHODS))
      .min(1)
      .describe('HTTP methods this route opens, upper-case. Tyk compares them as written: GET does not open HEAD.'),
    path: z
      .string()
      .min(1)
      .max(512)
      .superRefine((path, ctx) => {
        const problem = routePathProblem(path);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .describe(
        'Full request path at the gateway (listen path included), in Tyk `allowed_urls` syntax: a regular expression (RE2) where every `{name}` is one path segment. Matched from the start, unanchored at the end unless it ends with `$`: `/orders/{id}$` is one order, `/orders/` everything under /orders/.',
      ),
  })
  .describe('One `allowed_urls` entry: the methods it opens on the paths it matches.');

const apiAccessSchema = z
  .strictObject({
    apiId: z.string().regex(TYK_API_ID, 'must be letters, digits, ".", "_" and "-"').describe('The Tyk API id (`api_id`, or `x-tyk-api-gateway.info.id`).'),
    apiName: z.string().min(1).optional().describe('`api_name` in access_rights. Default: the API id.'),
    routes: z
      .array(routeSchema)
      .min(1)
      .optional()
      .describe('The only routes this policy opens on the API. Omitted: every path and method (`allowed_urls: []`).'),
  })
  .describe('An API the policy opens.');

export const tykPolicySchema = z
  .strictObject({
    apis: z
      .array(apiAccessSchema)
      .min(1)
      .superRefine((apis, ctx) => {
        const seen = new Set<string>();
        apis.forEach((api, i) => {
          if (seen.has(api.apiId)) ctx.addIssue({ code: 'custom', path: [i, 'apiId'], message: `API "${api.apiId}" is listed twice; merge its routes into one entry` });
          seen.add(api.apiId);
        });
      })
      .describe('The APIs the policy opens (its `access_rights`).'),
    rate: z.number().positive().max(1_000_000_000).optional().describe('Requests allowed per `per` seconds, per workload identity. Default: `tyk policies --rate`, else 100.'),
    per: z.number().positive().max(31_536_000).optional().describe('Rate-limit window in seconds. Default: `tyk policies --per`, else 1.'),
    quotaMax: z
      .number()
      .int()
      .min(-1)
      .refine((value) => value !== 0, 'must be -1 (unlimited) or at least 1: Tyk reads 0 as "no requests at all"')
      .optional()
      .describe('Requests per quota period; -1 is unlimited. Default: `tyk policies --quota-max`, else -1.'),
    quotaRenewalRate: z.number().int().min(1).optional().describe('Quota period in seconds. Default: `tyk policies --quota-renewal-rate`, else 3600.'),
  })
  .describe('A Tyk policy as the broker generates it.');

export const tykPoliciesSchema = z
  .record(z.string().min(1).max(256).regex(/^\S+$/, 'must not contain spaces'), tykPolicySchema)
  .optional()
  .describe(
    'Tyk policies by ID: the APIs and routes each opens, its rate limit and quota. `token-broker tyk policies` writes them for Tyk; `explain` and `test-rules` show the routes a decision opens. Omitted: `tyk policies --api-id` grants the whole API to every policy.',
  );

export type TykPoliciesConfig = NonNullable<z.output<typeof tykPoliciesSchema>>;
export type TykPolicyConfig = z.output<typeof tykPolicySchema>;
