// Command etcd is the real etcd server, built from go.etcd.io/etcd/server/v3 as a library so the broker's tests can
// run a real kube-apiserver against it (see scripts/build-kube-binaries.sh). Nothing here is shipped.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
