package doctor

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func none(yield func([]byte) bool) {}

func cookies(vs ...string) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for _, v := range vs {
			if !yield([]byte(v)) {
				return
			}
		}
	}
}

func TestNoCookieFiresAfterSamplesThatNeverSetIt(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	d := New("service1", slog.New(slog.NewTextHandler(&log, nil)))
	for i := range Samples {
		if len(d.Warnings()) != 0 {
			t.Fatalf("fired after %d answers, want %d", i, Samples)
		}
		d.NewVisitorAnswer("connect.sid", false, cookies("sid=abc; Path=/", "lang=fr"))
	}
	w := d.Warnings()
	if len(w) != 1 || w[0].Kind != NoCookie || !strings.Contains(w[0].Message, "set no connect.sid cookie (they set only sid, lang)") {
		t.Fatalf("got %+v, want one no-cookie warning naming sid and lang", w)
	}
	for range Samples {
		d.NewVisitorAnswer("connect.sid", false, none)
	}
	if n := strings.Count(log.String(), "stickiness doctor"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, log.String())
	}
	// The app sets it at last (at a login, say): the warning clears.
	d.NewVisitorAnswer("connect.sid", true, cookies("connect.sid=x"))
	if w := d.Warnings(); len(w) != 0 || d.SamplingNew() {
		t.Errorf("after an answer that sets it: got %+v (sampling %v), want no warning and sampling over", w, d.SamplingNew())
	}
}

func TestNoCookieStopsReadingSetCookiesOnceItFired(t *testing.T) {
	t.Parallel()
	d := New("service1", nil)
	for range Samples {
		d.NewVisitorAnswer("connect.sid", false, cookies("sid=abc"))
	}
	read := 0
	counted := func(yield func([]byte) bool) {
		read++
		yield([]byte("sid=abc"))
	}
	for range Samples {
		d.NewVisitorAnswer("connect.sid", false, counted)
	}
	if read != 0 {
		t.Errorf("after the warning fired, read the Set-Cookies of %d answers, want 0", read)
	}
	if !d.SamplingNew() {
		t.Error("stopped sampling, want it to go on until an answer sets the cookie (to clear the warning)")
	}
}

func TestNoCookieSettlesOnTheFirstAnswerThatSetsIt(t *testing.T) {
	t.Parallel()
	d := New("service1", nil)
	d.NewVisitorAnswer("connect.sid", false, none)
	d.NewVisitorAnswer("connect.sid", true, cookies("connect.sid=x"))
	for range 2 * Samples {
		d.NewVisitorAnswer("connect.sid", false, none)
	}
	if w := d.Warnings(); len(w) != 0 || d.SamplingNew() {
		t.Errorf("got %+v (sampling %v), want no warning and sampling over", w, d.SamplingNew())
	}
}

func TestTrapOnASharedCookiePath(t *testing.T) {
	t.Parallel()
	routes := []StickyRoute{{Service: "service1", Cookie: "connect.sid", Path: "/service1"}, {Service: "service1", Cookie: "connect.sid", Path: "/service1/", Prefix: true}}
	tests := []struct {
		name, setCookie, reqPath string
		fires                    bool
	}{
		{"the 2018 trap: Path=/", "connect.sid=s%3Ax; Path=/; HttpOnly", "/service2", true},
		{"no Path: the default path / covers the route", "connect.sid=x", "/service2", true},
		{"the tutorial's own path", "connect.sid=x; Path=/service2", "/service2", false},
		{"a path below the sticky prefix route", "connect.sid=x; path=/service1/a", "/service1/a/b", true},
		{"a longer name is another cookie", "connect.sidx=x; Path=/", "/service2", false},
		{"another cookie on Path=/", "lang=fr; Path=/", "/service2", false},
		{"a path that only starts like the route", "connect.sid=x; Path=/serv", "/serv", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := New("service2", nil)
			NewTrap(d, routes).Check([]byte(tt.setCookie), []byte(tt.reqPath))
			w := d.Warnings()
			if (len(w) == 1) != tt.fires {
				t.Fatalf("got %+v, want fired %v", w, tt.fires)
			}
			if tt.fires && (w[0].Kind != CookiePath || !strings.Contains(w[0].Message, "the sticky cookie of service1")) {
				t.Errorf("got %+v", w[0])
			}
		})
	}
	if NewTrap(New("x", nil), nil) != nil {
		t.Error("a table without sticky services made a trap")
	}
}

func TestClearedConditionsAreNotListed(t *testing.T) {
	t.Parallel()
	d := New("service1", nil)
	d.Set(VIP, "a vip")
	d.Clear(VIP)
	if w := d.Warnings(); len(w) != 0 {
		t.Errorf("got %+v, want none", w)
	}
}
