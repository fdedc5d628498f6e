package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"time"
)

// findArms maps the arms onto a deployed stack (docker-compose.yml of this repository):
//
//   - /service1 is the sticky arm when the proxy sticks (its session cookie comes back
//     as "<server id>~..."), and the stateless arm when the stack was deployed with
//     STORE=cookie (plain round robin, sessions in the cookie);
//   - /service2 is the neither arm: memory sessions, round robin, no stickiness.
//
// So one deployment gives two of the three arms; deploy the other variant and run the
// lab again for the third. Asked-for arms the stack does not have are left out, said so.
func findArms(ctx context.Context, base string, want []string) ([]*target, []string, error) {
	base = strings.TrimRight(base, "/")
	var targets []*target
	var missing []string
	kind1, err := probe(ctx, base+"/service1")
	if err != nil {
		return nil, nil, err
	}
	for _, name := range want {
		a, _ := armByName(name)
		switch {
		case name == "neither":
			if _, err := probe(ctx, base+"/service2"); err != nil {
				return nil, nil, err
			}
			targets = append(targets, &target{arm: a, url: base + "/service2"})
		case name == kind1:
			targets = append(targets, &target{arm: a, url: base + "/service1"})
		default:
			missing = append(missing, name)
		}
	}
	if len(targets) == 0 {
		return nil, nil, fmt.Errorf("the stack at %s has none of the arms %s (its /service1 is %s)",
			base, strings.Join(want, ", "), kind1)
	}
	var notes []string
	for _, name := range missing {
		other := "STORE=cookie"
		if name == "sticky" {
			other = "the default STORE=memory"
		}
		notes = append(notes, fmt.Sprintf("no %s arm: this stack's /service1 is %s; deploy it with %s "+
			"(make stack-deploy) and run the lab again to measure it", name, kind1, other))
	}
	return targets, notes, nil
}

// probe visits url once as a new visitor and says which arm it behaves as: "sticky"
// when the session cookie comes back with a server id in front, else "stateless".
func probe(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v := newVisitor(0, url, http.DefaultTransport)
	a := v.visit(ctx, 1, time.Now())
	if !a.OK() {
		msg := a.Error
		if msg == "" {
			msg = fmt.Sprintf("status %d", a.Status)
		}
		return "", errors.New(url + ": " + msg + "; is the stack deployed (make stack-deploy) and is URL its proxy?")
	}
	u, err := neturl.Parse(url)
	if err != nil {
		return "", err
	}
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == "connect.sid" && strings.Contains(c.Value, "~") {
			return "sticky", nil
		}
	}
	return "stateless", nil
}
