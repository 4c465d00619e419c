#!/usr/bin/env node
import { runCli } from './tools/cli/run-cli.js';

// The process entry point only: what the commands do and print lives in src/tools/cli/.
runCli(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`token-broker: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  },
);
