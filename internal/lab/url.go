package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
)

// findArms maps the arms onto a deployed stack (docker-compose.yml of this repository).
// It does not trust the deployment's name for what it is: it visits each page a few
// times as one new visitor and classifies what it sees (see probeArm). As deployed by
// `make stack-deploy`:
//
//   - /service1 is the sticky arm (the proxy puts its server id in the cookie), or with
//     STORE=cookie the stateless arm (any replica continues the count);
//   - /service2 is the neither arm: memory sessions, round robin, no stickiness.
//
// So one deployment gives two of the three arms; the notes say how to get the third.
func findArms(ctx context.Context, base string, want []string) ([]*target, []string, error) {
	base = strings.TrimRight(base, "/")
	found := map[string]string{} // arm -> path
	var notes []string
	for _, path := range []string{"/service1", "/service2"} {
		kind, err := probeArm(ctx, base+path)
		if err != nil {
			return nil, nil, err
		}
		if other, dup := found[kind]; dup {
			notes = append(notes, fmt.Sprintf("%s behaves like %s (%s); measured once, at %s", path, other, kind, other))
			continue
		}
		found[kind] = path
	}
	var targets []*target
	for _, name := range want {
		path, ok := found[name]
		if !ok {
			notes = append(notes, missingArm(name))
			continue
		}
		a, _ := armByName(name)
		a.title += " [" + path + "]"
		targets = append(targets, &target{arm: a, url: base + path})
	}
	if len(targets) == 0 {
		return nil, nil, fmt.Errorf("the stack at %s has none of the arms %s: %s", base, strings.Join(want, ", "), strings.Join(notes, "; "))
	}
	return targets, notes, nil
}

func missingArm(name string) string {
	switch name {
	case "stateless":
		return "no stateless arm: deploy the stack with STORE=cookie (make stack-deploy STORE=cookie) and run the lab again to measure it"
	case "sticky":
		return "no sticky arm: deploy the stack with the default STORE=memory (make stack-deploy) and run the lab again to measure it"
	case "neither":
		return "no neither arm: no page of this stack loses counts (the tutorial's /service2 does, with 2 or more replicas)"
	}
	return "no " + name + " arm: the deployed stack has none; it runs on the local stacks only (make lab ARMS=" + name + ")"
}

// probeVisits is how many times probeArm visits a page.
const probeVisits = 6

// probeArm visits url a few times as one new visitor and says which arm it behaves as:
// "sticky" when the session cookie comes back with a server id in front ("<id>~..."),
// "stateless" when the count carried on every time without that, "neither" when it
// did not (memory sessions, round robin).
func probeArm(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v := newVisitor(0, url, nil)
	continued := true
	prev := 0
	for seq := 1; seq <= probeVisits; seq++ {
		a := v.visit(ctx, seq, time.Now())
		if !a.OK() {
			msg := a.Error
			if msg == "" {
				msg = fmt.Sprintf("status %d", a.Status)
			}
			return "", errors.New(url + ": " + msg + "; is the stack deployed (make stack-deploy) and is URL its proxy?")
		}
		continued = continued && a.Visits == prev+1
		prev = a.Visits
	}
	if c, ok := v.b.Cookie(url, "connect.sid"); ok {
		if _, sticky := browser.StickyID(c); sticky {
			return "sticky", nil
		}
	}
	if continued {
		return "stateless", nil
	}
	return "neither", nil
}
