// Package metrics is Baton's one Prometheus registry and the recorders the
// other packages call through their own small interfaces: agent.Recorder
// (syncs, health, promotions, leadership) and source.Metrics (git
// operations). New builds both on a fresh registry that also holds the Go
// runtime and process collectors; the agent serves that registry at
// /metrics.
//
// Every metric is named baton_*. Per-environment metrics carry an
// environment label, and baton_environment_info names each environment's
// pipeline; promotion metrics carry pipeline, from and to. Label values come
// from closed sets (results, stages, actions, statuses, causes, error
// kinds) or from the configuration (environment names, repository URLs),
// never from free text, so the number of series stays bounded. A value
// outside its set is recorded as "other". The revision appears only on
// baton_synced_revision_info, one series per environment: the old series is
// deleted when the revision changes.
//
// Sync (per environment):
//
//	baton_sync_total{environment,result}            counter  passes by result: success, failure, suspended
//	baton_sync_failures_total{environment,stage}    counter  failed passes by stage: source, render, apply
//	baton_sync_duration_seconds{environment}        histogram whole pass
//	baton_sync_consecutive_failures{environment}    gauge    failed passes since the last success
//	baton_sync_interval_seconds{environment}        gauge    the poll interval (alerts compare against it)
//	baton_last_sync_timestamp_seconds{environment}  gauge    end of the last successful pass
//	baton_synced_revision_info{environment,branch,revision} gauge 1 for the revision in the cluster
//	baton_apply_objects_total{environment,action}   counter  objects by action: created, configured, unchanged, deleted, recreated, skipped, drifted, failed
//	baton_apply_duration_seconds{environment}       histogram apply, prune and inventory
//	baton_managed_objects{environment}              gauge    objects rendered by the last successful pass
//	baton_drifted_objects{environment,mode}         gauge    drift found by the last successful pass; mode correct or detect-only
//	baton_pruned_objects_total{environment}         counter  objects deleted because they left git
//	baton_suspended{environment}                    gauge    1 while the environment is suspended
//	baton_render_duration_seconds{environment}      histogram Kustomize render
//	baton_render_errors_total{environment}          counter  failed renders
//	baton_environment_info{environment,pipeline}    gauge    1, naming the environment's pipeline (join on environment)
//	baton_sync_refused_total{environment,rule}      counter  revisions refused before anything was applied, by rule or limit: namespace, cluster-kind, protected, ownership, file-size, objects, aliases, memory, time
//
// Git (per repository URL, without credentials):
//
//	baton_git_fetch_duration_seconds{repository,operation} histogram ls-remote and fetch
//	baton_git_push_duration_seconds{repository}     histogram pushes (promotion commits)
//	baton_git_errors_total{repository,operation,kind} counter failed operations by kind: auth, host_key, unreachable, branch_missing, signature, timeout, lease_lost, too_large, other
//
// Health (per environment):
//
//	baton_health_status{environment,status}         gauge    1 for the current status (healthy, progressing, degraded, unknown), 0 for the others
//	baton_health_failures_total{environment,cause}  counter  transitions to degraded by cause (health.Causes): crashloop, oomkilled, imagepull, configerror, volume, probe, unschedulable, evicted, quota, forbidden, deadline, jobfailed, timeout; unknown when none was found
//	baton_health_wait_duration_seconds{environment} histogram sync to verdict
//
// Promotion (per pipeline edge; pipeline names the application or team):
//
//	baton_promotions_total{pipeline,from,to,result}     counter  changes of outcome: pushed, pull-request, up-to-date, blocked, held, frozen, failure; reverted (revertOnUnhealthy)
//	baton_promotion_pending{pipeline,from,to}           gauge    1 while a revision waits (gate, pull request, retry)
//	baton_promotion_frozen{pipeline,from,to}            gauge    1 while the source is unhealthy or suspended
//	baton_promotion_held{pipeline,from,to}              gauge    1 while a reverted revision is held back
//	baton_promotion_lead_time_seconds{pipeline,from,to} histogram source commit time to target synced and healthy
//
// DORA (per environment):
//
//	baton_deployments_total{environment}            counter  successful syncs of a new revision
//	baton_change_lead_time_seconds{environment}     histogram commit time to healthy in the environment
//	baton_change_failures_total{environment}        counter  new revisions that degraded, and reverts
//	baton_time_to_restore_seconds{environment}      histogram degraded to healthy again
//
// Agent:
//
//	baton_leader                                    gauge    1 while this replica syncs at least one environment
//
// When a replica stops leading it deletes its per-environment and
// per-edge gauges: they described work it no longer does, and a standby's
// stale "last sync" would otherwise look like a stuck environment.
// Counters and histograms stay; sums across replicas remain right.
//
// DORA counting needs a known previous revision: for the first revision
// an agent syncs after it starts (or takes over) it is the revision the
// environment's inventory recorded (SyncRecord.PreviousRevision, kept in the
// cluster), so a restart neither inflates deployment frequency (the same
// revision again) nor misses a revision merged while no agent ran.
// Promotion lead time is observed only when the same agent syncs both ends
// of the edge.
package metrics
