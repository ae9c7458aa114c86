#!/usr/bin/env node
// realip-webhook <command>: `serve` runs the admission webhook.
import { ConfigError, parseServeConfig, serveUsage } from './config.js';
import { serve } from './serve.js';

const USAGE = `Usage: realip-webhook <command> [flags]

Commands:
  serve    run the HTTPS admission webhook (realip-webhook serve --help)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(serveUsage());
      return 0;
    }
    await serve(parseServeConfig(rest, process.env));
    return -1; // keeps running until a signal
  }
  if (command === undefined || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  console.error(`realip-webhook: unknown command ${JSON.stringify(command)} (allowed: serve)\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`realip-webhook: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    console.error('realip-webhook: failed to start:', err);
    process.exitCode = 1;
  },
);
