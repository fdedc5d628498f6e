package swarm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/config"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
)

// dockercloud/haproxy passed some of its settings to HAProxy as they were written:
// HEALTH_CHECK holds server options ("check inter 2000 rise 2 fall 3"), HTTP_CHECK the
// arguments of `option httpchk`, TIMEOUT `timeout` lines and OPTION `option` names.
// The functions here read what of them the proxy does, and name what it does not.

// parseHealthCheck reads HEALTH_CHECK's server options into a check configuration.
// Each word it does not do is one problem (a sentence fragment naming it).
func parseHealthCheck(v string) (c health.Config, problems []string) {
	words := strings.Fields(v)
	checks := false
	for i := 0; i < len(words); i++ {
		w := strings.ToLower(words[i])
		switch w {
		case "check":
			checks = true
			continue
		case "inter", "rise", "fall":
		default:
			problems = append(problems, fmt.Sprintf("%q is not supported (only check, inter, rise and fall are)", words[i]))
			continue
		}
		if i+1 == len(words) {
			problems = append(problems, fmt.Sprintf("%s needs a value", w))
			break
		}
		i++
		arg := words[i]
		if w == "inter" {
			d, err := config.ParseDuration(arg)
			if err != nil || d <= 0 {
				problems = append(problems, fmt.Sprintf("inter %q is not a duration (write 2000 or 2s)", arg))
				continue
			}
			c.Interval = d
			// HAProxy times a check out after inter when no `timeout check` is set.
			if d < 2*time.Second {
				c.Timeout = d
			}
			continue
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 || n > 100 {
			problems = append(problems, fmt.Sprintf("%s %q is not a whole number from 1 to 100", w, arg))
			continue
		}
		if w == "rise" {
			c.Rise = n
		} else {
			c.Fall = n
		}
	}
	if !checks && len(words) > 0 {
		problems = append(problems, `has no "check": HAProxy would not check the servers; this proxy checks them all the same`)
	}
	return c, problems
}

// parseHTTPCheck reads HTTP_CHECK, the arguments of HAProxy's `option httpchk`
// ("[<method>] <uri> [<version>]"), into the path of a GET check ("" for none).
func parseHTTPCheck(v string) (path string, problems []string) {
	f := strings.Fields(v)
	method, uri := "OPTIONS", "/"
	switch len(f) {
	case 0:
		return "", nil
	case 1:
		uri = f[0]
	default:
		method, uri = strings.ToUpper(f[0]), f[1]
	}
	if len(f) > 2 {
		problems = append(problems, fmt.Sprintf("%q after the path is not sent (the check is a plain GET)", strings.Join(f[2:], " ")))
	}
	if !strings.HasPrefix(uri, "/") {
		problems = append(problems, fmt.Sprintf("%q is not a path: the check stays a TCP connect; write e.g. \"GET /healthz\"", uri))
		return "", problems
	}
	if method != "GET" {
		problems = append(problems, fmt.Sprintf("the check is a GET, not %s", method))
	}
	return uri, problems
}

// parseTimeout reads TIMEOUT ("connect 5000, client 50000, server 50000") into t.
func parseTimeout(v string, t *config.Timeouts) (problems []string) {
	for entry := range strings.SplitSeq(v, ",") {
		f := strings.Fields(entry)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			problems = append(problems, fmt.Sprintf("%q: write NAME VALUE, e.g. \"connect 5000\"", strings.TrimSpace(entry)))
			continue
		}
		var dst *time.Duration
		switch strings.ToLower(f[0]) {
		case "connect":
			dst = &t.Connect
		case "client":
			dst = &t.Client
		case "server":
			dst = &t.Server
		case "http-request":
			dst = &t.HTTPRequest
		case "tunnel":
			dst = &t.Tunnel
		case "http-keep-alive":
			dst = &t.Client // HAProxy's idle keep-alive timeout: ours is timeout.client
		default:
			problems = append(problems, fmt.Sprintf("%q is not supported (only connect, client, server, http-request, http-keep-alive and tunnel are)", f[0]))
			continue
		}
		d, err := config.ParseDuration(f[1])
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("%s %q is not a duration (write 5000 or 5s)", f[0], f[1]))
			continue
		}
		*dst = d
	}
	return problems
}

// parseOption reads OPTION, a list of HAProxy `option` names. The proxy always does
// what dockercloud's default list asked for (redispatch, httplog, dontlognull,
// forwardfor); each other name is a problem.
func parseOption(v string) (problems []string) {
	for o := range strings.SplitSeq(v, ",") {
		switch o = strings.TrimSpace(o); strings.ToLower(o) {
		case "", "redispatch", "httplog", "dontlognull", "forwardfor", "http-keep-alive":
		default:
			problems = append(problems, fmt.Sprintf("%q is not supported", o))
		}
	}
	return problems
}
