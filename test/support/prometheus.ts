// Reading Prometheus text exposition in tests.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function* samples(exposition: string): Generator<Sample> {
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    yield { name: match[1]!, labels, value: match[3] === '+Inf' ? Infinity : Number(match[3]) };
  }
}

const has = (s: Sample, name: string, labels: Record<string, string>) =>
  s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** The value of one Prometheus sample whose labels include `labels`, or undefined when absent. */
export function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const s of samples(exposition)) if (has(s, name, labels)) return s.value;
  return undefined;
}

/** The sum of every sample whose labels include `labels` (0 when there is none). */
export function total(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples(exposition)) if (has(s, name, labels)) sum += s.value;
  return sum;
}
