package top

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"

	"github.com/hornbeam-go/hornbeam"
)

// runTUI draws the live screen on the terminal out until the user quits
// (q, Esc or Ctrl-C) or ctx ends. Bubble Tea puts the input terminal in raw
// mode and the screen on the alternate buffer, and restores both on exit.
func runTUI(ctx context.Context, src *Source, first hornbeam.Stats, at time.Time, interval time.Duration, stdin io.Reader, out *os.File, stderr io.Writer) int {
	r := lipgloss.NewRenderer(out)
	m := &model{
		ctx: ctx, src: src, interval: interval,
		cur: first, at: at, sum: Summarize(nil, first, 0),
		title:  r.NewStyle().Reverse(true).Bold(true),
		header: r.NewStyle().Bold(true),
		busy:   r.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		other:  r.NewStyle().Foreground(lipgloss.Color("5")),
		bad:    r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		dim:    r.NewStyle().Faint(true),
	}
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(out), tea.WithAltScreen(), tea.WithoutSignalHandler()}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(f.Fd()) {
		opts = append(opts, tea.WithInput(f))
	} else if tty, err := os.Open("/dev/tty"); err == nil {
		defer tty.Close()
		opts = append(opts, tea.WithInput(tty))
	} else {
		opts = append(opts, tea.WithInput(nil)) // no keys: SIGINT still ends it
	}
	_, err := tea.NewProgram(m, opts...).Run()
	if err != nil && ctx.Err() == nil && !errors.Is(err, tea.ErrInterrupted) {
		fmt.Fprintf(stderr, "hornbeam top: %v\n", err)
		return 1
	}
	return 0
}

// model is the Bubble Tea model of the live screen.
type model struct {
	ctx      context.Context
	src      *Source
	interval time.Duration

	prev     *hornbeam.Stats
	cur      hornbeam.Stats
	prevAt   time.Time
	at       time.Time // when cur was read
	sum      Summary
	err      error     // of the last poll, nil when it succeeded
	errAt    time.Time // when it failed
	polls    int
	width    int
	height   int
	quitting bool

	title, header, busy, other, bad, dim lipgloss.Style
}

// tickMsg asks for a poll; pollMsg carries its result.
type tickMsg struct{}

type pollMsg struct {
	st  hornbeam.Stats
	err error
	at  time.Time
}

func (m *model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *model) poll() tea.Cmd {
	return func() tea.Msg {
		st, err := m.src.Fetch(m.ctx)
		return pollMsg{st: st, err: err, at: time.Now()}
	}
}

// Init schedules the first refresh; the first snapshot is already there.
func (m *model) Init() tea.Cmd { return m.tick() }

// Update handles keys, window sizes and polls.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "Q", "esc", "ctrl+c":
			m.quitting = true
			return m, tea.Quit
		case "ctrl+z":
			return m, tea.Suspend
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		return m, m.poll()
	case pollMsg:
		m.polls++
		if msg.err != nil {
			m.err, m.errAt = msg.err, msg.at
			return m, m.tick()
		}
		prev := m.cur
		m.prev, m.prevAt = &prev, m.at
		m.cur, m.at, m.err = msg.st, msg.at, nil
		m.sum = Summarize(m.prev, m.cur, pollElapsed(m.prev, m.cur, m.prevAt, m.at))
		return m, m.tick()
	}
	return m, nil
}

// View draws the screen: a title bar, the totals, the worker table (cut
// to the terminal's height) and a footer with keys or the last error.
func (m *model) View() string {
	if m.quitting {
		return ""
	}
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
