package pool

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hornbeam-go/hornbeam/errlog"
)

// A worker's output lines keep their level prefix (moved in front of the
// pid marker, where errlog reads it), except within a Python traceback.
func TestOutputLinesLevels(t *testing.T) {
	tests := []struct {
		name  string
		lines []string // pieces as read, each ending its line unless noted
		want  []string // the messages printed to the error log
		logs  []string // what errlog writes for them, after the time stamp
	}{
		{"plain line is info", []string{"hello\n"}, []string{"[worker 7] hello"}, []string{"[INFO] [worker 7] hello"}},
		{"error prefix", []string{"error: worker 7 takes no more connections\n"},
			[]string{"error: [worker 7] worker 7 takes no more connections"}, []string{"[ERROR] [worker 7] worker 7 takes no more connections"}},
		{"warning prefix", []string{"warning: finalising Python: x\n"},
			[]string{"warning: [worker 7] finalising Python: x"}, []string{"[WARNING] [worker 7] finalising Python: x"}},
		{"debug prefix", []string{"debug: details\n"}, []string{"debug: [worker 7] details"}, []string{"[DEBUG] [worker 7] details"}},
		{"prefix only at the start", []string{"the app said error: x\n"}, []string{"[worker 7] the app said error: x"}, []string{"[INFO] [worker 7] the app said error: x"}},
		{"prefix is case-sensitive", []string{"Error: x\n"}, []string{"[worker 7] Error: x"}, []string{"[INFO] [worker 7] Error: x"}},
		{"no final newline", []string{"error: last words"}, []string{"error: [worker 7] last words"}, []string{"[ERROR] [worker 7] last words"}},
		{"traceback lines stay as they are",
			[]string{"Traceback (most recent call last):\n", "  File \"app.py\", line 3, in <module>\n", "    raise error(\"boom\")\n", "error: boom\n", "error: after the traceback\n"},
			[]string{"[worker 7] Traceback (most recent call last):", "[worker 7]   File \"app.py\", line 3, in <module>", "[worker 7]     raise error(\"boom\")", "[worker 7] error: boom", "error: [worker 7] after the traceback"},
			[]string{"[INFO] [worker 7] Traceback (most recent call last):", "[INFO] [worker 7]   File \"app.py\", line 3, in <module>", "[INFO] [worker 7]     raise error(\"boom\")", "[INFO] [worker 7] error: boom", "[ERROR] [worker 7] after the traceback"}},
		{"chained traceback",
			[]string{"Traceback (most recent call last):\n", "  File \"a.py\", line 1, in f\n", "KeyError: 'x'\n", "\n", "During handling of the above exception, another exception occurred:\n", "\n",
				"Traceback (most recent call last):\n", "  File \"a.py\", line 3, in f\n", "error: second\n", "warning: next\n"},
			[]string{"[worker 7] Traceback (most recent call last):", "[worker 7]   File \"a.py\", line 1, in f", "[worker 7] KeyError: 'x'", "[worker 7] ", "[worker 7] During handling of the above exception, another exception occurred:", "[worker 7] ",
				"[worker 7] Traceback (most recent call last):", "[worker 7]   File \"a.py\", line 3, in f", "[worker 7] error: second", "warning: [worker 7] next"},
			nil},
		{"the rest of a long line is not mapped", []string{"xxxx", "error: not a prefix\n", "error: a prefix\n"},
			[]string{"[worker 7] xxxx", "[worker 7] error: not a prefix", "error: [worker 7] a prefix"}, nil},
		{"carriage return", []string{"warning: x\r\n"}, []string{"warning: [worker 7] x\r"}, []string{"[WARNING] [worker 7] x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outputLines{prefix: "[worker 7] "}
			var out bytes.Buffer
			ew := errlog.New(&out, errlog.Debug)
			l := ew.Logger()
			for i, piece := range tt.lines {
				got := o.format([]byte(piece))
				if i < len(tt.want) && got != tt.want[i] {
					t.Errorf("piece %d %q: printed %q, want %q", i, piece, got, tt.want[i])
				}
				l.Print(got)
			}
			if tt.logs == nil {
				return
			}
			var lines []string
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if len(line) > len(errlog.TimeFormat)+1 {
					line = line[len(errlog.TimeFormat)+1:]
				}
				lines = append(lines, line)
			}
			if strings.Join(lines, "\n") != strings.Join(tt.logs, "\n") {
				t.Errorf("error log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.logs, "\n"))
			}
		})
	}
}
