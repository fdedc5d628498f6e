package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/rpc"
	"net/rpc/jsonrpc"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
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

// NodeClient is the browser that runs in a node's network namespace: each visitor has
// its own cookie jar for siteURL. Exported for net/rpc.
type NodeClient struct {
	client *http.Client
	mu     sync.Mutex
	jars   map[string]*cookiejar.Jar
}

// GetArgs asks for Path at Addr (host:port, one node's proxy) as Visitor; an empty
// Visitor sends no cookie and keeps none.
type GetArgs struct {
	Visitor string
	Addr    string
	Path    string
}

// GetReply is the answer: Status 0 and Err when no answer came.
type GetReply struct {
	Status int
	Body   string // the start of a non-200 body
	Page   page
	Err    string
	// Cookie is the visitor's connect.sid after the answer.
	Cookie string
}

func (c *NodeClient) jar(visitor string) *cookiejar.Jar {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jars[visitor]
	if !ok {
		j, _ = cookiejar.New(nil)
		c.jars[visitor] = j
	}
	return j
}

// Get fetches one page with Accept: application/json; failures are in the reply.
func (c *NodeClient) Get(args GetArgs, reply *GetReply) error {
	site, err := url.Parse(siteURL + args.Path)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+args.Addr+args.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	var jar *cookiejar.Jar
	if args.Visitor != "" {
		jar = c.jar(args.Visitor)
		for _, ck := range jar.Cookies(site) {
			req.AddCookie(ck)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		reply.Err = err.Error()
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	reply.Status = resp.StatusCode
	if jar != nil {
		jar.SetCookies(site, resp.Cookies())
		for _, ck := range jar.Cookies(site) {
			if ck.Name == "connect.sid" {
				reply.Cookie = ck.Value
			}
		}
	}
	switch {
	case err != nil:
		reply.Err = "reading the body: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		reply.Body = fmt.Sprintf("%.200s", body)
	default:
		if err := json.Unmarshal(body, &reply.Page); err != nil {
			reply.Err = fmt.Sprintf("not the JSON page (%v): %.200s", err, body)
		}
	}
	return nil
}

// serveNodeClient answers rpc calls on r and w until r ends (the test closed it).
func serveNodeClient(r io.ReadCloser, w io.WriteCloser) {
	srv := rpc.NewServer()
	c := &NodeClient{
		// Longer than the proxy's 5 s connect timeout, after which it tries another replica.
		client: &http.Client{Timeout: 15 * time.Second},
		jars:   map[string]*cookiejar.Jar{},
	}
	if err := srv.Register(c); err != nil {
		log.Fatal(err)
	}
	srv.ServeCodec(jsonrpc.NewServerCodec(struct {
		io.Reader
		io.Writer
		io.Closer
	}{r, w, r}))
}

// browser is the test's side of a NodeClient running in a node's namespace.
type browser struct {
	rpc *rpc.Client
	cmd *exec.Cmd
}

// startBrowser runs the NodeClient in node k's network namespace, stopped at cleanup.
func (c *cluster) startBrowser(t *testing.T, k int) *browser {
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
	b := &browser{cmd: cmd, rpc: rpc.NewClientWithCodec(jsonrpc.NewClientCodec(struct {
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

// errServer marks an answer with a 5xx status.
var errServer = errors.New("server error")

// get asks for path at addr as visitor and returns the page, or why there is none.
func (b *browser) get(visitor, addr, path string) (page, string, error) {
	var r GetReply
	if err := b.rpc.Call("NodeClient.Get", GetArgs{Visitor: visitor, Addr: addr, Path: path}, &r); err != nil {
		return page{}, "", fmt.Errorf("the browser: %w", err)
	}
	switch {
	case r.Err != "":
		return page{}, r.Cookie, fmt.Errorf("GET http://%s%s: %s", addr, path, r.Err)
	case r.Status >= 500:
		return page{}, r.Cookie, fmt.Errorf("GET http://%s%s: %w: status %d: %s", addr, path, errServer, r.Status, r.Body)
	case r.Status != http.StatusOK:
		return page{}, r.Cookie, fmt.Errorf("GET http://%s%s: status %d: %s", addr, path, r.Status, r.Body)
	}
	return r.Page, r.Cookie, nil
}

// testWriter sends a child's stderr to the test log, line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
