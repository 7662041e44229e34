package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/githash"
)

// Event reasons the CLI records on an Environment object, naming who asked.
const (
	reasonSuspendRequested  = "SuspendRequested"
	reasonResumeRequested   = "ResumeRequested"
	reasonSyncRequested     = "SyncRequested"
	reasonRollbackRequested = "RollbackRequested"
)

// defaultWait bounds how long suspend, resume and sync wait for the agent.
const defaultWait = 60 * time.Second

// session is what the on-call verbs share: the cluster, the namespace of
// the Environment objects, and who is asking.
type session struct {
	cfg     *config.Config // nil without a configuration file
	rest    *rest.Config
	objects *envobject.Client
	core    kubernetes.Interface
}

func (c *cli) session(cmd *cobra.Command) (*session, error) {
	cfg, err := c.optionalConfig(cmd)
	if err != nil {
		return nil, err
	}
	rc, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	core, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &session{cfg: cfg, rest: rc, objects: envobject.NewClient(dyn, c.agentNamespace(cfg)), core: core}, nil
}

// checkEnv refuses an environment the configuration does not know, when
// there is a configuration.
func (s *session) checkEnv(name string) error {
	if name == "" {
		return usageError("--env is required")
	}
	if s.cfg == nil {
		return nil
	}
	_, err := environment(s.cfg, name)
	return err
}

// whoAmI is the kubeconfig's identity as the API server sees it (a
// SelfSubjectReview), so that what is recorded is who was authenticated,
// not what a client claims. Should the review be refused, $BATON_USER or
// $USER is used, marked unverified.
func (s *session) whoAmI(ctx context.Context) string {
	r, err := s.core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err == nil && r.Status.UserInfo.Username != "" {
		return r.Status.UserInfo.Username
	}
	who := os.Getenv("BATON_USER")
	if who == "" {
		who = os.Getenv("USER")
	}
	if who == "" {
		who = "unknown"
	}
	return who + " (unverified)"
}

// record writes an Event on the environment's object saying who asked for
// what; failing to is a warning, not a failure of the request.
func (s *session) record(ctx context.Context, c *cli, e *envobject.Environment, reason, message string) {
	now := metav1.Now()
	host, _ := os.Hostname()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: e.Name + ".", Namespace: e.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: envobject.Kind, APIVersion: envobject.APIVersion,
			Namespace: e.Namespace, Name: e.Name, UID: e.UID},
		Reason: reason, Message: message, Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: envobject.FieldManagerCLI, Host: host},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "baton.dev/cli", ReportingInstance: host,
	}
	if _, err := s.core.CoreV1().Events(e.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		fmt.Fprintf(c.stderr, "warning: record the %s event on environment %s: %v\n", reason, e.Name, err)
	}
}

func (c *cli) suspendCommand() *cobra.Command {
	var envName, reason string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "suspend --env NAME --reason TEXT [--wait DURATION]",
		Short: "stop applying and promoting an environment, within seconds, recording who and why",
		Long: "Sets spec.suspend on the environment's Environment object, with who asked (the\n" +
			"kubeconfig's identity, from a SelfSubjectReview) and why. The agent watches it: from its next\n" +
			"pass, which it starts at once, nothing is applied, drift is not corrected and promotions out\n" +
			"of the environment are frozen; the branch is still polled and reported. No restart.\n" +
			"Waits until the agent has acknowledged (0 to not wait). Undo with baton resume.",
		Example: "baton suspend --env prod --reason \"INC-1234: bad config rolling out\"\n" +
			"baton suspend --env prod --reason \"freeze for the sale\" --context prod-eu",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError(`--reason "why" is required: it is shown wherever the suspension is`)
			}
			return c.setSuspend(cmd, envName, true, reason, wait)
		},
	}
	c.envFlag(cmd, &envName, "environment name (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown wherever the suspension is (required)")
	cmd.Flags().DurationVar(&wait, "wait", defaultWait, "wait this long for the agent to acknowledge (0: do not wait)")
	return cmd
}

