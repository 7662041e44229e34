// Package image builds Baton's container image without a container engine:
// the agent compiled as a static binary for each platform, a small root
// filesystem (a non-root user, CA certificates) and an OCI image index over
// both, written as an OCI layout, as per-platform tarballs that `docker
// load` and `podman load` accept, with an SPDX SBOM beside each, and pushed
// to a registry with go-containerregistry, the library ko is built on.
//
// The same commit gives the same digest on any machine with the same Go
// toolchain: every timestamp is the commit's time (or SOURCE_DATE_EPOCH),
// files are sorted and owned by fixed ids with fixed modes, the CA bundle
// comes from a pinned Go module, and the binary is built with -trimpath and
// a fixed set of build settings.
package image
