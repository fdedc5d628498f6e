package sticky

import (
	"slices"
	"strings"
	"testing"
)

func TestStrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
		want   string
		ids    []string
	}{
		{"a header without the cookie is passed on as it is", "a=1; b=2", "a=1; b=2", nil},
		{"a cookie without an id is passed on as it is", "connect.sid=s%3Aabc.def", "connect.sid=s%3Aabc.def", nil},
		{"the id is taken off the value", "connect.sid=k4x9~s%3Aabc.def", "connect.sid=s%3Aabc.def", []string{"k4x9"}},
		{"other cookies around it pass byte for byte", "a=1;  connect.sid=id1~v ;b=x~y", "a=1;  connect.sid=v ;b=x~y", []string{"id1"}},
		{"only the first ~ separates the id", "connect.sid=id1~a~b~", "connect.sid=a~b~", []string{"id1"}},
		{"an empty id is still taken off", "connect.sid=~v", "connect.sid=v", []string{""}},
		{"an unknown id is taken off too", "connect.sid=zzzz~v", "connect.sid=v", []string{"zzzz"}},
		{"every cookie of the name loses its id, in order", "connect.sid=a~1; x=2; connect.sid=b~3", "connect.sid=1; x=2; connect.sid=3", []string{"a", "b"}},
		{"three cookies of the name", "connect.sid=a~1;connect.sid=b~2;connect.sid=c~3", "connect.sid=1;connect.sid=2;connect.sid=3", []string{"a", "b", "c"}},
		{"the name compares exactly", "Connect.sid=a~1; connect.sidx=b~2; xconnect.sid=c~3", "Connect.sid=a~1; connect.sidx=b~2; xconnect.sid=c~3", nil},
		{"blanks around name and value are ignored", " \tconnect.sid \t= \tid~v \t; a=b", " \tconnect.sid \t= \tv \t; a=b", []string{"id"}},
		{"a value prefixed before its quote gets its quote back", `connect.sid=id~"q v"; a=1`, `connect.sid="q v"; a=1`, []string{"id"}},
		{"a quoted value holding ~ loses up to the first ~, quote included, as HAProxy", `connect.sid="id~v"`, `connect.sid=v"`, []string{`"id`}},
		{"a ; inside quotes does not end the value", `connect.sid="a;b"; x=1`, `connect.sid="a;b"; x=1`, nil},
		{"a cookie without = is skipped", "connect.sid; connect.sid=i~v", "connect.sid; connect.sid=v", []string{"i"}},
		{"an empty header", "", "", nil},
		{"only separators", ";;; ;", ";;; ;", nil},
		{"an unterminated quote", `connect.sid="i~v`, `connect.sid=v`, []string{`"i`}},
		{"an empty value", "connect.sid=; a=1", "connect.sid=; a=1", nil},
		{"an id and nothing else", "connect.sid=i~", "connect.sid=", []string{"i"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ids := Strip(tt.header, "connect.sid", nil)
			if got != tt.want {
				t.Errorf("Strip(%q) = %q, want %q", tt.header, got, tt.want)
			}
			if !slices.Equal(ids, tt.ids) {
				t.Errorf("Strip(%q) ids = %q, want %q", tt.header, ids, tt.ids)
			}
		})
	}
}

