// `realip-webhook mutate`: the GitOps path. Renders manifests as the webhook would mutate them,
// offline, so what is committed to git is what the cluster ends up with.
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { ConfigError, labelPrefix } from '../config.js';
import { parseNamespaces } from '../namespaces/file-namespace-source.js';
import { oneOf, parseFlags } from './flags.js';
import { mutateManifests, OUTPUTS, parseLabelList } from './mutate-manifests.js';

const FLAGS = {
  filename: { type: 'string', short: 'f' },
  'namespace-labels': { type: 'string' },
  'namespaces-file': { type: 'string' },
  'label-prefix': { type: 'string', default: 'realip.io' },
  output: { type: 'string', short: 'o' },
} as const;

export function mutateUsage(): string {
  return [
    'Usage: realip-webhook mutate -f FILE|- [--namespace-labels k=v,...] [--namespaces-file F] [--label-prefix P] [-o yaml|json|patch]',
    '',
    'Mutates Kubernetes manifests offline, as the webhook would on CREATE, and writes them to stdout in',
    'the same order; documents with nothing to change are written back byte for byte.',
    '',
    '  -f, --filename F        YAML or JSON file, several documents and List objects allowed; - reads stdin',
    '  --namespace-labels L    labels of the namespace of every object, e.g. realip.io/inject=enabled',
    '  --namespaces-file F     YAML/JSON file of Namespaces: labels by the object\'s metadata.namespace',
    '                          (else "default"); Namespace objects in the input itself also count',
    '  --label-prefix P        prefix of labels and annotations (default realip.io)',
    '  -o, --output FORMAT     yaml (default), json (default for JSON input; several documents become a',
    '                          v1 List) or patch (a JSON array: the JSON patch of every object)',
    '',
    'A summary of each changed object and every warning go to stderr.',
    'Exit status: 0 done, 2 bad flags or bad input (the message names the document index).',
  ].join('\n');
}

async function readInput(file: string): Promise<string> {
  try {
    return file === '-' ? await text(process.stdin) : await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`-f ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function runMutate(args: readonly string[]): Promise<number> {
  const flags = parseFlags('mutate', args, FLAGS);
  if (!flags.filename) throw new ConfigError('mutate: -f FILE is required (- reads stdin)');
  if (flags['namespace-labels'] !== undefined && flags['namespaces-file'] !== undefined) {
    throw new ConfigError('mutate: --namespace-labels and --namespaces-file are alternatives: give one of them, not both');
  }
  const namespacesFile = flags['namespaces-file'];
  let namespaces;
  if (namespacesFile !== undefined) {
    const content = await readFile(namespacesFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`--namespaces-file ${namespacesFile}: cannot read the file (${err.code ?? err.message})`);
    });
    try {
      namespaces = parseNamespaces(content, namespacesFile);
    } catch (err) {
      throw new ConfigError(`--namespaces-file ${(err as Error).message}`);
    }
  }
  const { stdout, stderr } = mutateManifests(await readInput(flags.filename), {
    namespaceLabels: flags['namespace-labels'] === undefined ? undefined : parseLabelList('--namespace-labels', flags['namespace-labels']),
    namespaces,
    labelPrefix: labelPrefix(flags['label-prefix']),
    output: flags.output === undefined ? undefined : oneOf('-o', flags.output, OUTPUTS),
  });
  for (const line of stderr) process.stderr.write(line + '\n');
  process.stdout.write(stdout);
  return 0;
}
