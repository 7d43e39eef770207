//go:build !unix

package top

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/hornbeam-go/hornbeam"
)

// runTUI falls back to plain snapshots where there are no unix terminals.
func runTUI(ctx context.Context, src *Source, first hornbeam.Stats, at time.Time, interval time.Duration, _ io.Reader, out *os.File, stderr io.Writer) int {
	return runPlain(ctx, src, first, at, interval, out, stderr)
}
