// Command gencert writes a self-signed certificate and its key into one PEM file (the
// combined form the proxy's TLS_CERT_FILES and HAProxy's crt take), with Go's standard
// library alone: a fresh machine has no openssl. `make stack-deploy TLS=1` runs it:
//
//	go run ./internal/cmd/gencert -out stack/secrets/tls.pem -names localhost,127.0.0.1
//
// An existing file that is still valid for a day and covers the names is kept, so a
// browser told once to trust it need not be told again; -force writes a new one. A
// certificate a CA issued (a real one its owner put there) is always kept.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/certgen"
	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

func main() { cli.Main("gencert", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var out, names string
	var days int
	var force bool
	cmd := &cli.Command{
		Name:  "gencert",
		Intro: "Writes a self-signed certificate and its key (ECDSA P-256) into one PEM file, mode 0600.",
		Settings: []cli.Setting{
			{Flag: "out", Usage: "the PEM file to write (required)", Set: cli.String(&out)},
			{Flag: "names", Default: "localhost,127.0.0.1", Usage: "DNS names and IP addresses it is for, comma-separated; the first is its common name",
				Set: cli.String(&names)},
			{Flag: "days", Default: "90", Usage: "days it is valid", Set: cli.Int(&days, 1, 3650)},
			{Flag: "force", Default: "false", Bool: true, Usage: "write a new one even if the file holds a valid one", Set: cli.Bool(&force)},
		},
	}
	if err := cmd.Parse(args, getenv, stdout); err != nil {
		return err
	}
	if out == "" {
		return cli.Usage(fmt.Errorf("-out is missing; e.g. gencert -out stack/secrets/tls.pem"))
	}
	var list []string
	for n := range strings.SplitSeq(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			list = append(list, n)
		}
	}
	if len(list) == 0 {
		return cli.Usage(fmt.Errorf("-names is empty; e.g. -names localhost,127.0.0.1"))
	}
	c, wrote, err := certgen.Ensure(out, certgen.Options{Validity: time.Duration(days) * 24 * time.Hour, Renew: force}, list...)
	if fe, ok := errors.AsType[*certgen.ForeignError](err); ok && fe.Issued {
		// A real certificate its owner put there: used as it is, never replaced.
		fmt.Fprintf(stdout, "kept %s: it holds %s, not a self-signed one\n", out, fe.Why)
		return nil
	}
	if err != nil {
		return err
	}
	if !wrote {
		fmt.Fprintf(stdout, "kept %s: valid for %s\n", out, strings.Join(list, ", "))
		return nil
	}
	fmt.Fprintf(stdout, "generated %s: self-signed for %s, valid until %s\n", out, strings.Join(list, ", "), c.Leaf.NotAfter.UTC().Format("2006-01-02"))
	return nil
}
