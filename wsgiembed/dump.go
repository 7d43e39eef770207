package wsgiembed

import "os"

// DumpStacks writes the Python stack of every thread to f, without waiting
// for the GIL: where a request that overran its timeout is stuck.
func (a *App) DumpStacks(f *os.File) error { return a.py.DumpTracebacks(f.Fd()) }