func (c *cli) resumeCommand() *cobra.Command {
	var envName, reason string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "resume --env NAME [--reason TEXT] [--wait DURATION]",
		Short: "apply and promote a suspended environment again, syncing at once",
		Long: "Clears spec.suspend on the environment's Environment object and records who resumed it.\n" +
			"The agent syncs the branch head at once. An environment suspended in baton.yaml\n" +
			"(environments[].suspend) stays suspended until the file says otherwise.",
		Example: "baton resume --env prod --reason \"INC-1234 mitigated\"",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.setSuspend(cmd, envName, false, reason, wait)
		},
	}
	c.envFlag(cmd, &envName, "environment name (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the environment's events")
	cmd.Flags().DurationVar(&wait, "wait", defaultWait, "wait this long for the agent to acknowledge (0: do not wait)")
	return cmd
}

func (c *cli) setSuspend(cmd *cobra.Command, envName string, suspend bool, reason string, wait time.Duration) error {
	ctx := cmd.Context()
	s, err := c.session(cmd)
	if err != nil {
		return err
	}
	if err := s.checkEnv(envName); err != nil {
		return err
	}
	who := s.whoAmI(ctx)
	e, err := s.objects.SetSuspend(ctx, envName, suspend, who, reason)
	if err != nil {
		return err
	}
	verb, evReason := "suspended", reasonSuspendRequested
	if !suspend {
		verb, evReason = "resumed", reasonResumeRequested
	}
	msg := verb + " by " + who
	if reason != "" {
		msg += ": " + reason
	}
	s.record(ctx, c, e, evReason, msg)
	if wait > 0 {
		gen := e.Generation
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		e, err = s.objects.Wait(wctx, envName, func(e *envobject.Environment) bool {
			return e.Status.ObservedGeneration >= gen && (e.Status.Suspended != nil) == suspend
		})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%s is %s in its Environment object, but its agent has not acknowledged within %s: is it running? (baton status)", envName, verb, wait)
			}
			return err
		}
		if !suspend && e.Status.Suspended != nil && e.Status.Suspended.Source == "config" {
			fmt.Fprintf(c.stderr, "note: %s stays suspended: baton.yaml suspends it (environments[].suspend)\n", envName)
		}
	}
	line := fmt.Sprintf("%s %s", envName, msg)
	if wait > 0 {
		line += " (acknowledged by " + dash(e.Status.Agent) + ")"
	}
	_, err = fmt.Fprintln(c.stdout, line)
	return err
}

func (c *cli) syncCommand() *cobra.Command {
	var envName string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "sync --env NAME [--wait DURATION]",
		Short: "poll the environment's branch and sync it now",
		Long: "Sets the baton.dev/requestedAt annotation on the environment's Environment object (as\n" +
			"flux reconcile does); the agent polls the branch and syncs at once, and acknowledges the\n" +
			"request in status.lastHandledRequestedAt. Waits for that sync to finish and prints its\n" +
			"outcome (0 to not wait); exits 1 when it failed.",
		Example: "baton sync --env staging\nbaton sync --env prod --wait 5m",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := c.session(cmd)
			if err != nil {
				return err
			}
			if err := s.checkEnv(envName); err != nil {
				return err
			}
			who := s.whoAmI(ctx)
			at := time.Now().UTC().Format(time.RFC3339Nano)
			e, err := s.objects.RequestSync(ctx, envName, at, who)
			if err != nil {
				return err
			}
			s.record(ctx, c, e, reasonSyncRequested, "sync requested by "+who)
			if wait <= 0 {
				_, err = fmt.Fprintf(c.stdout, "%s: sync requested by %s\n", envName, who)
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			e, err = s.objects.Wait(wctx, envName, func(e *envobject.Environment) bool {
				// The agent acknowledges once the pass after its poll finished.
				return e.Status.LastHandledRequestedAt == at && e.Status.LastSync != nil
			})
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("sync of %s requested, but its agent has not synced within %s: is it running? (baton status)", envName, wait)
				}
				return err
			}
			l := e.Status.LastSync
			line := fmt.Sprintf("%s: synced %s: %s", envName, githash.Short(l.Revision), l.Result)
			if l.Result == "failure" {
				fmt.Fprintln(c.stdout, line)
				return fmt.Errorf("sync of %s failed: %s", envName, l.Error)
			}
			_, err = fmt.Fprintln(c.stdout, line)
			return err
		},
	}
	c.envFlag(cmd, &envName, "environment name (required)")
	cmd.Flags().DurationVar(&wait, "wait", defaultWait, "wait this long for the sync to finish (0: do not wait)")
	return cmd
}
