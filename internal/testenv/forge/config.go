package forge

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// settings are the values an app.ini is written from.
type settings struct {
	workDir   string // WORK_PATH: data, repositories, the SQLite file
	staticDir string // the cache folder holding options/, templates/, public/
	port      int
}

func (s settings) rootURL() string { return fmt.Sprintf("http://127.0.0.1:%d/", s.port) }

// appINI renders a headless Gitea configuration: loopback only, SQLite,
// no mail, no SSH, no actions, nothing fetched from the internet. Secrets
// are random per instance; INSTALL_LOCK skips the web installer.
func appINI(s settings) (string, error) {
	secret, err := randomHex(32)
	if err != nil {
		return "", err
	}
	internal, err := randomHex(48)
	if err != nil {
		return "", err
	}
	jwt, err := randomHex(32)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	section := func(name string, kv ...string) {
		if name != "" {
			fmt.Fprintf(&b, "\n[%s]\n", name)
		}
		for i := 0; i < len(kv); i += 2 {
			fmt.Fprintf(&b, "%s = %s\n", kv[i], kv[i+1])
		}
	}
	section("",
		"APP_NAME", "baton-test-forge",
		"RUN_MODE", "prod",
		"WORK_PATH", s.workDir,
	)
	section("server",
		"PROTOCOL", "http",
		"HTTP_ADDR", "127.0.0.1",
		"HTTP_PORT", fmt.Sprint(s.port),
		"DOMAIN", "127.0.0.1",
		"ROOT_URL", s.rootURL(),
		// Git hooks call back into the server through this URL.
		"LOCAL_ROOT_URL", s.rootURL(),
		"DISABLE_SSH", "true",
		"START_SSH_SERVER", "false",
		"OFFLINE_MODE", "true",
		"LFS_START_SERVER", "false",
		"STATIC_ROOT_PATH", s.staticDir,
		"APP_DATA_PATH", filepath.Join(s.workDir, "data"),
	)
	section("database",
		"DB_TYPE", "sqlite3",
		"PATH", filepath.Join(s.workDir, "data", "gitea.db"),
		"SQLITE_JOURNAL_MODE", "WAL",
	)
	section("repository", "ROOT", filepath.Join(s.workDir, "repositories"))
	section("security",
		"INSTALL_LOCK", "true",
		"SECRET_KEY", secret,
		"INTERNAL_TOKEN", internal,
		"PASSWORD_HASH_ALGO", "pbkdf2_hi", // cheaper than argon2 for throwaway users
		"MIN_PASSWORD_LENGTH", "8",
		"PASSWORD_COMPLEXITY", "off",
	)
	section("oauth2", "ENABLED", "false", "JWT_SECRET", jwt)
	section("service",
		"DISABLE_REGISTRATION", "true",
		"REQUIRE_SIGNIN_VIEW", "false",
		"ENABLE_NOTIFY_MAIL", "false",
		"DEFAULT_KEEP_EMAIL_PRIVATE", "false",
	)
	// So that webhooks can reach a receiver a test runs on 127.0.0.1.
	section("webhook", "ALLOWED_HOST_LIST", "loopback", "DELIVER_TIMEOUT", "10")
	section("session", "PROVIDER", "memory")
	section("cache", "ADAPTER", "memory")
	section("mailer", "ENABLED", "false")
	section("actions", "ENABLED", "false")
	section("indexer", "ISSUE_INDEXER_TYPE", "db", "REPO_INDEXER_ENABLED", "false")
	section("cron", "ENABLED", "false")
	section("cron.update_checker", "ENABLED", "false")
	section("log",
		"MODE", "console",
		"LEVEL", "info",
		"ROOT_PATH", filepath.Join(s.workDir, "log"),
	)
	section("migrations", "ALLOWED_DOMAINS", "", "ALLOW_LOCALNETWORKS", "false")
	return b.String(), nil
}

func randomHex(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

// writeAppINI writes the configuration into dir/custom/conf/app.ini, the
// place Gitea looks by default relative to its custom path.
func writeAppINI(path string, s settings) error {
	text, err := appINI(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
