package config

import (
	"errors"
	"strconv"
	"strings"

	"github.com/swarm-affinity/swarm-affinity/proxy/internal/backend"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/health"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/route"
	"github.com/swarm-affinity/swarm-affinity/proxy/internal/sticky"
)

// The setters below read one value of a service in dockercloud/haproxy's vocabulary.
// The file's parser calls them for services.NAME's keys and package swarm for a swarm
// service's environment (VIRTUAL_HOST, COOKIE...), so both read the same values the
// same way. On an error the service is left as it was; the error says what to write,
// and the caller adds where the value came from.

// maxWeight bounds virtual_host_weight either way.
const maxWeight = 1000

// SetVirtualHost reads a virtual_host (VIRTUAL_HOST) such as "*/service1, */service1/*".
func (s *Service) SetVirtualHost(spec string) error {
	rules, err := route.Parse(spec)
	if err != nil {
		return err
	}
	s.VirtualHost, s.rules = spec, rules
	return nil
}

// SetVirtualHostWeight reads a virtual_host_weight (VIRTUAL_HOST_WEIGHT), a whole number.
func (s *Service) SetVirtualHostWeight(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < -maxWeight || n > maxWeight {
		return errors.New("write a whole number from -1000 to 1000 (higher weights' rules are tried first; 0 is the default)")
	}
	s.VirtualHostWeight = n
	return nil
}

// SetCookie reads a cookie (COOKIE) such as "connect.sid prefix nocache" or "SRV
// insert indirect nocache": HAProxy's cookie rule in any of its modes.
func (s *Service) SetCookie(spec string) error {
	rule, err := sticky.ParseRule(spec)
	if err != nil {
		return err
	}
	s.Sticky = rule
	return nil
}

// SetBalance reads a balance (BALANCE): roundrobin, leastconn, source or static-rr.
func (s *Service) SetBalance(v string) error {
	b, err := backend.ParseBalance(v)
	if err != nil {
		return err
	}
	s.Balance = b
	return nil
}

// SetHealthCheck reads a health_check path: "" for a TCP connect check, or a path
// such as /healthz for a GET. (dockercloud's HEALTH_CHECK and HTTP_CHECK are HAProxy
// server and option words; package swarm turns them into this and Check.)
func (s *Service) SetHealthCheck(path string) error {
	if path != "" && (!strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t")) {
		return errors.New(strconv.Quote(path) + ": write a path such as /healthz (or leave it out for a TCP check)")
	}
	s.HealthCheck = path
	return nil
}

// HealthConfig is how the service's servers are checked: its own Check where set,
// file's (the check: of the file) elsewhere, and its health_check path.
func (s Service) HealthConfig(file health.Config) health.Config {
	c := s.Check.Over(file)
	c.Path = s.HealthCheck
	return c
}
