package top

// The live screen is drawn with a handful of ANSI sequences, without a TUI
// library: Bubble Tea's package init (and Lip Gloss's background detection)
// query the terminal for its colours and wait up to 5 s for an answer, and
// a package init runs in every hornbeam command, not only in `hornbeam top`.
// Nothing here asks the terminal anything: it never waits on an answer.

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// Terminal sequences the screen uses.
const (
	altScreenOn  = "\x1b[?1049h"
	altScreenOff = "\x1b[?1049l"
	cursorHide   = "\x1b[?25l"
	cursorShow   = "\x1b[?25h"
	wrapOff      = "\x1b[?7l" // long lines are clipped by the terminal, not wrapped
	wrapOn       = "\x1b[?7h"
	home         = "\x1b[H"
	clearLine    = "\x1b[K" // the rest of the line
	clearBelow   = "\x1b[J"
	clearScreen  = "\x1b[2J"
)

// style is an SGR attribute list ("1;33"); the zero style renders text as
// it is.
type style string

// Render wraps s in the style's attributes.
func (st style) Render(s string) string {
	if st == "" {
		return s
	}
	return "\x1b[" + string(st) + "m" + s + "\x1b[0m"
}

// screenStyles are the live screen's styles; with NO_COLOR set, bold,
// faint and reverse only.
func screenStyles() (title, header, busy, other, bad, dim style) {
	if os.Getenv("NO_COLOR") != "" {
		return "7;1", "1", "1", "", "1", "2"
	}
	return "7;1", "1", "33;1", "35", "31;1", "2"
}

// model is the state of the live screen.
type model struct {
	src      *Source
	interval time.Duration

	prev   *hornbeam.Stats
	cur    hornbeam.Stats
	prevAt time.Time
	at     time.Time // when cur was read
	sum    Summary
	err    error     // of the last poll, nil when it succeeded
	errAt  time.Time // when it failed
	polls  int
	width  int
	height int

	title, header, busy, other, bad, dim style
}

// pollMsg is the result of one poll.
type pollMsg struct {
	st  hornbeam.Stats
	err error
	at  time.Time
}

// resize records the terminal's size.
func (m *model) resize(width, height int) { m.width, m.height = width, height }

// polled takes in a poll's result; a failed poll keeps the last snapshot.
func (m *model) polled(msg pollMsg) {
	m.polls++
	if msg.err != nil {
		m.err, m.errAt = msg.err, msg.at
		return
	}
	prev := m.cur
	m.prev, m.prevAt = &prev, m.at
	m.cur, m.at, m.err = msg.st, msg.at, nil
	m.sum = Summarize(m.prev, m.cur, pollElapsed(m.prev, m.cur, m.prevAt, m.at))
}

// View draws the screen: a title bar, the totals, the worker table (cut
// to the terminal's height) and a footer with keys or the last error.
func (m *model) View() string {
	var lines []string
	title := fmt.Sprintf(" hornbeam top  %s  %s  every %s ", m.src, m.at.Format("15:04:05"), m.interval)
	if m.width > len(title) {
		title += strings.Repeat(" ", m.width-len(title))
	}
	lines = append(lines, m.title.Render(title))
	lines = append(lines, m.sum.TotalLines()...)
	lines = append(lines, "", m.header.Render(WorkerHeader))

	footer := m.dim.Render("q quit")
	if m.err != nil {
		footer = m.bad.Render(fmt.Sprintf("%s poll failed, showing %s: %s",
			m.errAt.Format("15:04:05"), m.at.Format("15:04:05"), m.src.Explain(m.err)))
	}
	rows := m.sum.Workers
	room := len(rows)
	if m.height > 0 {
		room = m.height - len(lines) - 2 // a blank line and the footer
	}
	for i, w := range rows {
		if i >= room-1 && len(rows) > room {
			lines = append(lines, m.dim.Render(fmt.Sprintf("… %d more workers", len(rows)-i)))
			break
		}
		row := WorkerRow(w)
		switch w.State {
		case "busy":
			row = m.busy.Render(row)
		case "idle":
		default:
			row = m.other.Render(row)
		}
		lines = append(lines, row)
	}
	lines = append(lines, "", footer)
	return strings.Join(lines, "\n")
}

// frame is what draws v over the previous screen: from the top left, each
// line clearing what was left of the last one, and everything below the
// last line cleared. Lines end in \r\n: the terminal is in raw mode.
func frame(v string) string {
	var b strings.Builder
	b.WriteString(home)
	for i, line := range strings.Split(v, "\n") {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(line)
		b.WriteString(clearLine)
	}
	b.WriteString(clearBelow)
	return b.String()
}

// key is what a read from the keyboard asks for.
type key int

const (
	keyNone key = iota
	keyQuit
	keySuspend
)

// parseKeys reads one read's worth of input: q, Q, Esc or Ctrl-C quit,
// Ctrl-Z suspends; escape sequences (arrows, function keys) are ignored.
func parseKeys(b []byte) key {
	if len(b) == 1 && b[0] == 0x1b {
		return keyQuit // Esc alone
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case 'q', 'Q', 0x03:
			return keyQuit
		case 0x1a:
			return keySuspend
		case 0x1b:
			// A sequence: ESC [ ... final byte, or ESC O x.
			if i+1 < len(b) && b[i+1] == 'O' {
				i += 2
				continue
			}
			for i++; i < len(b); i++ {
				if c := b[i]; c >= 0x40 && c <= 0x7e && c != '[' {
					break
				}
			}
		}
	}
	return keyNone
}
