// A Node as the e2e tests register it: the API server accepts status on create, and no kubelet
// runs here to change it, so the Ready condition stays what the test wrote.
export function nodeManifest(name: string, ready: 'True' | 'False', zone: string): string {
  return `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: {kubernetes.io/hostname: ${name}, topology.kubernetes.io/zone: ${zone}}
status:
  conditions:
  - {type: Ready, status: "${ready}", reason: E2E, message: set by the test}
---
`;
}
