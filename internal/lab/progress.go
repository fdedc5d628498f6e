package lab

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the bar on a terminal, and a line per event elsewhere (a log, CI).
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
	tty bool
	n   int // answers so far
	max int // the bar's length
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) start(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "sending %d requests...\n", total)
		return
	}
	p.max = total
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("requests"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (p *progress) add() {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.n > p.max { // a slow event keeps visitors coming: grow the bar rather than end it
		p.max += 100
		p.bar.ChangeMax(p.max)
	}
	p.bar.Add(1)
}

func (p *progress) event(arm string, ev Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	what := fmt.Sprintf("%s: %s %s", arm, ev.Kind, ev.Replica)
	switch {
	case ev.EndMS == 0:
		what += "..."
	case ev.Error != "":
		what += " failed: " + ev.Error
	default:
		what += " done"
	}
	if p.bar != nil {
		p.bar.Describe(what)
		return
	}
	fmt.Fprintln(p.w, what)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
