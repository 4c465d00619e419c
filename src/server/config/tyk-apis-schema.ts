import { z } from 'zod';
import { TYK_API_ID } from './tyk-policies-schema.js';

/**
 * Where each Tyk API is reached at the gateway: the only thing the broker needs to know to answer an RFC 8707
 * `resource` parameter. The `policies` block says which API each policy opens; this block says which URLs each
 * API serves. Omitted: every `resource` parameter is refused (invalid_target), never silently ignored.
 */

/** Why a gateway URL cannot name an API, or undefined when it can. Pure. */
export function gatewayUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute URL such as https://gateway.example.com/orders/';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http or https URL';
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password';
  if (url.search !== '' || text.includes('?')) return 'must not have a query: Tyk routes on the path alone';
  if (url.hash !== '' || text.includes('#')) return 'must not have a fragment';
  if (!url.pathname.startsWith('/') || !url.pathname.endsWith('/')) return 'must end with the listen path, starting and ending with "/", e.g. https://gateway.example.com/orders/';
  // Written in normal form, so that what the operator reads is what is matched.
  if (`${url.origin}${url.pathname}` !== text.replace(/^[a-z]+:\/\/[^/]*/i, (origin) => origin.toLowerCase())) {
    return `must be written in normal form: "${url.origin}${url.pathname}" (no dot segments, default port or encoded characters)`;
  }
  return undefined;
}

const gatewayUrl = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((text, ctx) => {
    const problem = gatewayUrlProblem(text);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

const tykApiSchema = z
  .strictObject({
    apiId: z.string().regex(TYK_API_ID, 'must be letters, digits, ".", "_" and "-"').describe('The Tyk API id, as the `policies` block names it.'),
    urls: z
      .array(gatewayUrl)
      .min(1)
      .describe(
        'The gateway base URL and listen path the API is served at, e.g. https://gateway.example.com/orders/ (several for several gateway hosts). A `resource` names this API when its scheme and host equal one of these and its path is the listen path or below it, compared at "/" boundaries.',
      ),
  })
  .describe('One Tyk API and the URLs the gateway serves it at.');

export const tykApisSchema = z
  .array(tykApiSchema)
  .min(1)
  .optional()
  .describe(
    'Tyk APIs by the URLs the gateway serves them at: what an RFC 8707 `resource` parameter is matched against. Requires `policies`, which says which policies open each API. Omitted: `resource` is refused with invalid_target.',
  );

export type TykApisConfig = NonNullable<z.output<typeof tykApisSchema>>;
export type TykApiConfig = z.output<typeof tykApiSchema>;
