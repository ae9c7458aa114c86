// The node's pause image: the sandbox process that holds a Pod's namespaces. It waits for
// SIGINT or SIGTERM and exits, as registry.k8s.io/pause does (that registry is not reachable).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
