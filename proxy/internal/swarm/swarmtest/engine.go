// Package swarmtest is a fake Docker Engine API for tests: a real HTTP server on a unix
// socket that serves answers recorded from a real engine (../testdata, recorded by
// ../testdata/record.sh), which a test can change as the swarm would change: an
// environment variable, a task that starts or stops, an event, a node that is no
// manager. Any request but a GET fails the test: the proxy must never change the swarm.
package swarmtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Engine is the fake engine. Its methods are safe for concurrent use.
type Engine struct {
	t    testing.TB
	sock string

	mu       sync.Mutex
	version  json.RawMessage
	state    State
	worker   bool
	streams  map[chan []byte]bool // open /events streams
	requests map[string]int       // GETs by path
}

// State is the swarm the engine serves, as the generic JSON of the recording (so every
// field a real engine sent is served, not only those the proxy reads).
type State struct {
	Services []map[string]any
	Tasks    []map[string]any
}

// Dir is the directory of the recordings, for Start.
func Dir(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", name)
}

// Start serves the recording in dir (Dir("2018")) on a unix socket until the test ends.
func Start(t testing.TB, dir string) *Engine {
	t.Helper()
	e := &Engine{t: t, streams: map[chan []byte]bool{}, requests: map[string]int{}}
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("swarmtest: %v", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("swarmtest: %s: %v", name, err)
		}
	}
	read("version.json", &e.version)
	read("services.json", &e.state.Services)
	read("tasks.json", &e.state.Tasks)

	// A short path: a unix socket's path must stay under 108 bytes.
	sockDir, err := os.MkdirTemp("", "swarmtest")
	if err != nil {
		t.Fatal(err)
	}
	e.sock = filepath.Join(sockDir, "docker.sock")
	ln, err := net.Listen("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(e.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() {
		e.EndEvents()
		srv.Close()
		os.RemoveAll(sockDir)
	})
	return e
}

// Host is the engine's DOCKER_HOST.
func (e *Engine) Host() string { return "unix://" + e.sock }

// Edit changes the swarm the engine serves.
func (e *Engine) Edit(fn func(s *State)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(&e.state)
}

// SetWorker makes the engine answer as a swarm worker does: 503 to /services and /tasks.
func (e *Engine) SetWorker(worker bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.worker = worker
}

// Requests counts the GETs of path so far ("/services", "/events"...).
func (e *Engine) Requests(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests[path]
}

// Event sends one event (a line of the recording, or one made with ServiceEvent) to
// every open /events stream, and reports how many got it.
func (e *Engine) Event(line []byte) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.streams {
		ch <- line
	}
	return len(e.streams)
}

// ServiceEvent is the event a real engine sends when a service changes.
func ServiceEvent(action, id, name string) []byte {
	b, _ := json.Marshal(map[string]any{"Type": "service", "Action": action, "scope": "swarm",
		"Actor": map[string]any{"ID": id, "Attributes": map[string]string{"name": name}}})
	return b
}

// EndEvents ends every open /events stream, as an engine restarting does (the client
// reads EOF).
func (e *Engine) EndEvents() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.streams {
		close(ch)
		delete(e.streams, ch)
	}
}

// Streams is the number of open /events streams.
func (e *Engine) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		e.t.Errorf("swarmtest: the proxy sent %s %s; it must only GET", r.Method, r.URL)
		http.Error(w, `{"message":"read-only"}`, http.StatusMethodNotAllowed)
		return
	}
	path := r.URL.Path
	if v, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/"); ok && strings.HasPrefix(v, "v1.") {
		path = "/" + rest
	}
	e.mu.Lock()
	e.requests[path]++
	worker := e.worker
	var body any
	switch path {
	case "/version":
		body = e.version
	case "/services":
		body = e.state.Services
	case "/tasks":
		body = e.state.Tasks
	}
	var events chan []byte
	if path == "/events" {
		events = make(chan []byte, 16)
		e.streams[events] = true
	}
	b, err := json.Marshal(body)
	e.mu.Unlock()
	if err != nil {
		e.t.Errorf("swarmtest: %v", err)
	}

	w.Header().Set("Content-Type", "application/json")
	switch {
	case path == "/events":
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				e.mu.Lock()
				delete(e.streams, events)
				e.mu.Unlock()
				return
			case line, ok := <-events:
				if !ok {
					return
				}
				w.Write(append(slices.Clip(line), '\n'))
				w.(http.Flusher).Flush()
			}
		}
	case worker && path != "/version":
		// moby's errSwarmNotManager, as a worker answers.
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"message":"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."}`)
	case body == nil:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "{\"message\":\"page not found: %s\"}\n", path)
	default:
		w.Write(b)
	}
}
