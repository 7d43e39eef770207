package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// FuzzFlagValues: the command line's own value parsers (durations, sizes)
// and the config file reader never panic, and what they accept is sane.
func FuzzFlagValues(f *testing.F) {
	for _, s := range []string{"30s", "30", "0.5", "1m30s", "-1", "1e9", "NaN", "512M", "1G", "64KiB", "", "M", "9223372036854775807G", "workers = 3", "bind = [\"a\", 1]", "x = { y = 1 }"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d time.Duration
		if err := (duration{&d}).Set(s); err == nil && strings.TrimSpace(s) == "" {
			t.Fatalf("duration %q accepted", s)
		}
		var n int64
		if err := (size{&n}).Set(s); err == nil && n < 0 {
			t.Fatalf("size %q gave a negative %d", s, n)
		}
		var c config
		fs := flags(&c)
		path := t.TempDir() + "/c.toml"
		if err := os.WriteFile(path, []byte(s), 0o644); err == nil {
			applyFile(fs, path, sources{}) // an error is fine; a panic is not
		}
		_ = pflag.ErrHelp
	})
}
