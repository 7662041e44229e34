package toolcache

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnsureInLanesRunsLanesSideBySideAndEachInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The first lane waits for the second to start: run one after the
	// other, the lanes would wait until the deadline.
	secondStarted := make(chan struct{})
	var order []string
	err := EnsureInLanes(ctx, io.Discard,
		[]EnsureFunc{
			func(ctx context.Context, _ io.Writer) error {
				select {
				case <-secondStarted:
					order = append(order, "a1")
					return nil
				case <-ctx.Done():
					return errors.New("lanes did not run side by side")
				}
			},
			func(context.Context, io.Writer) error { order = append(order, "a2"); return nil },
		},
		[]EnsureFunc{func(context.Context, io.Writer) error { close(secondStarted); return nil }},
	)
	require.NoError(t, err)
	assert.Equal(t, []string{"a1", "a2"}, order)
}

func TestEnsureInLanesStopsOtherLanesOnError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	boom := errors.New("build kube-apiserver: exit status 1")
	ranAfterFailure := false
	err := EnsureInLanes(ctx, io.Discard,
		[]EnsureFunc{func(context.Context, io.Writer) error { return boom }},
		[]EnsureFunc{
			func(ctx context.Context, _ io.Writer) error { <-ctx.Done(); return ctx.Err() },
			func(context.Context, io.Writer) error { ranAfterFailure = true; return nil },
		},
	)
	require.ErrorIs(t, err, boom)
	assert.False(t, ranAfterFailure, "a lane went on after another lane failed")
}
