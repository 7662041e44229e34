package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// validateCleartext refuses http:// URLs that would carry credentials in
// clear text (git, the forge, Prometheus) unless the entry says
// allowInsecureHTTP. A loopback host is accepted: that traffic never
// reaches a network (a sidecar, a port-forward, the tests' local servers).
func validateCleartext(c *Config, p *problems) {
	for i, r := range c.Repositories {
		cred := ""
		switch {
		case r.Auth.TokenFile != "":
			cred = "auth.tokenFile"
		case r.Auth.PasswordFile != "":
			cred = "auth.passwordFile"
		}
		checkCleartext(p, fmt.Sprintf("repositories[%d]", i), r.URL, cred, r.AllowInsecureHTTP)
	}
	if c.Forge.Kind != ForgeNone {
		checkCleartext(p, "forge", c.Forge.URL, "tokenFile", c.Forge.AllowInsecureHTTP)
	}
	for i := range c.Pipelines {
		pl := &c.Pipelines[i]
		if pl.Forge != nil {
			if f := c.ForgeOf(pl); f.Kind != ForgeNone {
				checkCleartext(p, pl.Path()+".forge", f.URL, "tokenFile", f.AllowInsecureHTTP)
			}
		}
		if pr := pl.Prometheus; pr.BearerTokenFile != "" {
			checkCleartext(p, pl.Path()+".prometheus", pr.URL, "bearerTokenFile", pr.AllowInsecureHTTP)
		}
	}
}

func checkCleartext(p *problems, at, raw, cred string, allowed bool) {
	if cred == "" || allowed || !strings.HasPrefix(strings.ToLower(raw), "http://") {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || isLoopback(u.Hostname()) {
		return // an unparsable URL is reported by its own check
	}
	p.add(at+".url", "%q would send %s in clear text: use https://, or set %s.allowInsecureHTTP: true to accept that", raw, cred, at)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
