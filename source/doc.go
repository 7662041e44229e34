// Package source follows environment branches of git repositories with
// go-git, in process, and turns each branch head into a Revision whose tree
// can be read as a filesystem without a checkout.
package source
