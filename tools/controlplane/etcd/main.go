// Command etcd runs the etcd server; etcd's own main module carries replace
// directives, so `go install` cannot build it at a version.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
