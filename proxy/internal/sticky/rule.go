package sticky

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/cli"
)

// Mode is how the server id travels in the cookie (HAProxy's `cookie` modes).
type Mode uint8

// The modes. The zero value is ModePrefix, the tutorial's.
const (
	// ModePrefix puts "<id>~" in front of the value of the backend's own cookie.
	ModePrefix Mode = iota
	// ModeInsert adds a cookie of the proxy's own, NAME=<id>, to the answers of
	// visitors who do not have a valid one yet.
	ModeInsert
	// ModeRewrite replaces the value of the backend's own cookie with the id.
	ModeRewrite
)

func (m Mode) String() string {
	switch m {
	case ModeInsert:
		return "insert"
	case ModeRewrite:
		return "rewrite"
	}
	return "prefix"
}

// Rule is a parsed `cookie` setting: HAProxy's
//
//	cookie NAME prefix|insert|rewrite [indirect] [nocache] [postonly] [preserve]
//	       [httponly] [secure] [domain D]* [maxidle T] [maxlife T] [dynamic] [attr A]*
//
// The zero value (no Name) means not sticky.
type Rule struct {
	Name string
	Mode Mode
	// Indirect: in insert mode the backend never sees the cookie (it is taken
	// off every request), and in insert and prefix modes a backend's own
	// Set-Cookie NAME is dropped from the answer to a visitor whose cookie
	// already named the server that answered.
	Indirect bool
	// NoCache: an answer carrying a server id gets "Cache-Control: private".
	NoCache bool
	// PostOnly: insert only in answers to POST requests.
	PostOnly bool
	// Preserve: a backend's own Set-Cookie NAME is passed untouched, and then
	// nothing is inserted (a backend may end persistence, e.g. at logout).
	Preserve bool
	// HTTPOnly, Secure, Domains and Attrs are attributes of the inserted cookie.
	HTTPOnly, Secure bool
	Domains          []string
	Attrs            []string
	// MaxIdle and MaxLife (insert mode, 0: none) put dates in the inserted
	// value, "id|last[|first]", and make a cookie older than that count as absent.
	MaxIdle, MaxLife time.Duration
}

// On reports whether the rule makes anything sticky.
func (r *Rule) On() bool { return r.Name != "" }

