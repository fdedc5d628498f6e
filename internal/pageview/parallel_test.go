package pageview

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	gsessions "github.com/gorilla/sessions"

	"github.com/swarm-affinity/swarm-affinity/internal/store"
)

// The Node original loses most counts here: express-session loads the session before
// the handler and saves it after, so parallel requests all read the same count.
func TestParallelRequestsOfOneVisitorAllCount(t *testing.T) {
	t.Parallel()
	const parallel = 50
	srv := httptest.NewServer(newHandler(t, slowStore{newStore(t, "memory")}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel}}
	t.Cleanup(client.CloseIdleConnections)

	get := func(c *http.Cookie) (Answer, *http.Response) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/service1", nil)
		req.Header.Set("Accept", "application/json")
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return Answer{}, nil
		}
		defer resp.Body.Close()
		return decodeAnswer(t, resp), resp
	}
	first, resp := get(nil)
	if first.Visits != 1 || len(resp.Cookies()) != 1 {
		t.Fatalf("first visit: got visits %d and %d cookies, want 1 and 1", first.Visits, len(resp.Cookies()))
	}
	cookie := resp.Cookies()[0]

	// Open the connections first, so that the requests below really run in parallel.
	inParallel(parallel, func() {
		if resp, err := client.Get(srv.URL + "/healthz"); err == nil {
			resp.Body.Close()
		}
	})

	const rounds = 4
	for round := range rounds {
		var (
			mu     sync.Mutex
			visits []int
		)
		inParallel(parallel, func() {
			a, _ := get(cookie)
			mu.Lock()
			visits = append(visits, a.Visits)
			mu.Unlock()
		})
		slices.Sort(visits)
		base := 1 + round*parallel
		for i, v := range visits { // each request saw a count of its own
			if v != base+i+1 {
				t.Fatalf("round %d: got visits %v, want each of %d..%d once", round+1, visits, base+1, base+parallel)
			}
		}
	}
	if last, _ := get(cookie); last.Visits != rounds*parallel+2 {
		t.Errorf("after %d parallel requests: got visits %d, want %d", rounds*parallel, last.Visits, rounds*parallel+2)
	}
}

// slowStore widens the window between load and save by a millisecond, so that a
// missing per-session lock loses counts on every run, not only on some.
type slowStore struct{ store.Store }

func (s slowStore) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(s, name) // so that Save below is called
}

func (s slowStore) Save(r *http.Request, w http.ResponseWriter, sess *gsessions.Session) error {
	time.Sleep(time.Millisecond)
	return s.Store.Save(r, w, sess)
}

// inParallel runs f in n goroutines released at the same moment and waits for them.
func inParallel(n int, f func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}
