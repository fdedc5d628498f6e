package sticky

import (
	"strings"
	"testing"
	"time"
)

const now = 1700000000 // a fixed clock, Unix seconds

func mustRule(t testing.TB, s string) Rule {
	t.Helper()
	r, err := ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNextFindsTheStickyCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, rule, header string
		ids                []string
		expired            []bool
	}{
		{"prefix: the id before ~", "sid prefix", "a=1; sid=k4x9~v", []string{"k4x9"}, []bool{false}},
		{"prefix: no ~ is no id", "sid prefix", "sid=v", nil, nil},
		{"insert: the whole value is the id", "SRV insert", "a=1; SRV=k4x9; b=2", []string{"k4x9"}, []bool{false}},
		{"insert: an empty value is an empty id", "SRV insert", "SRV=", []string{""}, []bool{false}},
		{"insert: every cookie of the name, in order", "SRV insert", "SRV=a; SRV=b", []string{"a", "b"}, []bool{false, false}},
		{"insert: the dates are not the id", "SRV insert maxidle 1h", "SRV=k4x9|ZVPxA", []string{"k4x9"}, []bool{false}},
		{"insert: a last date older than maxidle has expired", "SRV insert maxidle 10m", "SRV=k4x9|ZVPi8", []string{"k4x9"}, []bool{true}},
		{"insert: a first date older than maxlife has expired", "SRV insert maxlife 10m", "SRV=k4x9|ZVPxA|ZVPi8", []string{"k4x9"}, []bool{true}},
		{"insert: dates within maxidle and maxlife are valid", "SRV insert maxidle 2h maxlife 2h", "SRV=k4x9|ZVPxA|ZVPi8", []string{"k4x9"}, []bool{false}},
		{"insert: without maxidle a date never expires", "SRV insert", "SRV=k4x9|ZVPi8", []string{"k4x9"}, []bool{false}},
		{"rewrite: the whole value is the id", "SRV rewrite", "SRV=k4x9", []string{"k4x9"}, []bool{false}},
		{"insert: names compare exactly", "SRV insert", "srv=a; SRVX=b", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRule(t, tt.rule)
			var ids []string
			var expired []bool
			for i := 0; ; {
				f, next, ok := r.Next([]byte(tt.header), i, now)
				if !ok {
					break
				}
				i = next
				ids = append(ids, string(f.ID))
				expired = append(expired, f.Expired)
			}
			if strings.Join(ids, ",") != strings.Join(tt.ids, ",") || len(ids) != len(tt.ids) {
				t.Errorf("got ids %q, want %q", ids, tt.ids)
			}
			for i := range min(len(expired), len(tt.expired)) {
				if expired[i] != tt.expired[i] {
					t.Errorf("cookie %d: got expired %v, want %v", i, expired[i], tt.expired[i])
				}
			}
		})
	}
}

func TestDatesRoundTrip(t *testing.T) {
	t.Parallel()
	r := mustRule(t, "SRV insert maxidle 30m maxlife 8h")
	v := r.AppendInsert(nil, "k4x9", now, 0)
	if want := "SRV=k4x9|ZVPxA|ZVPxA; path=/"; string(v) != want {
		t.Fatalf("got %q, want %q", v, want)
	}
	id, d := ReadValue(v[len("SRV="):strings.IndexByte(string(v), ';')])
	if string(id) != "k4x9" || d.Last != (now+3)>>2<<2 || d.First != d.Last {
		t.Errorf("got id %q dates %+v, want k4x9 and both %d", id, d, (now+3)>>2<<2)
	}
	// A later refresh keeps the first date.
	v = r.AppendInsert(nil, "k4x9", now+3600, d.First)
	if _, d2 := ReadValue(v[4:strings.IndexByte(string(v), ';')]); d2.First != d.First || d2.Last <= d.Last {
		t.Errorf("refresh: got %+v, want first %d kept and a later last", d2, d.First)
	}
}