// ParseRule reads a `cookie` setting. Combinations HAProxy refuses are refused
// with its reasons; so are options that only act in insert mode when given in
// another mode (HAProxy accepts and ignores them, which hides a mistake), and a
// missing mode (HAProxy's passive mode needs servers that set the proxy's ids
// themselves, which ours are not meant to know).
func ParseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Rule{}, errors.New(`empty; write e.g. "connect.sid prefix nocache" or "SRV insert indirect nocache", or leave cookie out`)
	}
	r := Rule{Name: f[0]}
	if err := cli.CheckCookieName(r.Name); err != nil {
		return Rule{}, err
	}
	var modes []string
	var insertOnly []string
	arg := func(i int, what string) (string, error) {
		if i+1 >= len(f) {
			return "", fmt.Errorf("%s expects %s after it", f[i], what)
		}
		return f[i+1], nil
	}
	for i := 1; i < len(f); i++ {
		w := strings.ToLower(f[i])
		switch w {
		case "prefix":
			r.Mode = ModePrefix
			modes = append(modes, w)
		case "insert":
			r.Mode = ModeInsert
			modes = append(modes, w)
		case "rewrite":
			r.Mode = ModeRewrite
			modes = append(modes, w)
		case "indirect":
			r.Indirect = true
		case "nocache":
			r.NoCache = true
		case "postonly":
			r.PostOnly = true
			insertOnly = append(insertOnly, w)
		case "preserve":
			r.Preserve = true
		case "httponly":
			r.HTTPOnly = true
			insertOnly = append(insertOnly, w)
		case "secure":
			r.Secure = true
			insertOnly = append(insertOnly, w)
		case "dynamic":
			// Our ids are always derived from a key (SERVER_ID_KEY plays
			// dynamic-cookie-key's part): nothing more to do.
		case "domain":
			d, err := arg(i, "a domain name")
			if err != nil {
				return Rule{}, err
			}
			if k := strings.IndexFunc(d, func(c rune) bool {
				return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_')
			}); k >= 0 {
				return Rule{}, fmt.Errorf("character %q is not permitted in domain name %q", d[k], d)
			}
			r.Domains = append(r.Domains, d)
			insertOnly = append(insertOnly, w)
			i++
		case "attr":
			a, err := arg(i, "an attribute such as SameSite=Lax")
			if err != nil {
				return Rule{}, err
			}
			if k := strings.IndexFunc(a, func(c rune) bool { return c < ' ' || c == 0x7f || c == ';' }); k >= 0 {
				return Rule{}, fmt.Errorf("character %q is not permitted in attribute value %q", a[k], a)
			}
			r.Attrs = append(r.Attrs, a)
			insertOnly = append(insertOnly, w)
			i++
		case "maxidle", "maxlife":
			v, err := arg(i, "a time such as 30m or 3600 (seconds)")
			if err != nil {
				return Rule{}, err
			}
			d, err := parseSeconds(v)
			if err != nil {
				return Rule{}, fmt.Errorf("%s %q: %v", w, v, err)
			}
			if w == "maxidle" {
				r.MaxIdle = d
			} else {
				r.MaxLife = d
			}
			insertOnly = append(insertOnly, w)
			i++
		default:
			return Rule{}, fmt.Errorf("%q is not a cookie option; HAProxy's are prefix, insert, rewrite, indirect, nocache, postonly, preserve, httponly, secure, domain D, maxidle T, maxlife T, dynamic and attr A", f[i])
		}
	}
	switch {
	case len(modes) == 0:
		return Rule{}, fmt.Errorf("no mode; write %q (the backend's own cookie carries the id), %q (the proxy adds its own cookie) or %q", r.Name+" prefix nocache", r.Name+" insert indirect nocache", r.Name+" rewrite")
	case len(modes) > 1 && !allSame(modes):
		return Rule{}, errors.New("cookie 'rewrite', 'insert' and 'prefix' modes are incompatible (as in HAProxy); choose one")
	case r.Mode == ModeRewrite && r.Indirect:
		return Rule{}, errors.New("cookie 'rewrite' and 'indirect' modes are incompatible (as in HAProxy); drop indirect")
	case r.Preserve && r.Mode != ModeInsert && !r.Indirect:
		return Rule{}, errors.New("cookie 'preserve' requires at least 'insert' or 'indirect' (as in HAProxy)")
	case r.Mode != ModeInsert && len(insertOnly) > 0:
		return Rule{}, fmt.Errorf("%s only acts on a cookie the proxy inserts; use insert mode or drop it", strings.Join(insertOnly, ", "))
	}
	return r, nil
}

func allSame(s []string) bool {
	for _, v := range s {
		if v != s[0] {
			return false
		}
	}
	return true
}

// parseSeconds reads HAProxy's time with seconds as the default unit: "3600",
// "30m", "8h", "1d", "500ms" (rounded up to a second, as HAProxy's minimum).
func parseSeconds(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		d      time.Duration
	}{{"ms", time.Millisecond}, {"us", time.Microsecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	unit, num := time.Second, s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			unit, num = u.d, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 31)
	if err != nil {
		return 0, errors.New("not a time; write e.g. 30m, 8h or 3600 (seconds)")
	}
	d := time.Duration(n) * unit
	if d <= 0 {
		return 0, errors.New("must be at least 1s")
	}
	if d < time.Second {
		d = time.Second
	}
	if d > (1<<31-1)*time.Second {
		return 0, errors.New("is more than 2147483647 s")
	}
	return d.Round(time.Second), nil
}

// String gives the rule back in HAProxy's words, options in a fixed order.
func (r Rule) String() string {
	if r.Name == "" {
		return ""
	}
	w := []string{r.Name, r.Mode.String()}
	add := func(on bool, s string) {
		if on {
			w = append(w, s)
		}
	}
	add(r.Indirect, "indirect")
	add(r.NoCache, "nocache")
	add(r.PostOnly, "postonly")
	add(r.Preserve, "preserve")
	add(r.HTTPOnly, "httponly")
	add(r.Secure, "secure")
	for _, d := range r.Domains {
		w = append(w, "domain", d)
	}
	if r.MaxIdle > 0 {
		w = append(w, "maxidle", strconv.FormatInt(int64(r.MaxIdle/time.Second), 10)+"s")
	}
	if r.MaxLife > 0 {
		w = append(w, "maxlife", strconv.FormatInt(int64(r.MaxLife/time.Second), 10)+"s")
	}
	for _, a := range r.Attrs {
		w = append(w, "attr", a)
	}
	return strings.Join(w, " ")
}
