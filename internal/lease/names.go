package lease

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
)

// Labels on every Lease a Manager writes.
const (
	// LabelGroup names the group (Options.Group): the agents sharing
	// units. Several groups may share a namespace.
	LabelGroup = "baton.dev/lease-group"
	// LabelRole is RoleReplica or RoleUnit.
	LabelRole = "baton.dev/lease-role"
	// LabelUnit names the unit of a unit's Lease (an environment).
	LabelUnit = "baton.dev/environment"
)

// Values of LabelRole.
const (
	// RoleReplica marks a replica's membership Lease.
	RoleReplica = "replica"
	// RoleUnit marks the Lease of one unit.
	RoleUnit = "environment"
)

// UnitLeaseName is the name of unit's Lease in group: <group>-env-<unit>.
func UnitLeaseName(group, unit string) string { return group + "-env-" + unit }

var notLabelChars = regexp.MustCompile(`[^a-z0-9-]+`)

// ReplicaLeaseName is the name of a replica's membership Lease:
// <group>-replica-<identity as a DNS label>-<hash>, the hash keeping
// identities that differ only in the characters replaced apart.
func ReplicaLeaseName(group, identity string) string {
	clean := strings.Trim(notLabelChars.ReplaceAllString(strings.ToLower(identity), "-"), "-")
	if len(clean) > 40 {
		clean = strings.Trim(clean[:40], "-")
	}
	h := fnv.New32a()
	h.Write([]byte(identity))
	return fmt.Sprintf("%s-replica-%s-%08x", group, clean, h.Sum32())
}

// preference orders units for one replica: each replica prefers a
// different, stable set, so that replicas rarely race for the same Lease
// and a unit tends to return to the same replica (rendezvous hashing).
func preference(identity, unit string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(identity))
	h.Write([]byte{0})
	h.Write([]byte(unit))
	return h.Sum64()
}

// share is the number of units each of replicas live replicas aims at.
func share(units, replicas int) int {
	if replicas < 1 {
		replicas = 1
	}
	return (units + replicas - 1) / replicas
}
