package localstack

import "github.com/swarm-affinity/swarm-affinity/internal/certgen"

// selfSigned writes a self-signed certificate for localhost, 127.0.0.1 and host to
// path, unless the file holds one valid for them for another day: a browser told to
// trust it once keeps trusting it across runs of `make run TLS=1`.
func selfSigned(path, host string) error {
	names := []string{"localhost", "127.0.0.1"}
	if host != "127.0.0.1" && host != "localhost" && host != "" {
		names = append(names, host)
	}
	_, _, err := certgen.Ensure(path, certgen.Options{}, names...)
	return err
}
