// `explain` as one pure function: the facts read from the cluster in, the hops from the client to
// the app's process out, with a one-sentence verdict and the exit status. The cluster is read
// elsewhere (src/commands/explain-cluster.ts), so tests drive this without a server.
import type { NamespaceInfo } from '../commands/audit-scan.js';
import { entryHop, type Entry, type EntryFacts } from './entry.js';
import { SEES, type Hop, type Readable } from './hop.js';
import { inThePodHop } from './in-the-pod.js';
import { l4Hop } from './l4.js';
import { l7Hop } from './l7.js';
import { ref, type ConfigMap, type EndpointSlice, type Node, type Pod, type Service, type Workload } from './objects.js';
import { spreadHop } from './spread.js';

/** What explain reads about one Service and its namespace. */
export interface ServiceFacts {
  service: Service;
  namespace: Readable<NamespaceInfo>;
  slices: Readable<EndpointSlice[]>;
  pods: Readable<Pod[]>;
  workloads: Readable<Workload[]>;
}

export interface ExplainFacts {
  labelPrefix: string;
  entry: EntryFacts;
  app: ServiceFacts;
  /** The ingress or gateway controller's Service, when the entry goes through one that was found. */
  controller?: ServiceFacts | undefined;
  nodes: Readable<Node[]>;
  /** ingress-nginx's ConfigMap (undefined: none configured). */
  nginxConfigMap: Readable<ConfigMap | undefined>;
}

export interface Report {
  service: string;
  hops: Hop[];
  /** One sentence: what the app sees, and where the client IP is lost or at risk. */
  verdict: string;
  /** 0: the client IP reaches the app on every hop; 1: lost, at risk or unknown somewhere. */
  exitCode: 0 | 1;
}

/** Each hop puts the line that decides its verdict last. */
function lastReason(hop: Hop): string {
  return hop.evidence.at(-1) ?? hop.verdict;
}

function sentence(entry: Entry, hops: Hop[], proxyProtocol: boolean): string {
  const behindProxy = entry.path === 'proxy';
  const lost = hops.find((h) => h.verdict === 'lost');
  if (lost) {
    const seen = lost.sees ?? 'no request from the client';
    const what = behindProxy && lost.hop === 'L4' ? `the ingress controller's pod IP, with ${seen} in X-Forwarded-For` : seen;
    return `The app sees ${what}: lost at ${lost.hop} (${lastReason(lost)}).`;
  }
  const unknown = hops.find((h) => h.verdict === 'unknown');
  if (unknown) return `Cannot tell what the app sees: ${unknown.hop} is ${lastReason(unknown)}.`;
  const seen =
    entry.path === 'proxy'
      ? `the ingress controller's pod IP, with ${SEES.client} in X-Forwarded-For`
      : entry.path === 'in-cluster'
        ? `${SEES.client} (its clients are in-cluster Pods)`
        : proxyProtocol
          ? `${SEES.client} in the PROXY protocol header`
          : SEES.client;
  const risk = hops.find((h) => h.verdict === 'at risk');
  return risk ? `The app sees ${seen}, at risk at ${risk.hop}: ${lastReason(risk)}.` : `The app sees ${seen}.`;
}

export function explain(facts: ExplainFacts): Report {
  const { labelPrefix, app } = facts;
  const { hop: entry, entry: path } = entryHop(facts.entry);
  const hops: Hop[] = [entry];
  let proxyProtocol = false;
  const pod = (behindL7Proxy: boolean) => inThePodHop({ ...app, labelPrefix, behindL7Proxy });

  if (path.path !== 'in-cluster') {
    const behindProxy = path.path === 'proxy';
    const l4Scope = behindProxy ? facts.controller : app;
    const notFound = "unknown (the controller's Service was not found: see entry)";
    if (!l4Scope) {
      hops.push({ hop: 'L4', verdict: 'unknown', evidence: [notFound] }, { hop: 'spread', verdict: 'unknown', evidence: [notFound] }, pod(true));
      hops.push({ hop: 'L7', verdict: 'unknown', evidence: [notFound] });
    } else {
      const l4 = l4Hop({ service: l4Scope.service, namespace: l4Scope.namespace, labelPrefix });
      proxyProtocol = l4.proxyProtocol;
      hops.push(l4.hop, spreadHop({ ...l4Scope, nodes: facts.nodes, labelPrefix, viaLocalNodePorts: l4.viaLocalNodePorts }), pod(behindProxy));
      if (behindProxy) {
        hops.push(l7Hop({
          controller: path.controller,
          controllerService: l4Scope.service,
          workloads: l4Scope.workloads,
          configMap: facts.nginxConfigMap,
          l4Kept: l4.hop.verdict === 'kept',
          proxyProtocol,
        }));
      }
    }
  } else {
    hops.push(pod(false));
  }
  return {
    service: ref(app.service),
    hops,
    verdict: sentence(path, hops, proxyProtocol),
    exitCode: hops.every((h) => h.verdict === 'kept') ? 0 : 1,
  };
}

export function formatTable(report: Report): string {
  const rows: [string, string, string][] = [['HOP', 'VERDICT', 'EVIDENCE']];
  for (const h of report.hops) {
    const lines = [...h.evidence, ...(h.fix ? [`fix: ${h.fix}`] : [])];
    lines.forEach((line, i) => rows.push(i === 0 ? [h.hop, h.verdict, line] : ['', '', line]));
  }
  const widths = [0, 1].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) => `${r[0].padEnd(widths[0]!)}  ${r[1].padEnd(widths[1]!)}  ${r[2]}`.trimEnd());
  return [...table, '', report.verdict, ''].join('\n');
}
