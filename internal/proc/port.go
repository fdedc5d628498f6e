package proc

import (
	"fmt"
	"net"
	"sync"
)

var (
	portsMu  sync.Mutex
	portsOut = map[string]bool{} // addresses FreeAddr already handed out
)

// FreeAddr returns host:port with a port nothing listens on now, for a child to listen
// on. It never hands out the same port twice in this process: the kernel may offer a
// port again as soon as the probe closed it, before the child that got it first has
// bound it. Between this call and the child's bind another program may still take it;
// callers that care start the child again on another port.
func FreeAddr(host string) (string, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("finding a free port on %s: %w", host, err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !portsOut[addr] {
			portsOut[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("finding a free port on %s: the kernel keeps offering used ones", host)
}
