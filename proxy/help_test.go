package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestHelpNamesEveryBalanceAndCookieMode: -h lists what the file accepts, not
// a part of it: every balance ParseBalance takes, every cookie mode, and
// trusted_proxies.
func TestHelpNamesEveryBalanceAndCookieMode(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"roundrobin", "static-rr", "leastconn", "source", "prefix", "insert", "rewrite", "indirect", "maxidle", "trusted_proxies"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
}
