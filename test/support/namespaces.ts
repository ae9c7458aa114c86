// Namespaces for FileNamespaceSource (--namespaces-file), written as the multi-document YAML an
// operator would give it; built from name → labels so each suite lists only the cases it needs.

/** Kubernetes Namespace manifests, in the order given, with exactly these labels. */
export function namespacesYaml(labelsByName: Record<string, Record<string, string>>): string {
  return Object.entries(labelsByName)
    .map(([name, labels]) => {
      const entries = Object.entries(labels);
      const labelLines = entries.length === 0 ? '' : `  labels:\n${entries.map(([k, v]) => `    ${k}: ${v}\n`).join('')}`;
      return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${labelLines}`;
    })
    .join('---\n');
}
