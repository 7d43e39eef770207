package errlog

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func fixed() time.Time { return time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.Local) }

func TestWriterStampsAndLevels(t *testing.T) {
	tests := []struct {
		name  string
		level Level
		msg   string
		want  string
	}{
		{"plain message is info", Info, "listening\n", "2026-12-01 10:00:00.123 [INFO] listening\n"},
		{"no final newline", Info, "listening", "2026-12-01 10:00:00.123 [INFO] listening\n"},
		{"error prefix", Info, "error: worker 12: bad frame\n", "2026-12-01 10:00:00.123 [ERROR] worker 12: bad frame\n"},
		{"warning prefix", Info, "warning: worker 12 was killed\n", "2026-12-01 10:00:00.123 [WARNING] worker 12 was killed\n"},
		{"debug prefix dropped at info", Info, "debug: details\n", ""},
		{"debug prefix kept at debug", Debug, "debug: details\n", "2026-12-01 10:00:00.123 [DEBUG] details\n"},
		{"info dropped at warning", Warning, "listening\n", ""},
		{"warning kept at warning", Warning, "warning: slow\n", "2026-12-01 10:00:00.123 [WARNING] slow\n"},
		{"info dropped at error", Error, "hello\n", ""},
		{"prefix only at the start", Info, "worker said error: x\n", "2026-12-01 10:00:00.123 [INFO] worker said error: x\n"},
		{"prefix is case-sensitive", Info, "Error: x\n", "2026-12-01 10:00:00.123 [INFO] Error: x\n"},
		{"several lines share the level", Info, "error: reload failed: Traceback\n  File x\nNameError\n",
			"2026-12-01 10:00:00.123 [ERROR] reload failed: Traceback\n2026-12-01 10:00:00.123 [ERROR]   File x\n2026-12-01 10:00:00.123 [ERROR] NameError\n"},
		{"carriage returns dropped", Info, "a\r\nb\r\n", "2026-12-01 10:00:00.123 [INFO] a\n2026-12-01 10:00:00.123 [INFO] b\n"},
		{"empty message is one empty line", Info, "\n", "2026-12-01 10:00:00.123 [INFO] \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := New(&out, tt.level)
			w.now = fixed
			n, err := w.Write([]byte(tt.msg))
			if err != nil || n != len(tt.msg) {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(tt.msg))
			}
			if out.String() != tt.want {
				t.Errorf("wrote %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// Through a *log.Logger, as pool and wsgi log.
func TestLoggerFormat(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, Info)
	l := w.Logger()
	l.Printf("warning: worker %d (slot %d) exited with status 1", 42, 1)
	l.Print("[worker 42] print from the app")
	w.Logf(Error, "cannot bind %s", "127.0.0.1:1")
	w.Logf(Debug, "not written")
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(INFO|WARNING|ERROR|DEBUG)\] `)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{"[WARNING] worker 42 (slot 1) exited with status 1", "[INFO] [worker 42] print from the app", "[ERROR] cannot bind 127.0.0.1:1"}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i, l := range got {
		if !line.MatchString(l) || !strings.HasSuffix(l, want[i]) {
			t.Errorf("line %d %q, want a stamp then %q", i, l, want[i])
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Level
		ok   bool
	}{{"debug", Debug, true}, {"INFO", Info, true}, {"warning", Warning, true}, {"warn", Warning, true}, {"error", Error, true}, {"", Info, false}, {"fatal", Info, false}} {
		got, err := ParseLevel(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// Concurrent messages never interleave within a line.
func TestWriterConcurrent(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, Info)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				w.Write([]byte("error: " + strings.Repeat("x", 100) + "\nsecond line\n"))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*200*2 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200*2)
	}
	for i := 0; i < len(lines); i += 2 {
		if !strings.HasSuffix(lines[i], "[ERROR] "+strings.Repeat("x", 100)) || !strings.HasSuffix(lines[i+1], "[ERROR] second line") {
			t.Fatalf("lines %d-%d interleaved: %q %q", i, i+1, lines[i], lines[i+1])
		}
	}
}

// logrotate: rename the file, Reopen, and new lines go to a new file at the
// same path while the renamed one keeps what was written before.
func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "error.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("before\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("still old\n"))
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("after\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "before\nstill old\n" || string(cur) != "after\n" {
		t.Errorf("rotated %q, current %q", old, cur)
	}
	// A path that cannot be opened keeps the old file.
	os.Remove(path)
	os.Mkdir(path, 0o755)
	if err := f.Reopen(); err == nil {
		t.Errorf("Reopen on a directory succeeded")
	}
	if _, err := f.Write([]byte("kept\n")); err != nil {
		t.Errorf("write after a failed Reopen: %v", err)
	}
}
