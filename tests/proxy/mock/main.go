// Serves the Kubernetes e2e suite's mock CSI driver (k8s.io/kubernetes, test/e2e/storage/drivers/
// csi-test/mock/service) on a Unix socket: the real upstream of Tether's proxy tests.
// Usage: mock -endpoint /path/csi.sock -name NAME [-disable-attach]
// The mock's node id is its name: with attach enabled it accepts ControllerPublish only for it.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/kubernetes/test/e2e/storage/drivers/csi-test/mock/service"
)

func main() {
	endpoint := flag.String("endpoint", "", "Unix socket to serve on")
	name := flag.String("name", service.Name, "driver name, which is also the node id")
	disableAttach := flag.Bool("disable-attach", false, "no PUBLISH_UNPUBLISH_VOLUME")
	flag.Parse()
	_ = os.Remove(*endpoint)
	listener, err := net.Listen("unix", *endpoint)
	if err != nil {
		log.Fatalf("listen on %s: %v", *endpoint, err)
	}
	svc := service.New(service.Config{DriverName: *name, DisableAttach: *disableAttach, PermissiveTargetPath: true})
	server := grpc.NewServer()
	csi.RegisterIdentityServer(server, svc)
	csi.RegisterControllerServer(server, svc)
	csi.RegisterNodeServer(server, svc)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; server.GracefulStop() }()
	if err := server.Serve(listener); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
