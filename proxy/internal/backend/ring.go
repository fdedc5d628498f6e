package backend

import (
	"net/netip"
	"slices"
	"strconv"
)

// ringPoints is how many points each server has on the consistent-hash ring:
// enough that N servers share the ring within a few percent of 1/N each.
const ringPoints = 160

// point is one place of a server on the ring.
type point struct {
	hash uint64
	b    *Backend
}

// buildRing places every server of all on the ring by its id (not its
// address): the id is the same on every proxy replica, so every replica sends
// a client to the same server.
func buildRing(all []*Backend) []point {
	if len(all) == 0 {
		return nil
	}
	ring := make([]point, 0, len(all)*ringPoints)
	var buf []byte
	for _, b := range all {
		for i := range ringPoints {
			buf = append(append(buf[:0], b.id...), '#')
			buf = strconv.AppendInt(buf, int64(i), 10)
			ring = append(ring, point{mix(fnv1a(buf)), b})
		}
	}
	slices.SortFunc(ring, func(x, y point) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return 0
	})
	return ring
}

// onRing returns the first server at or after h on the ring (wrapping) that ok
// accepts: the client's server while it is available, else the next one, so
// only the clients of a server that went away move.
func (s *snapshot) onRing(h uint64, ok func(*Backend) bool) (*Backend, bool) {
	ring := s.ring
	if len(ring) == 0 {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(ring, h, func(p point, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	for k := range ring {
		if b := ring[(i+k)%len(ring)].b; ok(b) {
			return b, true
		}
	}
	return nil, false
}

// clientHash hashes a client address (IPv4 as itself, not as IPv4-mapped IPv6).
func clientHash(a netip.Addr) uint64 {
	a = a.Unmap()
	b := a.As16()
	h := fnv1a(b[:])
	if a.Is4() {
		h ^= 4
	}
	return mix(h)
}

// fnv1a is the 64-bit FNV-1a hash of b, as hash/fnv's New64a, without its
// allocation: PickFor hashes every client with it.
func fnv1a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// mix is splitmix64's finaliser: FNV's low bits are poor, the ring wants
// every bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
