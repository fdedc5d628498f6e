// Package route matches requests to services with dockercloud/haproxy's
// VIRTUAL_HOST vocabulary: a comma-separated list of "host/path" entries where
// host is "*" (any host), a name, or "*.domain" (any name below domain), and
// path is exact ("/service1") or ends in "*" for everything that starts with
// what comes before it ("/service1/*"). An entry without a path matches every
// path. Matching ignores case and the query string; the path is never
// rewritten, only matched.
//
// A Table is built once (at start or on reload) and then only read, so Match
// is safe for concurrent use and does not allocate.
package route

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rule is one parsed VIRTUAL_HOST entry.
type Rule struct {
	// Host is "" for any host, a lower-case name, or ".domain" for a
	// "*.domain" wildcard (the leading dot kept so ".a.b" never matches "xa.b").
	Host string
	// Path is the exact path, or the prefix when Prefix is true.
	Path   string
	Prefix bool
}

// String gives the rule back in VIRTUAL_HOST form.
func (r Rule) String() string {
	h := r.Host
	switch {
	case h == "":
		h = "*"
	case h[0] == '.':
		h = "*" + h
	}
	if r.Prefix {
		return h + r.Path + "*"
	}
	return h + r.Path
}

// Parse reads a VIRTUAL_HOST value such as "*/service1, */service1/*".
// Errors say which entry is wrong and what to write instead.
func Parse(spec string) ([]Rule, error) {
	var rules []Rule
	var errs []error
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		r, err := parseEntry(entry)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(rules) == 0 {
		return nil, errors.New(`no entry; write e.g. "*/service1, */service1/*"`)
	}
	return rules, nil
}

func parseEntry(entry string) (Rule, error) {
	e := entry
	if strings.HasPrefix(strings.ToLower(e), "https://") {
		return Rule{}, fmt.Errorf("%q: a route cannot be for HTTPS only (every route is served on listen and listen_tls alike; force_ssl sends http to https); drop the https:// scheme", entry)
	}
	if strings.HasPrefix(strings.ToLower(e), "http://") {
		e = e[len("http://"):]
	}
	host, path := e, ""
	if i := strings.IndexByte(e, '/'); i >= 0 {
		host, path = e[:i], e[i:]
	}
	var r Rule
	switch {
	case host == "" || host == "*":
	case strings.HasPrefix(host, "*."):
		r.Host = strings.ToLower(host[1:])
	default:
		if strings.ContainsAny(host, "*:[] ") {
			return Rule{}, fmt.Errorf("%q: host must be *, a name or *.domain (no port); write e.g. \"*/service1\" or \"example.com/service1\"", entry)
		}
		r.Host = strings.ToLower(host)
	}
	if r.Host != "" && strings.ContainsAny(r.Host[1:], "*:[] ") {
		return Rule{}, fmt.Errorf("%q: only a leading \"*.\" is allowed in a host", entry)
	}
	if path == "" {
		path = "/*"
	}
	if strings.ContainsAny(path, "?# \t") {
		return Rule{}, fmt.Errorf("%q: a path has no query, fragment or blank; the query is ignored when matching", entry)
	}
	if strings.HasSuffix(path, "*") {
		r.Prefix = true
		path = path[:len(path)-1]
	}
	if strings.Contains(path, "*") {
		return Rule{}, fmt.Errorf("%q: '*' is only allowed at the end of a path, e.g. \"*/service1/*\"", entry)
	}
	r.Path = strings.ToLower(path)
	return r, nil
}

// Table maps requests to values of type T (a service, an index...).
// The zero Table matches nothing.
type Table[T any] struct {
	entries []entry[T]
}

type entry[T any] struct {
	Rule
	val    T
	weight int
	order  int
}

// Add registers every rule of spec for v. A rule that is already registered
// is an error: two services cannot own the same host and path.
func (t *Table[T]) Add(spec string, v T) error { return t.AddWeighted(spec, v, 0) }

// AddWeighted is Add with dockercloud's VIRTUAL_HOST_WEIGHT: the rules of a higher
// weight are tried before those of a lower one, whatever their specificity; within
// one weight the most specific rule is tried first.
func (t *Table[T]) AddWeighted(spec string, v T, weight int) error {
	rules, err := Parse(spec)
	if err != nil {
		return err
	}
	for _, r := range rules {
		for _, e := range t.entries {
			if e.Rule == r {
				return fmt.Errorf("%q is already routed to %v", r.String(), e.val)
			}
		}
		t.entries = append(t.entries, entry[T]{Rule: r, val: v, weight: weight, order: len(t.entries)})
	}
	// The most specific rule comes first so that Match can stop at the first
	// hit: a named host before a wildcard domain before any host, then an
	// exact path before prefixes, then the longest prefix. A higher weight
	// comes before all of that.
	slices.SortStableFunc(t.entries, func(a, b entry[T]) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		if c := cmp.Compare(hostRank(a.Host), hostRank(b.Host)); c != 0 {
			return c
		}
		if a.Prefix != b.Prefix {
			if !a.Prefix {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(len(b.Path), len(a.Path)); c != 0 {
			return c
		}
		if c := cmp.Compare(len(b.Host), len(a.Host)); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	return nil
}

func hostRank(h string) int {
	switch {
	case h == "":
		return 2
	case h[0] == '.':
		return 1
	}
	return 0
}

// Each calls fn for every rule and its value, most specific first.
func (t *Table[T]) Each(fn func(Rule, T)) {
	for _, e := range t.entries {
		fn(e.Rule, e.val)
	}
}

// Match returns the value of the most specific rule matching host (the Host
// header, a port is ignored) and path (the URL path, without query).
func (t *Table[T]) Match(host, path string) (T, bool) {
	host = stripPort(host)
	for i := range t.entries {
		e := &t.entries[i]
		if !hostMatch(e.Host, host) {
			continue
		}
		if e.Prefix {
			if len(path) >= len(e.Path) && strings.EqualFold(path[:len(e.Path)], e.Path) {
				return e.val, true
			}
		} else if len(path) == len(e.Path) && strings.EqualFold(path, e.Path) {
			return e.val, true
		}
	}
	var zero T
	return zero, false
}

func hostMatch(rule, host string) bool {
	switch {
	case rule == "":
		return true
	case rule[0] == '.':
		return len(host) > len(rule) && strings.EqualFold(host[len(host)-len(rule):], rule)
	}
	return strings.EqualFold(host, rule)
}

// stripPort drops a ":port" from a Host header value, IPv6 brackets included.
func stripPort(h string) string {
	if h == "" {
		return h
	}
	if h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	// One colon: name:port. More: a bare IPv6 address, left as it is.
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}
