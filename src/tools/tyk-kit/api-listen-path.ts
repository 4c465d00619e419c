import type { BrokerConfig } from '../../server/config/schema.js';

/** The listen path `tyk api` writes, or why it cannot choose one. */
export type ListenPathChoice = { readonly listenPath: string } | { readonly problem: string };

/**
 * The listen path of an API definition, reconciled with the configuration's `apis` block, which says where the
 * gateway serves the API for RFC 8707 `resource`. Without --listen-path, the block's listen path is used when all of
 * the API's URLs share one. With it, the flag must be one of them: a definition listening elsewhere would make every
 * `resource` for that API name a path the gateway does not serve. Pure.
 */
export function chooseListenPath(config: Pick<BrokerConfig, 'apis'>, apiId: string, flag: string | undefined): ListenPathChoice {
  const served = config.apis?.find((api) => api.apiId === apiId);
  const paths = [...new Set((served?.urls ?? []).map((url) => new URL(url).pathname))];
  if (flag !== undefined) {
    if (paths.length > 0 && !paths.includes(flag)) {
      return { problem: `--listen-path ${flag} is not where the configuration's apis block serves "${apiId}" (${paths.join(', ')})` };
    }
    return { listenPath: flag };
  }
  if (paths.length === 1) return { listenPath: paths[0] as string };
  if (paths.length === 0) return { problem: `--listen-path is required: the configuration's apis block does not list "${apiId}"` };
  return { problem: `--listen-path is required: the apis block serves "${apiId}" at several listen paths (${paths.join(', ')})` };
}
