package wsgi

import (
	"bytes"
	"testing"
)

func TestSpoolOrderAcrossMemoryAndFile(t *testing.T) {
	s := newSpool(t.TempDir(), 100)
	var want bytes.Buffer
	done := make(chan []byte)
	go func() {
		var got bytes.Buffer
		buf := make([]byte, 7)
		for {
			p, ok, err := s.next(buf)
			if err != nil {
				t.Error(err)
			}
			if !ok {
				done <- got.Bytes()
				return
			}
			got.Write(p)
		}
	}()
	for i := 0; i < 50; i++ {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%9)
		want.Write(p)
		if err := s.write(p); err != nil {
			t.Fatal(err)
		}
	}
	s.close()
	if got := <-done; !bytes.Equal(got, want.Bytes()) {
		t.Errorf("read back %q\nwant %q", got, want.Bytes())
	}
}
