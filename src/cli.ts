#!/usr/bin/env node
// realip-webhook <command> [flags]. Each command parses its own flags; a ConfigError is a usage
// error (exit 2), anything else a failure (exit 1).
import { auditUsage, runAuditCommand } from './commands/audit.js';
import { explainUsage, runExplain } from './commands/explain.js';
import { runMutate, mutateUsage } from './commands/mutate.js';
import { policyUsage, runPolicy } from './commands/policy.js';
import { ConfigError, parseServeConfig, serveUsage } from './config.js';
import { serve } from './commands/serve.js';
import { describeBuild } from './version.js';

interface Command {
  summary: string;
  usage: () => string;
  /** Resolves to the exit code, or to undefined for a command that runs until a signal. */
  run: (args: string[]) => Promise<number | undefined>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the HTTPS admission webhook',
    usage: serveUsage,
    run: async (args) => {
      await serve(parseServeConfig(args, process.env));
      return undefined;
    },
  },
  mutate: {
    summary: 'mutate manifests offline, as the webhook would (GitOps)',
    usage: mutateUsage,
    run: runMutate,
  },
  audit: {
    summary: 'list existing objects that differ from what the webhook would make; --fix services',
    usage: auditUsage,
    run: runAuditCommand,
  },
  explain: {
    summary: 'say hop by hop where a Service\'s client IP is kept or lost on a live cluster (read-only)',
    usage: explainUsage,
    run: runExplain,
  },
  policy: {
    summary: 'print the same rules as admission policies for Kubernetes 1.36+ (kubectl apply -f -)',
    usage: policyUsage,
    run: runPolicy,
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return [
    'Usage: realip-webhook <command> [flags]',
    '',
    'Commands:',
    ...lines,
    '',
    'realip-webhook <command> --help shows its flags; realip-webhook --version, which build this is.',
  ].join('\n');
}

async function main([name, ...args]: string[]): Promise<number | undefined> {
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    console.log(describeBuild());
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    console.error(`realip-webhook: unknown command ${JSON.stringify(name)} (allowed: ${Object.keys(COMMANDS).join(', ')})\n\n${usage()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log(command.usage());
    return 0;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`realip-webhook: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    console.error('realip-webhook: failed:', err);
    process.exitCode = 1;
  },
);
