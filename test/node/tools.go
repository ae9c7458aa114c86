//go:build tools

// Package tools names the commands this module builds, so that `go mod tidy` keeps their
// dependencies in go.sum. Built by install-node.sh, never imported.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"

	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"

	_ "k8s.io/kubernetes/cmd/kubelet"
)
