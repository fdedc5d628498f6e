package swarm

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-affinity/swarm-affinity/internal/browser"
	"github.com/swarm-affinity/swarm-affinity/internal/pageview"
)

// The nodes' addresses exist only inside their network namespaces, so the multi-node
// test sends its requests from there: it starts this test binary again under
// `scripts/swarm-nodes.sh exec 1` as a browser for many visitors (env nodeClientEnv=1),
// and asks it for pages over net/rpc on the child's stdin and stdout.
const nodeClientEnv = "SWARM_NODES_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(nodeClientEnv) == "1" {
		serveNodeClient(os.Stdin, os.Stdout)
		return
	}
	os.Exit(m.Run())
}

// siteURL is the one site every visitor browses, whichever node's proxy answers: a
// browser keeps cookies per site, and a site on several machines sits behind one name
// (DNS round robin, a load balancer), not one address per node.
const siteURL = "http://swarm-affinity.test"

// NodeClient is the browser that runs in a node's network namespace: one
// browser.Browser per visitor, each asking for siteURL pages and sent to the node
// address of each call. Exported for net/rpc.
type NodeClient struct {
	mu       sync.Mutex
	visitors map[string]*browser.Browser
}

// GetArgs asks for Path at Addr (host:port, one node's proxy) as Visitor; an empty
// Visitor is a new visitor each time (no cookie sent, none kept).
type GetArgs struct {
	Visitor string
	Addr    string
	Path    string
}

// GetReply is the answer: Status 0 and Err when no answer came.
type GetReply struct {
	Status int
	Answer pageview.Answer
	Err    string
	// Cookie is the visitor's connect.sid after the answer.
	Cookie string
}

// nodeAddr is the context key of the node address a request goes to.
type nodeAddr struct{}

// toNode sends each request to the node address in its context, whatever host its URL
// names, with a pool of connections per node (as a browser keeps per address).
type toNode struct {
	mu    sync.Mutex
	nodes map[string]*http.Transport
}

func (n *toNode) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, _ := req.Context().Value(nodeAddr{}).(string)
	n.mu.Lock()
	tr, ok := n.nodes[addr]
	if !ok {
		var d net.Dialer
		tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			}}
		n.nodes[addr] = tr
	}
	n.mu.Unlock()
	return tr.RoundTrip(req)
}

// visitor is the named visitor's browser, made on first use; "" is one browser without
// cookies that every new visitor shares (a Browser is safe for concurrent use).
func (c *NodeClient) visitor(name string) *browser.Browser {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.visitors[name]
	if !ok {
		b = browser.New(browser.Options{
			Transport: &toNode{nodes: map[string]*http.Transport{}},
			NoCookies: name == "",
			// Longer than the proxy's 5 s connect timeout, after which it tries another replica.
			Timeout: 15 * time.Second,
		})
		c.visitors[name] = b
	}
	return b
}

// Get fetches one page as JSON; failures are in the reply.
func (c *NodeClient) Get(args GetArgs, reply *GetReply) error {
	b := c.visitor(args.Visitor)
	ctx := context.WithValue(context.Background(), nodeAddr{}, args.Addr)
	a, resp, err := b.Page(ctx, siteURL+args.Path)
	reply.Answer = a
	if resp != nil {
		reply.Status = resp.StatusCode
	}
	if err != nil {
		reply.Err = err.Error()
	}
	reply.Cookie, _ = b.Cookie(siteURL+args.Path, "connect.sid")
	return nil
}

// serveNodeClient answers rpc calls on r and w until r ends (the test closed it).
func serveNodeClient(r io.ReadCloser, w io.WriteCloser) {
	srv := rpc.NewServer()
	if err := srv.Register(&NodeClient{visitors: map[string]*browser.Browser{}}); err != nil {
		log.Fatal(err)
	}
	srv.ServeCodec(jsonrpc.NewServerCodec(struct {
		io.Reader
		io.Writer
		io.Closer
	}{r, w, r}))
}

// nodeBrowser is the test's side of a NodeClient running in a node's namespace.
type nodeBrowser struct {
	rpc *rpc.Client
	cmd *exec.Cmd
}

// startBrowser runs the NodeClient in node k's network namespace, stopped at cleanup.
func (c *cluster) startBrowser(t *testing.T, k int) *nodeBrowser {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.command(context.Background(), c.script, "exec", fmt.Sprint(k), self)
	cmd.Env = append(cmd.Env, nodeClientEnv+"=1")
	cmd.Stderr = testWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the browser in node%d: %v", k, err)
	}
	b := &nodeBrowser{cmd: cmd, rpc: rpc.NewClientWithCodec(jsonrpc.NewClientCodec(struct {
		io.Reader
		io.Writer
		io.Closer
	}{stdout, stdin, stdin}))}
	t.Cleanup(func() {
		b.rpc.Close() // closes its stdin: it returns
		if err := cmd.Wait(); err != nil {
			t.Errorf("the browser in node%d: %v", k, err)
		}
	})
	return b
}

// get asks for path at addr (one node's proxy) as visitor, and returns the answer and
// the visitor's connect.sid, or why there is no answer. A 5xx says ": status 5..", as
// load counts it.
func (b *nodeBrowser) get(visitor, addr, path string) (pageview.Answer, string, error) {
	var r GetReply
	if err := b.rpc.Call("NodeClient.Get", GetArgs{Visitor: visitor, Addr: addr, Path: path}, &r); err != nil {
		return pageview.Answer{}, "", fmt.Errorf("the browser in the node: %w", err)
	}
	switch {
	case r.Err != "" && r.Status == 0:
		return pageview.Answer{}, r.Cookie, fmt.Errorf("GET http://%s%s: no answer: %s", addr, path, r.Err)
	case r.Err != "":
		return pageview.Answer{}, r.Cookie, fmt.Errorf("GET http://%s%s: status %d: %s", addr, path, r.Status, r.Err)
	}
	return r.Answer, r.Cookie, nil
}

// testWriter sends a child's stderr to the test log, line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
