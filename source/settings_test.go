package source

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestSettingsFromYAML(t *testing.T) {
	in := `
url: git@github.com:acme/deploy.git
branches: [env/dev, env/staging, env/prod]
auth:
  sshKeyFile: /secrets/git/id_ed25519
  sshPassphraseFile: /secrets/git/passphrase
  knownHostsFile: /secrets/git/known_hosts
interval: 30s
timeout: 2m
signatures:
  keyringFile: /secrets/keys/keyring.asc
  branches: [env/prod]
`
	var s RepositorySettings
	if err := yaml.UnmarshalStrict([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	want := RepositorySettings{
		URL:      "git@github.com:acme/deploy.git",
		Branches: []string{"env/dev", "env/staging", "env/prod"},
		Auth: AuthSettings{SSHKeyFile: "/secrets/git/id_ed25519", SSHPassphraseFile: "/secrets/git/passphrase",
			KnownHostsFile: "/secrets/git/known_hosts"},
		Interval:   Duration{30 * time.Second},
		Timeout:    Duration{2 * time.Minute},
		Signatures: &SignatureSettings{KeyringFile: "/secrets/keys/keyring.asc", Branches: []string{"env/prod"}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if !s.requiresSignature("env/prod") || s.requiresSignature("env/dev") {
		t.Error("signature requirement per branch")
	}
	out, err := yaml.Marshal(s)
	if err != nil || !strings.Contains(string(out), "interval: 30s") || strings.Contains(string(out), "caBundleFile") {
		t.Fatalf("marshal (durations as strings, empty fields omitted): %s %v", out, err)
	}
	if d := s.withDefaults(); d.Auth.Username != DefaultUsername || d.Interval.Duration != 30*time.Second {
		t.Errorf("defaults: %+v", d)
	}
	if d := (RepositorySettings{}).withDefaults(); d.Interval.Duration != DefaultInterval || d.Timeout.Duration != DefaultTimeout {
		t.Errorf("zero defaults: %+v", d)
	}
}

func TestSettingsFieldNames(t *testing.T) {
	in := `{url: "https://example.com/r.git", branches: [main], auth: {username: u, passwordFile: /p},
	  caBundleFile: /ca.pem, insecureSkipHostKeyCheck: false}`
	var s RepositorySettings
	if err := yaml.UnmarshalStrict([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.CABundleFile != "/ca.pem" || s.Auth.PasswordFile != "/p" || s.Auth.Username != "u" {
		t.Fatalf("%+v", s)
	}
	if err := yaml.UnmarshalStrict([]byte(`{url: x, branches: [a], pollInterval: 1s}`), &s); err == nil {
		t.Fatal("unknown field accepted")
	}
	if err := yaml.UnmarshalStrict([]byte(`{url: x, branches: [a], interval: 30}`), &s); err == nil ||
		!strings.Contains(err.Error(), "duration") {
		t.Fatalf("numeric interval: %v", err)
	}
}

func TestSettingsValidation(t *testing.T) {
	ok := RepositorySettings{URL: "https://git.example.com/acme/deploy.git", Branches: []string{"env/dev"}}
	cases := map[string]struct {
		edit func(*RepositorySettings)
		want string // "" means valid
	}{
		"https": {func(s *RepositorySettings) {}, ""},
		"scp-like ssh": {func(s *RepositorySettings) {
			s.URL = "git@h:a/b.git"
			s.Auth = AuthSettings{SSHKeyFile: "k", KnownHostsFile: "kh"}
		}, ""},
		"file":          {func(s *RepositorySettings) { s.URL = "file:///srv/git/app.git" }, ""},
		"no url":        {func(s *RepositorySettings) { s.URL = "" }, "url: required"},
		"password":      {func(s *RepositorySettings) { s.URL = "https://u:hunter2@h/r.git" }, "carries a password"},
		"user in https": {func(s *RepositorySettings) { s.URL = "https://u@h/r.git" }, "auth.username"},
		"git scheme":    {func(s *RepositorySettings) { s.URL = "git://h/r.git" }, "unsupported scheme"},
		"not a url":     {func(s *RepositorySettings) { s.URL = "just-a-name" }, "not a URL"},
		"relative file": {func(s *RepositorySettings) { s.URL = "file://srv/git" }, "host"},
		"no branches":   {func(s *RepositorySettings) { s.Branches = nil }, "branches: at least one"},
		"refs prefix":   {func(s *RepositorySettings) { s.Branches = []string{"refs/heads/main"} }, "without refs/heads/"},
		"bad branch":    {func(s *RepositorySettings) { s.Branches = []string{"a..b"} }, "branches[0]"},
		"twice":         {func(s *RepositorySettings) { s.Branches = []string{"a", "a"} }, "listed twice"},
		"token and pw":  {func(s *RepositorySettings) { s.Auth = AuthSettings{TokenFile: "t", PasswordFile: "p"} }, "not both"},
		"ssh no key": {func(s *RepositorySettings) {
			s.URL = "ssh://git@h/r.git"
			s.Auth = AuthSettings{KnownHostsFile: "kh"}
		}, "auth.sshKeyFile: required"},
		"ssh no known_hosts": {func(s *RepositorySettings) {
			s.URL = "ssh://git@h/r.git"
			s.Auth = AuthSettings{SSHKeyFile: "k"}
		}, "auth.knownHostsFile: required"},
		"ssh insecure": {func(s *RepositorySettings) {
			s.URL = "ssh://git@h/r.git"
			s.Auth = AuthSettings{SSHKeyFile: "k"}
			s.InsecureSkipHostKeyCheck = true
		}, ""},
		"ca for ssh": {func(s *RepositorySettings) {
			s.URL = "ssh://git@h/r.git"
			s.Auth = AuthSettings{SSHKeyFile: "k", KnownHostsFile: "kh"}
			s.CABundleFile = "/ca"
		}, "caBundleFile: applies to https"},
		"negative interval": {func(s *RepositorySettings) { s.Interval = Duration{-time.Second} }, "interval: must not be negative"},
		"keyring missing":   {func(s *RepositorySettings) { s.Signatures = &SignatureSettings{} }, "signatures.keyringFile: required"},
		"unfollowed signed branch": {func(s *RepositorySettings) {
			s.Signatures = &SignatureSettings{KeyringFile: "k", Branches: []string{"env/prod"}}
		}, `signatures.branches[0]: "env/prod" is not a followed branch`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := ok
			s.Branches = append([]string(nil), ok.Branches...)
			tc.edit(&s)
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestNewRepositoryNeedsACacheDir(t *testing.T) {
	_, err := NewRepository(RepositorySettings{URL: "https://h/r.git", Branches: []string{"main"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "CacheDir") {
		t.Fatalf("error %v", err)
	}
}

// TestValidBranch pins the one branch-name rule of followed branches,
// pushes and pipeline environments.
func TestValidBranch(t *testing.T) {
	for b, want := range map[string]string{
		"env/dev": "", "main": "", "release-1.2": "",
		"":                   "is not a valid branch name",
		"refs/heads/env/dev": "without refs/heads/",
		"env..dev":           "is not a valid branch name",
		"env/dev.lock":       "is not a valid branch name",
		"env dev":            "is not a valid branch name",
		"-env":               "is not a valid branch name",
	} {
		err := ValidBranch(b)
		switch {
		case want == "" && err != nil:
			t.Errorf("ValidBranch(%q) = %v, want nil", b, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ValidBranch(%q) = %v, want %q", b, err, want)
		}
	}
}
