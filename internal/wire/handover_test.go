package wire

import (
	"bytes"
	"fmt"
	"testing"
)

// A large payload handed out in the read buffer itself (no copy) must
// never be overwritten by later reads, whether or not it is released, and
// the frames after it must come out whole.
func TestReadFrameHandOver(t *testing.T) {
	body := func(i, n int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, n) }
	cases := []struct {
		name  string
		sizes []int // Body payload sizes, each followed by an End frame
	}{
		{"one 64 KB body", []int{64 << 10}},
		{"two large bodies in one read (copied: too much follows)", []int{64 << 10, 64 << 10}},
		{"small then large", []int{100, 20 << 10, 5}},
		{"many", []int{16 << 10, 70 << 10, 1, 16<<10 - 1, 200 << 10, 32 << 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, peer := pair(t)
			defer conn.Close()
			var stream []byte
			for i, n := range c.sizes {
				stream = append(stream, frameBytes(Body, uint32(i), body(i, n))...)
				stream = append(stream, frameBytes(End, uint32(i), nil)...)
			}
			go func() {
				peer.Write(stream)
				peer.Close()
			}()
			var kept []Frame // every other frame is kept unreleased
			handedOver := 0
			for i, n := range c.sizes {
				f, err := conn.ReadFrame()
				if err != nil || f.Type != Body || f.ID != uint32(i) || !bytes.Equal(f.Payload, body(i, n)) {
					t.Fatalf("body %d: type %d id %d, %d bytes, %v", i, f.Type, f.ID, len(f.Payload), err)
				}
				if f.buf != nil && cap(f.Payload) != len(f.Payload) {
					t.Errorf("body %d: payload has room to grow (%d > %d): an append would write into the read buffer", i, cap(f.Payload), len(f.Payload))
				}
				if f.buf != nil {
					handedOver++
				}
				if i%2 == 0 {
					kept = append(kept, f)
				} else {
					f.Release()
				}
				if e, err := conn.ReadFrame(); err != nil || e.Type != End || e.ID != uint32(i) {
					t.Fatalf("end %d: type %d id %d, %v", i, e.Type, e.ID, err)
				}
			}
			if handedOver == 0 && c.sizes[len(c.sizes)-1] >= handOverMin {
				t.Errorf("no payload was handed over, though the last large one is followed only by an End frame")
			}
			for j, f := range kept {
				if i := 2 * j; !bytes.Equal(f.Payload, body(i, c.sizes[i])) {
					t.Errorf("body %d changed after later reads", i)
				}
			}
		})
	}
}

func BenchmarkReadFrame64K(b *testing.B) {
	for _, release := range []bool{false, true} {
		b.Run(fmt.Sprintf("release=%v", release), func(b *testing.B) {
			conn, peer := pair(b)
			defer conn.Close()
			msg := append(frameBytes(Body, 1, make([]byte, 64<<10)), frameBytes(End, 1, nil)...)
			go func() {
				for i := 0; i < b.N; i++ {
					peer.Write(msg)
				}
				peer.Close()
			}()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f, err := conn.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				if release {
					f.Release()
				}
				conn.ReadFrame()
			}
		})
	}
}
