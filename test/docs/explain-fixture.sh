#!/usr/bin/env bash
# For the docs' `explain` examples (a doc-test `before:` command): what the scheduler, the
# controllers and the kubelets of a real cluster would add to a Deployment on the docs test's API
# server, which runs none of them: two Ready Nodes in two zones, the Deployment's ReplicaSet, one
# Pod on each node, and the Service's EndpointSlice naming them.
#   explain-fixture.sh NAMESPACE NAME [--create-lb]
# --create-lb first creates the namespace, `kubectl create deployment` and a LoadBalancer Service,
# as a user would (for the README, whose example shows only explain).
set -euo pipefail
ns=$1 name=$2
if [ "${3:-}" = --create-lb ]; then
  kubectl create namespace "$ns" >/dev/null
  kubectl -n "$ns" create deployment "$name" --image=registry.k8s.io/echoserver:1.4 >/dev/null
  kubectl -n "$ns" expose deployment "$name" --type=LoadBalancer --port=80 --target-port=8080 >/dev/null
fi

for n in node-a:zone-1 node-b:zone-2; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: ${n%%:*}, labels: {kubernetes.io/hostname: ${n%%:*}, topology.kubernetes.io/zone: ${n##*:}}}
status: {conditions: [{type: Ready, status: "True", reason: KubeletReady, message: docs fixture}]}
YAML
done

deployment_uid=$(kubectl -n "$ns" get deployment "$name" -o jsonpath='{.metadata.uid}')
kubectl apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: $name-7c9d5
  namespace: $ns
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: $name, uid: $deployment_uid, controller: true}]
spec:
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec: {containers: [{name: echoserver, image: registry.k8s.io/echoserver:1.4}]}
YAML
rs_uid=$(kubectl -n "$ns" get replicaset "$name-7c9d5" -o jsonpath='{.metadata.uid}')

# Read once into a variable: `kubectl api-versions | grep -q` fails under pipefail when grep
# stops reading first.
api_versions=$(kubectl api-versions)
discovery=v1beta1
grep -qx discovery.k8s.io/v1 <<<"$api_versions" && discovery=v1

endpoints=
for i in 0 1; do
  node=node-$([ $i = 0 ] && echo a || echo b)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $name-7c9d5-$i
  namespace: $ns
  labels: {app: $name}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: $name-7c9d5, uid: $rs_uid, controller: true}]
spec:
  nodeName: $node
  containers: [{name: echoserver, image: registry.k8s.io/echoserver:1.4}]
YAML
  # discovery.k8s.io/v1 (1.21+) names the node; v1beta1 (1.20) puts it in topology.
  if [ $discovery = v1 ]; then where="nodeName: $node"; else where="topology: {kubernetes.io/hostname: $node}"; fi
  endpoints+="  - {addresses: [10.244.$i.10], conditions: {ready: true}, targetRef: {kind: Pod, name: $name-7c9d5-$i, namespace: $ns}, $where}
"
done
kubectl apply -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/$discovery
kind: EndpointSlice
metadata: {name: $name-x7k2p, namespace: $ns, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: "", port: 8080, protocol: TCP}]
endpoints:
$endpoints
YAML
