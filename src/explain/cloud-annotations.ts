// Service annotations of cloud load balancers that change where the client's address goes, and
// how. One row per annotation: add a cloud by adding a row.
import type { Labels } from '../mutation/settings.js';

type CloudEffect =
  /** The LB sends to pod IPs, not node ports: externalTrafficPolicy does not matter. */
  | { kind: 'direct-to-pod'; keepsClientIp: 'yes' | 'only with preserve' }
  /** The LB prepends a PROXY protocol header carrying the client's address. */
  | { kind: 'proxy-protocol' }
  /** The LB keeps the client's address on its connections to pod IPs. */
  | { kind: 'preserve-client-ip' };

export interface CloudAnnotation {
  cloud: string;
  key: string;
  applies: (value: string) => boolean;
  effect: CloudEffect;
}

const AWS = 'service.beta.kubernetes.io/aws-load-balancer';

export const CLOUD_ANNOTATIONS: readonly CloudAnnotation[] = [
  // NLB IP targets (AWS Load Balancer Controller): TCP/TLS target groups preserve the client
  // address only when preserve_client_ip.enabled=true; by default the pod sees the NLB's address.
  { cloud: 'AWS NLB', key: `${AWS}-nlb-target-type`, applies: (v) => v === 'ip', effect: { kind: 'direct-to-pod', keepsClientIp: 'only with preserve' } },
  { cloud: 'AWS NLB', key: `${AWS}-type`, applies: (v) => v === 'nlb-ip', effect: { kind: 'direct-to-pod', keepsClientIp: 'only with preserve' } },
  {
    cloud: 'AWS NLB',
    key: `${AWS}-target-group-attributes`,
    applies: (v) => /(^|,)\s*preserve_client_ip\.enabled=true\s*(,|$)/.test(v),
    effect: { kind: 'preserve-client-ip' },
  },
  { cloud: 'AWS', key: `${AWS}-proxy-protocol`, applies: (v) => v === '*', effect: { kind: 'proxy-protocol' } },
  // Tencent TKE: the CLB forwards to pod IPs (ENI) and keeps the client's address.
  { cloud: 'Tencent TKE', key: 'service.cloud.tencent.com/direct-access', applies: (v) => v === 'true', effect: { kind: 'direct-to-pod', keepsClientIp: 'yes' } },
  { cloud: 'DigitalOcean', key: 'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol', applies: (v) => v === 'true', effect: { kind: 'proxy-protocol' } },
  { cloud: 'Hetzner', key: 'load-balancer.hetzner.cloud/uses-proxyprotocol', applies: (v) => v === 'true', effect: { kind: 'proxy-protocol' } },
  { cloud: 'Linode', key: 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol', applies: (v) => v === 'v1' || v === 'v2', effect: { kind: 'proxy-protocol' } },
];

interface FoundAnnotation {
  row: CloudAnnotation;
  value: string;
}

/** The rows that apply to these annotations, in table order. */
export function cloudAnnotationsOf(annotations: Labels | undefined): FoundAnnotation[] {
  return CLOUD_ANNOTATIONS.flatMap((row) => {
    const value = annotations?.[row.key];
    return value !== undefined && row.applies(value) ? [{ row, value }] : [];
  });
}
