// Assembles the tether-csi container image tarball from a root filesystem tarball: one layer on an
// empty base, with the platform and entrypoint set, written in the `docker save` format that
// `docker load`, `kind load image-archive` and `ctr images import` all read. No registry, no
// daemon. go-containerregistry (crane's library) does the image format: its append and tarball
// writer are crane's own, and it also sets the config, which crane can only do on a registry.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	rootfs := flag.String("rootfs", "", "tarball of the image's root filesystem (its one layer)")
	tag := flag.String("tag", "", "image name and tag, e.g. tether-csi:0.1.0")
	entrypoint := flag.String("entrypoint", "", "absolute path of the program the image runs")
	arch := flag.String("arch", "", "the binaries' architecture, as Go names it (amd64, arm64)")
	out := flag.String("o", "", "where to write the image tarball")
	flag.Parse()
	if *rootfs == "" || *tag == "" || *entrypoint == "" || *arch == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: image -rootfs ROOTFS.tar -tag NAME:TAG -entrypoint /PATH -arch ARCH -o IMAGE.tar")
		os.Exit(2)
	}
	if err := build(*rootfs, *tag, *entrypoint, *arch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(rootfs, tag, entrypoint, arch, out string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	layer, err := tarball.LayerFromFile(rootfs)
	if err != nil {
		return fmt.Errorf("layer from %s: %w", rootfs, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	// A runtime picks the image for its platform; an empty os/architecture is filtered out.
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config.Entrypoint = []string{entrypoint}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
