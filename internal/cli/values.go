package cli

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Set functions below store a parsed value in *dst. Their errors say what to write;
// Parse adds which flag or variable was wrong.

// String stores any value.
func String(dst *string) func(string) error {
	return func(v string) error { *dst = v; return nil }
}

// Int stores a whole number from lo to hi (math.MaxInt: no upper bound).
func Int(dst *int, lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return errors.New("not a whole number")
		}
		switch {
		case n < lo && hi == math.MaxInt:
			return fmt.Errorf("want a whole number >= %d", lo)
		case n < lo || n > hi:
			return fmt.Errorf("choose %d to %d", lo, hi)
		}
		*dst = n
		return nil
	}
}

// Bool stores true or false (1, 0, t, f... as strconv.ParseBool).
func Bool(dst *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*dst = b
		return nil
	}
}

// Duration stores a duration such as 10s or 30m: more than 0, or 0 too when zeroOK.
func Duration(dst *time.Duration, zeroOK bool) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d == 0 && !zeroOK) {
			return errors.New("want a positive duration such as 30s, 10m or 1h")
		}
		*dst = d
		return nil
	}
}

// OneOf stores one of choices.
func OneOf(dst *string, choices ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(choices, v) {
			return fmt.Errorf("choose %s", orList(choices))
		}
		*dst = v
		return nil
	}
}

// Addr stores a listen address, host:port or :port (see CheckAddr).
func Addr(dst *string) func(string) error {
	return func(v string) error {
		if err := CheckAddr(v); err != nil {
			return err
		}
		*dst = v
		return nil
	}
}

// CookieName stores a cookie name (see CheckCookieName).
func CookieName(dst *string) func(string) error {
	return func(v string) error {
		if err := CheckCookieName(v); err != nil {
			return err
		}
		*dst = v
		return nil
	}
}

// CheckAddr accepts a listen address: host:port or :port, the port a number from 0 to
// 65535. Settings and configuration files use it alike.
func CheckAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		if n, e := strconv.Atoi(port); e != nil || n < 0 || n > 65535 {
			err = errors.New("bad port")
		}
	}
	if err != nil {
		return fmt.Errorf(`%q is not an address; write ":80" or "127.0.0.1:8080" (host:port)`, s)
	}
	return nil
}

// CheckCookieName accepts a cookie name: an RFC 7230 token, as net/http and HAProxy
// want it (net/http drops a cookie whose name is not one).
func CheckCookieName(s string) error {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?={}`, rune(c))
	}
	if !ok {
		return fmt.Errorf("%q is not a cookie name; use letters, digits and !#$%%&'*+-.^_`|~", s)
	}
	return nil
}

// orList writes "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
