// Package render turns one environment's overlay at one revision into the
// Kubernetes objects to apply, with Kustomize (sigs.k8s.io/kustomize/api)
// in process. The module links a copy of kustomize/api whose resource
// lookups are linear instead of quadratic (third_party/kustomize-api); its
// output is byte for byte the kustomize CLI's, and tests hold it to that.
//
// Kustomize reads the revision's tree through a read-only adapter over the
// Snapshot (an io/fs view of a git tree): there is no checkout, and no path,
// absolute or "../..", reaches outside the snapshot.
//
// What is guaranteed:
//   - A folder with a kustomization file is built with Kustomize; a folder
//     without one is rendered as all its *.yaml, *.yml and *.json files,
//     recursively, like a generated kustomization.
//   - Safe by default: files load only from below each kustomization's own
//     folder (bases are reached as folders); remote resources are refused
//     unless under an allowed prefix (and even then not fetched yet); exec,
//     container and Go plugins, Helm chart inflation and custom OpenAPI
//     schemas are refused. These checks run before Kustomize does.
//   - Either every object renders and validates (apiVersion, kind,
//     metadata.name present; no two objects with the same group, kind,
//     namespace and name), or Render returns an error and no objects.
//   - Errors name the file, and where known the line and the entry, at fault.
//   - Objects come in a fixed apply order (see sortObjects), and the Digest
//     covers their canonical YAML, so equal digests mean equal output.
//   - Results are cached by the snapshot's root tree hash and folder: an
//     unchanged input is not rebuilt.
//   - Untrusted input is bounded (Limits): a file's size before it is read,
//     the YAML nodes its aliases expand to before Kustomize reads it, the
//     object count before the build (an exponential fan-out of bases) and
//     after. With Options.WorkerPath, builds run in a worker process whose
//     memory and time are bounded too. A render stopped by a limit returns a
//     *LimitError naming the limit and the file.
//   - No object content is ever logged (Secrets included).
//
// What is not done:
//   - A running build in process cannot be interrupted: Kustomize takes no
//     context. In a worker it is killed at Limits.MaxDuration.
//   - Allowed remote references pass the policy check but are not fetched:
//     the content must be vendored into the repository.
//   - A patch whose target selector matches nothing is a no-op, as in
//     Kustomize; only patches that name their target by kind and name fail.
//   - Kustomize itself prints deprecation warnings to stderr and a few
//     notices to the standard logger; they carry field and variable names,
//     never object content.
//
// SetImages and Images edit and read the images: list of a kustomization
// file, keeping its comments and key order.
package render
