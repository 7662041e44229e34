package agent

import (
	"sync"
	"time"

	"github.com/baton-gitops/baton/source"
)

// Status is what /api/status serves: the agent's role and every synced
// environment's state. It is the contract with `baton status` and a later
// status page: add fields, never rename them.
type Status struct {
	// Identity is this replica's leader-election identity (empty for a
	// computed status).
	Identity string `json:"identity,omitempty"`
	// Role is RoleLeader, RoleStandby or RoleSingle.
	Role string `json:"role"`
	// Leader is the identity of the replica holding the agent's Lease
	// (agent.leaderElection.leaseName), when known. With environments
	// spread over replicas every replica syncs its share and this Lease
	// only keeps agents of the older, single-leader kind out; each
	// environment's Agent says which replica syncs it.
	Leader string `json:"leader,omitempty"`
	// Environments are in configuration order.
	Environments []EnvironmentStatus `json:"environments"`
}

// Roles (Status.Role).
const (
	// RoleLeader: this replica holds the Lease and applies; with
	// environments spread over replicas, it syncs at least one
	// (EnvironmentStatus.Agent says which).
	RoleLeader = "leader"
	// RoleStandby: another replica leads, or the election is undecided;
	// this one applies nothing and its environment states are not updated.
	RoleStandby = "standby"
	// RoleSingle: leader election is off; this replica applies.
	RoleSingle = "single"
)

// EnvironmentStatus is one environment's state.
type EnvironmentStatus struct {
	Name string `json:"name"`
	// Agent is the identity of this replica when it syncs the
	// environment; with environments spread over replicas, empty means
	// another replica syncs it and the rest of this entry may be stale
	// (its Environment object has the syncing replica's status).
	Agent string `json:"agent,omitempty"`
	// Pipeline names the pipeline (application, team) the environment is
	// in; empty when it is in none.
	Pipeline string `json:"pipeline,omitempty"`
	// Repository is the URL without credentials; Branch and Path locate the
	// overlay in it.
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	Path       string `json:"path"`
	// Suspended: nothing is applied or promoted. SuspendedBy and
	// SuspendReason say who suspended it and why (`baton suspend` through
	// the Environment object, or baton.yaml), SuspendedSince since when
	// this agent knows.
	Suspended      bool      `json:"suspended,omitempty"`
	SuspendedBy    string    `json:"suspendedBy,omitempty"`
	SuspendReason  string    `json:"suspendReason,omitempty"`
	SuspendedSince time.Time `json:"suspendedSince,omitzero"`
	// Soak is how long the environment must stay healthy at a revision
	// before it is promoted (health.soak).
	Soak source.Duration `json:"soak,omitzero"`
	// Head is the last good revision of the branch.
	Head *RevisionInfo `json:"head,omitempty"`
	// SourceError is why the branch could not be read at the last poll
	// (Head stays the last good revision).
	SourceError string `json:"sourceError,omitempty"`
	// Synced is the revision whose every object was last applied, and
	// SyncedAt when it was first applied by this agent (zero when unknown).
	Synced   *RevisionInfo `json:"synced,omitempty"`
	SyncedAt time.Time     `json:"syncedAt,omitzero"`
	// LastSync is the last pass, successful or not.
	LastSync *SyncInfo `json:"lastSync,omitempty"`
	// Health is the health of the synced revision.
	Health HealthInfo `json:"health"`
	// Drifted lists objects found edited or deleted by hand at the last
	// pass, as Kind/namespace/name.
	Drifted []string `json:"drifted,omitempty"`
	// Promotions are the last attempt along each pipeline edge from this
	// environment, in configuration order.
	Promotions []PromotionInfo `json:"promotions,omitempty"`
	// Reverts are, for each edge into this environment that reverts a
	// promotion leaving it unhealthy (revertOnUnhealthy), the last revert
	// made or attempted; From names the edge's source.
	Reverts []PromotionInfo `json:"reverts,omitempty"`
}

// RevisionInfo names a commit.
type RevisionInfo struct {
	Commit  string    `json:"commit"`
	Subject string    `json:"subject,omitempty"`
	Time    time.Time `json:"time"`
}

