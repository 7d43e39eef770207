//go:build !linux

package hornbeam

import (
	"errors"
	"os"
)

// versions is Linux only (memfd); elsewhere workers do not cache state_get.
type versions struct{ file *os.File }

func newVersions() (*versions, error) { return nil, errors.New("no state change table on this system") }

func (v *versions) changed(key string)     {}
func (v *versions) load(key string) uint32 { return 0 }
func (v *versions) close()                 {}

func memfd(name string, size int64) (*os.File, error) {
	return nil, errors.New("no memfd on this system")
}
