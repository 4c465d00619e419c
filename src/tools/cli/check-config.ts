import { loadConfigFile, ConfigError, type ConfigEnvironment } from '../../server/config/load-config.js';
import { configWarnings } from '../../server/config/validate-config.js';

export const CHECK_CONFIG_USAGE = `Usage: token-broker check-config FILE

  Validates a configuration file as serve does at start-up (PORT, REDIS_URL and KUBECONFIG applied), without
  reading keys or contacting issuers. Prints OK, or every problem with its field path; warnings go to stderr.

Exit status: 0 valid; 1 problems found; 2 usage error.`;

/** `token-broker check-config FILE`: the start-up validation, without starting. Exit 0 and OK, or 1 and every problem. */
export async function checkConfig(path: string, env: ConfigEnvironment): Promise<number> {
  try {
    const config = await loadConfigFile(path, env);
    console.log(`OK: ${path} (${config.issuers.length} issuer(s), ${config.rules.length} rule(s))`);
    // Warnings do not change the exit status: the configuration works, it is probably not what was meant.
    for (const warning of configWarnings(config)) console.error(`warning: ${warning}`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
}
