package live

import (
	"net/netip"
	"testing"
)

func TestCookieValue(t *testing.T) {
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{"finds the named cookie among others", "a=1; connect.sid=abc~s%3Ax; b=2", "abc~s%3Ax", true},
		{"takes the first of two", "connect.sid=one; connect.sid=two", "one", true},
		{"trims the blanks around the value", "  connect.sid =  v1 ;x=2", "v1", true},
		{"compares names exactly", "Connect.sid=v; connect.sidx=w", "", false},
		{"skips a cookie without a value sign", "connect.sid; a=1", "", false},
		{"reads an empty value as present", "connect.sid=", "", true},
		{"finds nothing in an empty header", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CookieValue(tt.header, "connect.sid")
			if got != tt.want || ok != tt.ok {
				t.Errorf("string: got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
			gotb, okb := CookieValue([]byte(tt.header), "connect.sid")
			if string(gotb) != tt.want || okb != tt.ok {
				t.Errorf("bytes: got %q %v, want %q %v", gotb, okb, tt.want, tt.ok)
			}
		})
	}
}

func TestSetCookieValue(t *testing.T) {
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{"reads the value before the attributes", "connect.sid=id~s%3Ax; Path=/service1; HttpOnly", "id~s%3Ax", true},
		{"reads a cookie without attributes", "connect.sid=v", "v", true},
		{"ignores another cookie", "other=v; Path=/", "", false},
		{"ignores a deletion (an empty value)", "connect.sid=; Max-Age=0", "", false},
		{"ignores a name in the attributes", "a=1; connect.sid=2", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SetCookieValue(tt.header, "connect.sid")
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHashesAreKeyedAndNeverZero(t *testing.T) {
	if Hash([]byte("abc")) != HashString("abc") {
		t.Error("Hash and HashString differ for the same bytes")
	}
	a := HashAddr(netip.MustParseAddrPort("127.0.0.1:5000"))
	b := HashAddr(netip.MustParseAddrPort("127.0.0.1:5001"))
	c := HashAddr(netip.MustParseAddrPort("[::ffff:127.0.0.1]:5000"))
	if a == b {
		t.Error("two ports of one address hash the same: a visitor is its connection")
	}
	if a != c {
		t.Error("an IPv4 address and its IPv6-mapped form hash differently")
	}
	if nonZero(0) == 0 {
		t.Error("a hash of 0 would mean absent")
	}
}
