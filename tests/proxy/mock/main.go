// Serves the Kubernetes e2e suite's mock CSI driver (k8s.io/kubernetes, test/e2e/storage/drivers/
// csi-test/mock/service) on a Unix socket: the real upstream of Tether's proxy tests.
// Usage: mock -endpoint /path/csi.sock -name NAME [-disable-attach] [-attach-sync DIR]
// The mock's node id is its name: with attach enabled it accepts ControllerPublish only for it.
// With -attach-sync, every ControllerPublish and ControllerUnpublish the mock accepts is kept
// on disk before it answers (the attachment rewritten in a file per volume in DIR, then
// fdatasync), as a driver that remembers its attachments must: the benches' upstream that does
// I/O. The mock itself keeps its state in memory only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/kubernetes/test/e2e/storage/drivers/csi-test/mock/service"
)

// attachment is a publish or unpublish request: the two carry the same ids.
type attachment interface {
	GetVolumeId() string
	GetNodeId() string
}

// attachChanges are the calls whose accepted changes are kept.
var attachChanges = map[string]bool{
	"/csi.v1.Controller/ControllerPublishVolume":   true,
	"/csi.v1.Controller/ControllerUnpublishVolume": true,
}

// keepAttachments makes each accepted attach change durable in dir before the answer leaves.
func keepAttachments(dir string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		change, isAttach := req.(attachment)
		if err != nil || !isAttach || !attachChanges[info.FullMethod] {
			return resp, err
		}
		if err := keep(dir, info.FullMethod, change); err != nil {
			return nil, fmt.Errorf("keep the attachment: %w", err)
		}
		return resp, nil
	}
}

// keep rewrites the volume's record in place (a fixed size, so only data reaches the disk) and syncs it.
func keep(dir, method string, change attachment) error {
	f, err := os.OpenFile(filepath.Join(dir, filepath.Base(change.GetVolumeId())), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	record := fmt.Sprintf("%-64.64s%-64.64s%-64.64s", filepath.Base(method), change.GetVolumeId(), change.GetNodeId())
	if _, err := f.WriteAt([]byte(record), 0); err != nil {
		return err
	}
	return syscall.Fdatasync(int(f.Fd()))
}

func main() {
	endpoint := flag.String("endpoint", "", "Unix socket to serve on")
	name := flag.String("name", service.Name, "driver name, which is also the node id")
	disableAttach := flag.Bool("disable-attach", false, "no PUBLISH_UNPUBLISH_VOLUME")
	attachSync := flag.String("attach-sync", "", "directory where each attach change is kept, synced, before the answer")
	flag.Parse()
	_ = os.Remove(*endpoint)
	listener, err := net.Listen("unix", *endpoint)
	if err != nil {
		log.Fatalf("listen on %s: %v", *endpoint, err)
	}
	svc := service.New(service.Config{DriverName: *name, DisableAttach: *disableAttach, PermissiveTargetPath: true})
	var options []grpc.ServerOption
	if *attachSync != "" {
		options = append(options, grpc.UnaryInterceptor(keepAttachments(*attachSync)))
	}
	server := grpc.NewServer(options...)
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