func TestReadValueIgnoresBadDates(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"id|", "id|abc", "id|!!!!!", "id|ZVPxA|", "id|ZVPxA|abcd"} {
		id, d := ReadValue([]byte(v))
		if string(id) != "id" {
			t.Errorf("ReadValue(%q): id %q, want id", v, id)
		}
		if d.First != 0 || (d.Last != 0 && !strings.HasPrefix(v, "id|ZVPxA")) {
			t.Errorf("ReadValue(%q): dates %+v, want none but a valid last", v, d)
		}
	}
}

func TestAppendInsertWritesHAProxysAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct{ rule, want string }{
		{"SRV insert", "SRV=k4x9; path=/"},
		{"SRV insert indirect nocache", "SRV=k4x9; path=/"},
		{"SRV insert httponly secure", "SRV=k4x9; path=/; HttpOnly; Secure"},
		{"SRV insert domain .a.test domain b.test attr SameSite=Lax secure", "SRV=k4x9; path=/; domain=.a.test; domain=b.test; Secure; SameSite=Lax"},
		{"SRV insert maxidle 1h", "SRV=k4x9|ZVPxA; path=/"},
	}
	for _, tt := range tests {
		r := mustRule(t, tt.rule)
		if got := string(r.AppendInsert(nil, "k4x9", now, 0)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.rule, got, tt.want)
		}
	}
}

func TestAppendCookieAsTheBackendSeesIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, rule, header, want string
		keep                     bool
	}{
		{"insert indirect: the cookie alone goes with its header", "SRV insert indirect", "SRV=k4x9", "", false},
		{"insert indirect: first of several", "SRV insert indirect", "SRV=k4x9; a=1; b=2", "a=1; b=2", true},
		{"insert indirect: in the middle", "SRV insert indirect", "a=1; SRV=k4x9; b=2", "a=1; b=2", true},
		{"insert indirect: last", "SRV insert indirect", "a=1;SRV=k4x9", "a=1", true},
		{"insert indirect: every one of the name", "SRV insert indirect", "SRV=a; x=1; SRV=b", "x=1", true},
		{"insert indirect: other cookies' bytes kept", "SRV insert indirect", `a="q;v"; SRV=k; b=x~y`, `a="q;v"; b=x~y`, true},
		{"insert indirect: a header without it is unchanged", "SRV insert indirect", "a=1;b=2", "a=1;b=2", true},
		{"insert: the backend sees the cookie", "SRV insert", "a=1; SRV=k4x9", "a=1; SRV=k4x9", true},
		{"rewrite: the backend sees the id", "SRV rewrite", "SRV=k4x9", "SRV=k4x9", true},
		{"prefix: the id comes off", "sid prefix", "sid=k4x9~v", "sid=v", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRule(t, tt.rule)
			got, keep := r.AppendCookie(nil, []byte(tt.header))
			if string(got) != tt.want || keep != tt.keep {
				t.Errorf("AppendCookie(%q) = %q, %v; want %q, %v", tt.header, got, keep, tt.want, tt.keep)
			}
			gs, keep := r.RewriteCookie(tt.header)
			if gs != tt.want || keep != tt.keep {
				t.Errorf("RewriteCookie(%q) = %q, %v; want %q, %v", tt.header, gs, keep, tt.want, tt.keep)
			}
		})
	}
}