func TestStripSeveralHeaders(t *testing.T) {
	t.Parallel()
	// A request may carry several Cookie headers (HTTP/2 splits them): each
	// is stripped on its own and the ids keep their order across headers.
	headers := []string{"a=1; connect.sid=s1~x", "connect.sid=s2~y; b=2"}
	var ids []string
	for i, h := range headers {
		headers[i], ids = Strip(h, "connect.sid", ids)
	}
	if want := []string{"a=1; connect.sid=x", "connect.sid=y; b=2"}; !slices.Equal(headers, want) {
		t.Errorf("got %q, want %q", headers, want)
	}
	if want := []string{"s1", "s2"}; !slices.Equal(ids, want) {
		t.Errorf("ids = %q, want %q", ids, want)
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setCookie string
		want      string
		ok        bool
	}{
		{"the value gets the id, attributes untouched", "connect.sid=s%3Aabc.def; Path=/; HttpOnly", "connect.sid=k4x9~s%3Aabc.def; Path=/; HttpOnly", true},
		{"a bare cookie", "connect.sid=v", "connect.sid=k4x9~v", true},
		{"another cookie is left alone", "other=v; Path=/", "other=v; Path=/", false},
		{"a longer name is another cookie", "connect.sidx=v", "connect.sidx=v", false},
		{"names compare case-sensitively", "Connect.Sid=v", "Connect.Sid=v", false},
		{"a deletion (empty value) is left alone", "connect.sid=; Max-Age=0", "connect.sid=; Max-Age=0", false},
		{"blanks around = are kept where they are", " connect.sid = v; Path=/", " connect.sid = k4x9~v; Path=/", true},
		{"a quoted value gets the id before the quote", `connect.sid="v w"; Path=/`, `connect.sid=k4x9~"v w"; Path=/`, true},
		{"a value that holds ~ already", "connect.sid=a~b", "connect.sid=k4x9~a~b", true},
		{"no = at all", "connect.sid; Path=/", "connect.sid; Path=/", false},
		{"an empty header", "", "", false},
		{"only the first pair is the cookie", "a=1; connect.sid=v", "a=1; connect.sid=v", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Prefix(tt.setCookie, "connect.sid", "k4x9")
			if got != tt.want || ok != tt.ok {
				t.Errorf("Prefix(%q) = %q, %v; want %q, %v", tt.setCookie, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzRoundTrip checks the property the whole scheme rests on: the value the
// backend set comes back to it unchanged once the proxy has prefixed it and
// the client has sent it back, and no input makes either side panic.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"s%3Aabc.def", "", "a~b", `"quoted"`, "~", ";", " x ", "\x00\xff", `"a;b"`} {
		f.Add(s, "k4x9", "a=1; ")
	}
	f.Fuzz(func(t *testing.T, value, id, before string) {
		const name = "connect.sid"
		// Whatever the input, nothing panics.
		Strip(value, name, nil)
		Strip(before+value, name, nil)
		Prefix(value, name, id)

		// Values a backend can really set (RFC 6265 cookie-octets, or a
		// quoted run of them) and ids we generate (never '~').
		if !validValue(value) || strings.ContainsAny(id, "~;\" \t,") || !validOther(before) {
			return
		}
		set, ok := Prefix(name+"="+value+"; Path=/; HttpOnly", name, id)
		if ok != (value != "") {
			t.Fatalf("Prefix(%q) ok = %v", value, ok)
		}
		if !ok {
			return
		}
		// The browser sends back NAME=<what was set>.
		sent := set[:strings.IndexByte(set, ';')]
		got, ids := Strip(before+sent+"; z=9", name, nil)
		if want := before + name + "=" + value + "; z=9"; got != want {
			t.Fatalf("round trip of %q: got %q, want %q", value, got, want)
		}
		if len(ids) != 1 || ids[0] != id {
			t.Fatalf("round trip of %q: ids %q, want [%q]", value, ids, id)
		}
	})
}

func validValue(v string) bool {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// validOther accepts a run of other cookies ending with "; " (or nothing)
// that does not itself hold the sticky cookie.
func validOther(s string) bool {
	if s == "" {
		return true
	}
	if !strings.HasSuffix(s, "; ") || strings.Contains(s, "connect.sid") || strings.ContainsAny(s, "\"") {
		return false
	}
	return true
}

func BenchmarkStrip(b *testing.B) {
	h := "_ga=GA1.1.123456789.1700000000; connect.sid=k4x9mq2v7a~s%3AxKq3Lz0sYV1t8wz9rmbsB6Tdx2F7iQeN.Yc2l0n5xq3y1k8w4dE5f6g7h8i9j0kLmNoPqRsTuV; theme=dark"
	var buf [4]string
	b.ReportAllocs()
	for b.Loop() {
		out, ids := Strip(h, "connect.sid", buf[:0])
		if len(ids) != 1 || len(out) != len(h)-11 {
			b.Fatal("bad strip")
		}
	}
}

func BenchmarkStripNoID(b *testing.B) {
	h := "_ga=GA1.1.123456789.1700000000; connect.sid=s%3AxKq3Lz0sYV1t8wz9rmbsB6Tdx2F7iQeN.Yc2l0n5xq3y1k8w4dE5f6g7h8i9j0kLmNoPqRsTuV; theme=dark"
	var buf [4]string
	b.ReportAllocs()
	for b.Loop() {
		if _, ids := Strip(h, "connect.sid", buf[:0]); len(ids) != 0 {
			b.Fatal("bad strip")
		}
	}
}

func BenchmarkPrefix(b *testing.B) {
	sc := "connect.sid=s%3AxKq3Lz0sYV1t8wz9rmbsB6Tdx2F7iQeN.Yc2l0n5xq3y1k8w4dE5f6g7h8i9j0kLmNoPqRsTuV; Path=/service1; HttpOnly; SameSite=Lax"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Prefix(sc, "connect.sid", "k4x9mq2v7a"); !ok {
			b.Fatal("not prefixed")
		}
	}
}

// FuzzBytesAndStringsAgree: the []byte API the engines use gives, byte for byte, what
// the string API does, for any header.
func FuzzBytesAndStringsAgree(f *testing.F) {
	for _, s := range []string{"connect.sid=a~b", `x=1; connect.sid="q~v"; connect.sid=~`, "connect.sid", ";;=~;", "connect.sid=s%3Aabc; Path=/; HttpOnly"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		want, _ := Strip(h, "connect.sid", nil)
		if got := string(AppendStrip(nil, []byte(h), "connect.sid")); got != want {
			t.Errorf("AppendStrip(%q) = %q, Strip gives %q", h, got, want)
		}
		wantP, ok := Prefix(h, "connect.sid", "srv")
		gotP, ok2 := AppendPrefix(nil, []byte(h), "connect.sid", "srv")
		if string(gotP) != wantP || ok != ok2 {
			t.Errorf("AppendPrefix(%q) = %q %v, Prefix gives %q %v", h, gotP, ok2, wantP, ok)
		}
	})
}

// FuzzStripOfPlainCookies checks Strip against the plainest reading of a Cookie
// header: "name=value" pairs joined by "; ", where a NAME cookie whose value holds a
// '~' loses everything up to it.
func FuzzStripOfPlainCookies(f *testing.F) {
	f.Add("connect.sid", "a~b", "x", "1", "connect.sid", "c~d~e")
	f.Add("a", "~", "connect.sid", "~", "connect.sid", "plain")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, n3, v3 string) {
		names, values := []string{n1, n2, n3}, []string{v1, v2, v3}
		var parts, wantParts []string
		for i := range names {
			if !plain(names[i]) || !plain(values[i]) {
				return
			}
			parts = append(parts, names[i]+"="+values[i])
			v := values[i]
			if names[i] == "connect.sid" {
				if _, after, ok := strings.Cut(v, "~"); ok {
					v = after
				}
			}
			wantParts = append(wantParts, names[i]+"="+v)
		}
		h, want := strings.Join(parts, "; "), strings.Join(wantParts, "; ")
		if got, _ := Strip(h, "connect.sid", nil); got != want {
			t.Errorf("Strip(%q) = %q, want %q", h, got, want)
		}
	})
}

// plain is a cookie name or value with nothing a Cookie header gives meaning to.
func plain(s string) bool {
	return s != "" && !strings.ContainsAny(s, "; \t\"=,\r\n")
}