// SyncInfo describes one pass.
type SyncInfo struct {
	Time     time.Time `json:"time"`
	Revision string    `json:"revision,omitempty"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	// Duration is written as a Go duration string such as "1.2s".
	Duration source.Duration `json:"duration"`
	// Counts counts objects by action (created, configured, unchanged, ...).
	Counts map[string]int `json:"counts,omitempty"`
}

// HealthInfo is a health verdict.
type HealthInfo struct {
	// Status is Healthy, Progressing, Degraded, Cancelled or Unknown; empty
	// before the first verdict.
	Status string `json:"status,omitempty"`
	// Cause names why it is not healthy (crashloop, oomkilled, ...).
	Cause   string `json:"cause,omitempty"`
	Message string `json:"message,omitempty"`
	// Since is when Status took its value.
	Since time.Time `json:"since,omitzero"`
	// Revision is the synced revision the verdict is about.
	Revision string `json:"revision,omitempty"`
}

// PromotionInfo is the last promotion attempt along one edge.
type PromotionInfo struct {
	// From is set in EnvironmentStatus.Reverts only (in Promotions it is
	// the environment itself).
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
	Policy string `json:"policy"`
	// Revision is the source commit evaluated.
	Revision string `json:"revision,omitempty"`
	// Outcome is one of the Promotion* constants; Reason names the gate,
	// hold or freeze that blocked, Detail says it in words.
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Commit is the promotion commit; PullRequestURL its pull request.
	Commit         string    `json:"commit,omitempty"`
	PullRequestURL string    `json:"pullRequestURL,omitempty"`
	Time           time.Time `json:"time,omitzero"`
}

// statusBoard holds the agent's status; loops update their environment's
// entry and the HTTP server reads copies.
type statusBoard struct {
	// mu guards every field below.
	mu       sync.Mutex
	identity string
	role     string
	leader   string
	envs     map[string]*EnvironmentStatus
	order    []string
	// attempted holds the environments whose first sync since this replica
	// became leader was attempted: readiness.
	attempted map[string]bool
	// controls are the people's requests from the Environment objects
	// (see control.go), by environment.
	controls map[string]*control
	// held holds the environments this replica syncs, when they are
	// spread over replicas (sharded); nil otherwise, when the role says
	// whether it syncs them all.
	held map[string]bool

	// changed holds one pending signal that the status changed, for the
	// Environment objects' writer. It is not guarded: a channel.
	changed chan struct{}
}

func newStatusBoard(identity, role string, envs []EnvironmentStatus) *statusBoard {
	b := &statusBoard{identity: identity, role: role, envs: map[string]*EnvironmentStatus{}, attempted: map[string]bool{},
		controls: map[string]*control{}, changed: make(chan struct{}, 1)}
	for i := range envs {
		e := envs[i]
		b.envs[e.Name] = &e
		b.order = append(b.order, e.Name)
	}
	return b
}

// shard says the environments are spread over replicas: the role follows
// the environments held (setHeld).
func (b *statusBoard) shard() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = map[string]bool{}
}

// setHeld records that this replica syncs env, or no longer does, and
// reports whether env is the first held or the last given up.
func (b *statusBoard) setHeld(env string, held bool) (first, last bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held == nil || b.held[env] == held {
		return false, false
	}
	if held {
		b.held[env] = true
		first = len(b.held) == 1
	} else {
		delete(b.held, env)
		delete(b.attempted, env)
		last = len(b.held) == 0
	}
	b.role = RoleStandby
	if len(b.held) > 0 {
		b.role = RoleLeader
	}
	if e := b.envs[env]; e != nil {
		e.Agent = ""
		if held {
			e.Agent = b.identity
		}
	}
	signal(b.changed)
	return first, last
}

// syncs reports whether this replica syncs env now.
func (b *statusBoard) syncs(env string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held != nil {
		return b.held[env]
	}
	return b.role != RoleStandby
}

// update changes env's entry under the lock.
func (b *statusBoard) update(env string, change func(*EnvironmentStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.envs[env]; ok {
		change(e)
		signal(b.changed)
	}
}

func (b *statusBoard) markAttempted(env string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempted[env] = true
}

func (b *statusBoard) setRole(role string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.role = role
	if role == RoleStandby {
		b.attempted = map[string]bool{}
	}
	signal(b.changed)
}

func (b *statusBoard) setLeader(identity string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leader = identity
}

// ready reports whether the replica should receive traffic: a standby is
// ready (it serves status, and a Deployment's rolling update must be able
// to complete while another replica leads); a leader once every
// environment's first sync was attempted. pending lists the others.
func (b *statusBoard) ready() (ok bool, role string, pending []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.role == RoleStandby {
		return true, b.role, nil
	}
	for _, name := range b.order {
		if b.held != nil && !b.held[name] {
			continue // another replica's
		}
		if !b.attempted[name] {
			pending = append(pending, name)
		}
	}
	return len(pending) == 0, b.role, pending
}

// snapshot returns a deep copy of the status.
func (b *statusBoard) snapshot() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Status{Identity: b.identity, Role: b.role, Leader: b.leader, Environments: []EnvironmentStatus{}}
	for _, name := range b.order {
		s.Environments = append(s.Environments, copyEnv(*b.envs[name]))
	}
	return s
}

func copyEnv(e EnvironmentStatus) EnvironmentStatus {
	if e.Head != nil {
		h := *e.Head
		e.Head = &h
	}
	if e.Synced != nil {
		s := *e.Synced
		e.Synced = &s
	}
	if e.LastSync != nil {
		l := *e.LastSync
		if l.Counts != nil {
			counts := make(map[string]int, len(l.Counts))
			for k, v := range l.Counts {
				counts[k] = v
			}
			l.Counts = counts
		}
		e.LastSync = &l
	}
	e.Drifted = append([]string(nil), e.Drifted...)
	e.Promotions = append([]PromotionInfo(nil), e.Promotions...)
	e.Reverts = append([]PromotionInfo(nil), e.Reverts...)
	return e
}
