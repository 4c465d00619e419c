// Command kube-apiserver is the real Kubernetes API server, built from k8s.io/kubernetes as a library so the
// broker's tests can run against it (see scripts/build-kube-binaries.sh). Nothing here is shipped.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
