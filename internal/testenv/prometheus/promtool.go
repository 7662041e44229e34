package prometheus

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Promtool runs the cached promtool with args (building it first if
// needed) and returns its combined output; a non-zero exit is an error
// that includes the output.
func Promtool(ctx context.Context, progress io.Writer, args ...string) (string, error) {
	path, err := PromtoolPath(ctx, progress)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("promtool %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}
