// Which Kubernetes release the cluster suites (e2e, Helm, data path, Istio, engines) run against,
// and where its binaries are. KUBE_VERSION picks it (`KUBE_VERSION=1.20 npm run test:e2e`); the
// newest is the default, as it is what users run. .ci/run runs every suite against both.
import { findExecutable } from '../support/executables.js';

const CACHE = '/var/cache/realip-webhook';

export interface KubernetesRelease {
  /** Major.minor, as KUBE_VERSION names it. */
  minor: '1.20' | '1.37';
  /** The exact release the binaries report. */
  version: string;
  /** kube-apiserver, kube-proxy, kube-scheduler, kube-controller-manager. */
  binDir: string;
  etcd: string;
  kubectl: string;
  /** The command that provides the binaries. */
  installHint: string;
}

const RELEASES: Record<KubernetesRelease['minor'], () => KubernetesRelease> = {
  // Debian's kubernetes source package; etcd 3.4 and kubectl from Debian (or a kubectl on PATH).
  '1.20': () => ({
    minor: '1.20',
    version: '1.20.2',
    binDir: `${CACHE}/kubernetes-1.20.2`,
    etcd: findExecutable('etcd') ?? '/usr/bin/etcd',
    kubectl: findExecutable('kubectl') ?? '/usr/bin/kubectl',
    installHint: 'run test/kubernetes/install-1.20.sh (as root) first',
  }),
  // Go modules pinned in test/kubernetes/go.mod: etcd and kubectl are built beside the components.
  '1.37': () => ({
    minor: '1.37',
    version: '1.37.2',
    binDir: `${CACHE}/kubernetes-1.37.2`,
    etcd: `${CACHE}/kubernetes-1.37.2/etcd`,
    kubectl: `${CACHE}/kubernetes-1.37.2/kubectl`,
    installHint: 'run test/kubernetes/install-1.37.sh (as root) first',
  }),
};

export const SUPPORTED_MINORS = Object.keys(RELEASES) as KubernetesRelease['minor'][];

export function kubernetesRelease(minor: string): KubernetesRelease {
  const make = RELEASES[minor as KubernetesRelease['minor']];
  if (!make) throw new Error(`KUBE_VERSION=${minor} is not a tested release; use one of ${SUPPORTED_MINORS.join(', ')}`);
  return make();
}

/** The release named by KUBE_VERSION, the newest when unset. */
export const release: KubernetesRelease = kubernetesRelease(process.env.KUBE_VERSION || SUPPORTED_MINORS.at(-1)!);

/** True from the given major.minor on, for what differs between the releases. */
export function atLeast(minor: string, r: KubernetesRelease = release): boolean {
  const [a, b] = r.minor.split('.').map(Number) as [number, number];
  const [c, d] = minor.split('.').map(Number) as [number, number];
  return a > c || (a === c && b >= d);
}
