package image

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
)

// The SPDX 2.3 JSON document, with the fields this SBOM fills.
type (
	spdxDocument struct {
		SPDXVersion       string             `json:"spdxVersion"`
		DataLicense       string             `json:"dataLicense"`
		SPDXID            string             `json:"SPDXID"`
		Name              string             `json:"name"`
		DocumentNamespace string             `json:"documentNamespace"`
		CreationInfo      spdxCreationInfo   `json:"creationInfo"`
		Packages          []spdxPackage      `json:"packages"`
		Relationships     []spdxRelationship `json:"relationships"`
	}
	spdxCreationInfo struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	}
	spdxPackage struct {
		SPDXID                string            `json:"SPDXID"`
		Name                  string            `json:"name"`
		VersionInfo           string            `json:"versionInfo,omitempty"`
		Supplier              string            `json:"supplier,omitempty"`
		DownloadLocation      string            `json:"downloadLocation"`
		FilesAnalyzed         bool              `json:"filesAnalyzed"`
		LicenseConcluded      string            `json:"licenseConcluded"`
		LicenseDeclared       string            `json:"licenseDeclared"`
		CopyrightText         string            `json:"copyrightText"`
		PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
		Checksums             []spdxChecksum    `json:"checksums,omitempty"`
		ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
		Comment               string            `json:"comment,omitempty"`
	}
	spdxChecksum struct {
		Algorithm     string `json:"algorithm"`
		ChecksumValue string `json:"checksumValue"`
	}
	spdxExternalRef struct {
		ReferenceCategory string `json:"referenceCategory"`
		ReferenceType     string `json:"referenceType"`
		ReferenceLocator  string `json:"referenceLocator"`
	}
	spdxRelationship struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}
)

const noAssertion = "NOASSERTION"

// caModule is the Go module the image's CA bundle comes from.
const caModule = "golang.org/x/crypto/x509roots/fallback"

// SBOM writes an SPDX 2.3 JSON document for one platform's image: the
// image, the binary (the main module, from the build information the Go
// linker records in it), every module compiled into it, the Go standard
// library, and the module the CA bundle comes from (from this builder's own
// build information). Its namespace and time derive from the binary and the
// commit, so it is as reproducible as the image.
func SBOM(binary, imageRef string, p Platform, m Metadata) ([]byte, error) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("sbom %s: build information of %s: %w", p, binary, err)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("sbom %s: %w", p, err)
	}
	sum := sha256.Sum256(bin)
	binSum := hex.EncodeToString(sum[:])

	image := spdxPackage{SPDXID: "SPDXRef-Image", Name: imageRef, VersionInfo: m.Source.Version,
		DownloadLocation: noAssertion, PrimaryPackagePurpose: "CONTAINER",
		Comment: "OCI image for " + p.String() + ", built from commit " + m.Source.Commit}
	main := goPackage(info.Main)
	main.SPDXID = "SPDXRef-Binary"
	main.VersionInfo = m.Source.Version
	main.PrimaryPackagePurpose = "APPLICATION"
	main.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: binSum}}
	main.ExternalRefs = []spdxExternalRef{purl(info.Main.Path, m.Source.Version)}
	main.Comment = "the binary " + BinaryPath
	if m.Repository != "" {
		main.DownloadLocation = "git+" + m.Repository + "@" + m.Source.Commit
	}
	stdlib := spdxPackage{SPDXID: "SPDXRef-Package-stdlib", Name: "stdlib", VersionInfo: info.GoVersion,
		DownloadLocation: "https://go.dev/dl/", LicenseConcluded: noAssertion, LicenseDeclared: "BSD-3-Clause",
		CopyrightText: noAssertion, ExternalRefs: []spdxExternalRef{purl("stdlib", strings.TrimPrefix(info.GoVersion, "go"))}}

	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              "baton-" + m.Source.Version + "-" + p.OS + "-" + p.Arch,
		DocumentNamespace: strings.TrimSuffix(m.Repository, "/") + "/spdx/" + p.OS + "-" + p.Arch + "/" + binSum,
		CreationInfo: spdxCreationInfo{Created: m.Source.Time.Format("2006-01-02T15:04:05Z"),
			Creators: []string{"Tool: baton-image", "Organization: Baton"}},
		Packages: []spdxPackage{image, main, stdlib},
		Relationships: []spdxRelationship{
			{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"},
			{"SPDXRef-Image", "CONTAINS", "SPDXRef-Binary"},
			{"SPDXRef-Binary", "DEPENDS_ON", "SPDXRef-Package-stdlib"},
		},
	}
	for _, dep := range info.Deps {
		pkg := goPackage(*dep)
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Binary", "DEPENDS_ON", pkg.SPDXID})
	}
	if ca := caPackage(); ca != nil {
		doc.Packages = append(doc.Packages, *ca)
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Image", "CONTAINS", ca.SPDXID})
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sbom %s: %w", p, err)
	}
	return append(out, '\n'), nil
}

// goPackage describes one Go module, its replacement (what was actually
// compiled) when it has one.
func goPackage(mod debug.Module) spdxPackage {
	used := mod
	comment := ""
	if mod.Replace != nil {
		used = *mod.Replace
		comment = "replaces " + mod.Path + "@" + mod.Version
	}
	pkg := spdxPackage{
		SPDXID:           "SPDXRef-Package-go-" + spdxIDPart(used.Path+"-"+used.Version),
		Name:             used.Path,
		VersionInfo:      used.Version,
		DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		Comment:          comment,
	}
	if used.Version != "" && used.Version != "(devel)" {
		pkg.DownloadLocation = "https://proxy.golang.org/" + used.Path + "/@v/" + used.Version + ".zip"
		pkg.ExternalRefs = []spdxExternalRef{purl(used.Path, used.Version)}
	}
	if used.Sum != "" {
		// The go.sum hash (h1:, a SHA-256 over the module's files) has no
		// SPDX algorithm name: it goes in the comment.
		pkg.Comment = strings.TrimSpace(comment + " go.sum " + used.Sum)
	}
	return pkg
}

// caPackage is the module of the CA bundle, as this builder was built with
// it; nil when the builder has no build information (a stripped test).
func caPackage() *spdxPackage {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	for _, d := range info.Deps {
		if d.Path == caModule {
			p := goPackage(*d)
			p.SPDXID = "SPDXRef-CABundle"
			p.Comment = strings.TrimSpace("the CA bundle " + CABundlePath + " (Mozilla's root store as this module ships it) " + p.Comment)
			return &p
		}
	}
	return nil
}

// purl is the package URL of a Go module.
func purl(path, version string) spdxExternalRef {
	return spdxExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl",
		ReferenceLocator: "pkg:golang/" + path + "@" + version}
}

var notIDChar = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxIDPart makes s usable in an SPDX identifier ([A-Za-z0-9.-]).
func spdxIDPart(s string) string { return notIDChar.ReplaceAllString(s, "-") }
