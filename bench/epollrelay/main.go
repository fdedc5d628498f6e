// Command epollrelay is the benchmark's floor for an event-loop proxy: one thread,
// one level-triggered epoll set, non-blocking sockets, no parsing. Each client
// connection is paired with its own backend connection (round robin over the
// backends given as arguments) and whatever one side sends is written to the
// other at once. Run it with GOMAXPROCS=1: the loop is the only thread at work,
// as in HAProxy with nbthread 1 or nginx with one worker. It does not handle a
// short write (the benchmark's messages are small), so it is a floor, not a proxy.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "listen address, host:port")
	flag.Parse()
	var backends []unix.SockaddrInet4
	for _, a := range flag.Args() {
		sa, err := sockaddr(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "epollrelay:", err)
			os.Exit(2)
		}
		backends = append(backends, sa)
	}
	if len(backends) == 0 {
		fmt.Fprintln(os.Stderr, "usage: epollrelay -addr HOST:PORT BACKEND...")
		os.Exit(2)
	}
	err := serve(*addr, backends) // returns only on failure
	fmt.Fprintln(os.Stderr, "epollrelay:", err)
	os.Exit(1)
}

func sockaddr(hostport string) (unix.SockaddrInet4, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return unix.SockaddrInet4{}, err
	}
	ip := net.ParseIP(host).To4()
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return unix.SockaddrInet4{}, fmt.Errorf("%q: want IPv4:port", hostport)
	}
	sa := unix.SockaddrInet4{Port: p}
	copy(sa.Addr[:], ip)
	return sa, nil
}

// serve runs the loop; it returns only an error.
func serve(addr string, backends []unix.SockaddrInet4) error {
	lsa, err := sockaddr(addr)
	if err != nil {
		return err
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(lfd, &lsa); err != nil {
		return fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "epollrelay: listening on", addr)
	peer := map[int]int{} // fd -> the fd it relays to
	buf := make([]byte, 16<<10)
	events := make([]unix.EpollEvent, 256)
	next := 0
	closePair := func(fd int) {
		if p, ok := peer[fd]; ok {
			unix.Close(p)
			delete(peer, p)
		}
		unix.Close(fd)
		delete(peer, fd)
	}
	for {
		n, err := unix.EpollWait(ep, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				for {
					cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
					if err != nil {
						break
					}
					unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					bfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						unix.Close(cfd)
						continue
					}
					// A blocking connect on loopback is immediate; then non-blocking.
					sa := backends[next%len(backends)]
					next++
					if err := unix.Connect(bfd, &sa); err != nil {
						unix.Close(bfd)
						unix.Write(cfd, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
						unix.Close(cfd)
						continue
					}
					unix.SetNonblock(bfd, true)
					unix.SetsockoptInt(bfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					peer[cfd], peer[bfd] = bfd, cfd
					unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, cfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(cfd)})
					unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, bfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(bfd)})
				}
				continue
			}
			p, ok := peer[fd]
			if !ok {
				continue
			}
			r, err := unix.Read(fd, buf)
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || r == 0 {
				closePair(fd)
				continue
			}
			if _, err := unix.Write(p, buf[:r]); err != nil {
				closePair(fd)
			}
		}
	}
}
