import { loadConfigFile, ConfigError, type ConfigEnvironment } from '../config/load-config.js';

/** `token-broker check-config FILE`: the start-up validation, without starting. Exit 0 and OK, or 1 and every problem. */
export async function checkConfig(path: string, env: ConfigEnvironment): Promise<number> {
  try {
    const config = await loadConfigFile(path, env);
    console.log(`OK: ${path} (${config.issuers.length} issuer(s), ${config.rules.length} rule(s))`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
}
