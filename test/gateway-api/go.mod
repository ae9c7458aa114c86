// Pins the Gateway API release whose CRDs (config/crd/standard) the explain e2e test installs.
// No code is built: `go mod download -json sigs.k8s.io/gateway-api` names the directory.
module realip-webhook/test/gateway-api

go 1.26

require sigs.k8s.io/gateway-api v1.4.1
