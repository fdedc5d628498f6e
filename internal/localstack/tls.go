package localstack

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/swarm-affinity/swarm-affinity/internal/certgen"
)

// selfSigned writes a self-signed certificate for localhost, 127.0.0.1 and host to
// path, unless the file holds one valid for them for another day: a browser told to
// trust it once keeps trusting it across runs of `make run TLS=1`.
func selfSigned(path, host string) error {
	names := []string{"localhost", "127.0.0.1"}
	if host != "127.0.0.1" && host != "localhost" && host != "" {
		names = append(names, host)
	}
	if certgen.Valid(path, names...) {
		return nil
	}
	c, err := certgen.SelfSigned(certgen.Options{}, names...)
	if err != nil {
		return fmt.Errorf("making a self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return certgen.WriteFile(path, c.PEM())
}
