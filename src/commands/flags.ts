// Flag parsing shared by the commands: node:util parseArgs, with every usage error a ConfigError
// (exit 2) that names the flag and what is allowed.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseFlags<O extends Options>(command: string, args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    const allowed = Object.entries(options)
      .map(([name, o]) => (o.short ? `-${o.short}/--${name}` : `--${name}`))
      .join(', ');
    throw new ConfigError(`${command}: ${(err as Error).message} (allowed flags: ${allowed})`);
  }
}

export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${flag} ${JSON.stringify(value)} is not allowed (allowed: ${allowed.join(', ')})`);
  }
  return value as T;
}
