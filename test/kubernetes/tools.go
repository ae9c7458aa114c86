//go:build tools

// Package tools names the commands this module builds, so that `go mod tidy` keeps their
// dependencies in go.sum. Built by install-1.37.sh, never imported.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"

	// etcd at the version k8s.io/kubernetes v1.37.2 requires; its module root is package main.
	_ "go.etcd.io/etcd/server/v3"
)
