//go:build tools

// Records the command the install script builds, so go mod tidy keeps its dependencies.
package tools

import _ "github.com/kyverno/kyverno/cmd/kyverno"