func TestSetCookieActions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, rule, setCookie string
		hit                   bool
		action                Action
		named                 bool
		put                   string
	}{
		{"prefix: the backend's cookie gets the id", "sid prefix", "sid=v; Path=/", false, PutID, true, "sid=k4x9~v; Path=/"},
		{"prefix: a deletion is left alone", "sid prefix", "sid=; Max-Age=0", false, Pass, true, ""},
		{"prefix indirect: dropped for a visitor already on the server", "sid prefix indirect", "sid=v", true, Drop, true, ""},
		{"prefix indirect: prefixed for a new visitor", "sid prefix indirect", "sid=v", false, PutID, true, "sid=k4x9~v"},
		{"insert: the backend's own cookie of the name is dropped", "SRV insert", "SRV=mine; Path=/", false, Drop, true, ""},
		{"insert preserve: the backend's cookie passes untouched", "SRV insert preserve", "SRV=; Max-Age=0", false, Pass, true, ""},
		{"insert: other cookies pass", "SRV insert", "sid=v", false, Pass, false, ""},
		{"rewrite: the value becomes the id", "SRV rewrite", "SRV=whatever ; Path=/", false, PutID, true, "SRV=k4x9 ; Path=/"},
		{"rewrite: a quoted value is replaced whole", "SRV rewrite", `SRV="a b"; Path=/`, false, PutID, true, "SRV=k4x9; Path=/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRule(t, tt.rule)
			a, named := r.SetCookie([]byte(tt.setCookie), tt.hit)
			if a != tt.action || named != tt.named {
				t.Fatalf("SetCookie(%q) = %v, %v; want %v, %v", tt.setCookie, a, named, tt.action, tt.named)
			}
			if a == PutID {
				if got := string(r.AppendSetCookie(nil, []byte(tt.setCookie), "k4x9")); got != tt.put {
					t.Errorf("got %q, want %q", got, tt.put)
				}
			}
		})
	}
}

func TestInsertDecision(t *testing.T) {
	t.Parallel()
	fresh := Dates{Last: now + 2, First: now - 100}
	stale := Dates{Last: now - 8, First: now - 100}
	tests := []struct {
		name, rule      string
		hit             bool
		d               Dates
		post, serverSet bool
		want            bool
	}{
		{"a new visitor gets the cookie", "SRV insert", false, Dates{}, false, false, true},
		{"a visitor already on the server does not", "SRV insert", true, Dates{}, false, false, false},
		{"prefix mode never inserts", "sid prefix", false, Dates{}, false, false, false},
		{"postonly: not on a GET", "SRV insert postonly", false, Dates{}, false, false, false},
		{"postonly: on a POST", "SRV insert postonly", false, Dates{}, true, false, true},
		{"preserve: not when the backend set it", "SRV insert preserve", false, Dates{}, false, true, false},
		{"maxidle: a hit whose last date passed is refreshed", "SRV insert maxidle 1h", true, stale, false, false, true},
		{"maxidle: a hit within the same 4 s is not", "SRV insert maxidle 1h", true, Dates{Last: now + 2}, false, false, false},
		{"maxidle: a hit without a date gets one", "SRV insert maxidle 1h", true, Dates{}, false, false, true},
		{"maxlife: a hit without a first date gets one", "SRV insert maxlife 1h", true, Dates{Last: now + 2}, false, false, true},
		{"no maxlife: a first date is taken off", "SRV insert maxidle 1h", true, fresh, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRule(t, tt.rule)
			if got := r.Insert(tt.hit, tt.d, now, tt.post, tt.serverSet); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzInsertRoundTrip: whatever the clock, an inserted value reads back as
// the id and the dates written, and no input makes the readers panic.
func FuzzInsertRoundTrip(f *testing.F) {
	f.Add("k4x9", int64(now), "SRV=a|ZVPxA|ZVPi8; b=1")
	f.Add("", int64(0), "|||||")
	f.Fuzz(func(t *testing.T, id string, clock int64, junk string) {
		r := Rule{Name: "SRV", Mode: ModeInsert, Indirect: true, MaxIdle: time.Hour, MaxLife: time.Hour}
		for i := 0; ; {
			_, next, ok := r.Next([]byte(junk), i, clock)
			if !ok {
				break
			}
			i = next
		}
		r.AppendCookie(nil, []byte(junk))
		ReadValue([]byte(junk))
		if strings.ContainsAny(id, "|;\" \t,=") || clock < 0 || clock > 1<<31 {
			return
		}
		v := string(r.AppendInsert(nil, id, clock, 0))
		v = strings.TrimPrefix(v[:strings.IndexByte(v, ';')], "SRV=")
		gotID, d := ReadValue([]byte(v))
		q := (clock + 3) >> 2 << 2
		if string(gotID) != id || (q > 0 && (d.Last != q || d.First != q)) {
			t.Fatalf("round trip of %q at %d: got %q %+v", id, clock, gotID, d)
		}
	})
}
