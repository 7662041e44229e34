package promote_test

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv/forge"
)

// gitea is a real Gitea for the package: promotion branches are pushed to
// it with real git over HTTP, and pull requests opened, commented on and
// merged through its REST API.
var gitea *forge.Forge

func TestMain(m *testing.M) { os.Exit(forge.Main(m, &gitea)) }
