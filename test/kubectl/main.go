// Command kubectl is the real kubectl, built from k8s.io/kubectl as a library, for machines that have none: the
// real-cluster tests apply and dry-run manifests with it (see scripts/build-kube-binaries.sh). Nothing here is
// shipped.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() {
	cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand())
}
