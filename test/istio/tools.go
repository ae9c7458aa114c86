//go:build tools

// Package tools names the commands this module builds, so that `go mod tidy` keeps their
// dependencies in go.sum. Built by install-istio.sh, never imported.
package tools

import (
	// istiod: its sidecar injection webhook is what the Istio suite runs against.
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
	// istioctl: `manifest generate` for the CRDs and the injector configuration, `kube-inject`
	// for the offline pipeline.
	_ "istio.io/istio/istioctl/cmd/istioctl"
)
