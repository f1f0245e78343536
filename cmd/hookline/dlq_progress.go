package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/dlq"
)

// progressView draws replay progress: a bar redrawn in place on a
// terminal, else a plain line every few seconds, for logs.
type progressView struct {
	w      *os.File
	tty    bool
	last   time.Time
	sent0  int64
	seen   bool
	latest dlq.Progress
}

func newProgressView(w *os.File) *progressView {
	st, err := w.Stat()
	return &progressView{w: w, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (p *progressView) update(pr dlq.Progress) {
	if !p.seen {
		p.seen, p.sent0 = true, pr.Sent
	}
	p.latest = pr
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.draw(pr)
}

func (p *progressView) draw(pr dlq.Progress) {
	sent := pr.Sent - p.sent0
	secs := pr.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(sent) / secs
	}
	frac := 1.0
	if pr.Total > 0 {
		frac = min(float64(pr.Scanned)/float64(pr.Total), 1)
	}
	eta := "-"
	if pr.Scanned > 0 && frac < 1 {
		eta = (time.Duration(float64(pr.Elapsed) * (1 - frac) / frac)).Round(time.Second).String()
	}
	if p.tty {
		const width = 30
		fill := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  read %d/%d  sent %d  %.1f/s  eta %s   ",
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, pr.Scanned, pr.Total, sent, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "replay %s: read %d/%d DLQ records (%.0f%%), matched %d, sent %d (%.1f/s), eta %s\n",
		pr.ReplayID, pr.Scanned, pr.Total, frac*100, pr.Matched, sent, rate, eta)
}

func (p *progressView) finish() {
	if !p.seen {
		return
	}
	p.draw(p.latest)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
