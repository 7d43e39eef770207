package httpguard

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParser measures the parser's cost per byte of typical traffic,
// fed in 4 KiB reads as net/http's bufio.Reader asks for them.
func BenchmarkParser(b *testing.B) {
	get := "GET /static/app.js?v=123 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://example.com/\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\nConnection: keep-alive\r\n\r\n"
	body := strings.Repeat("x", 64<<10)
	post := "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
		fmt.Sprint(len(body)) + "\r\n\r\n" + body
	var chunked strings.Builder
	chunked.WriteString("POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
	for i := 0; i < 16; i++ {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", 4096, body[:4096])
	}
	chunked.WriteString("0\r\n\r\n")
	for _, c := range []struct{ name, stream string }{
		{"pipelined GETs", strings.Repeat(get, 64)},
		{"64 KiB Content-Length body", post},
		{"64 KiB in 4 KiB chunks", chunked.String()},
	} {
		b.Run(c.name, func(b *testing.B) {
			data := []byte(c.stream)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				p := parser{}
				for off := 0; off < len(data); off += 4096 {
					if _, err := p.feed(data[off:min(off+4096, len(data))]); err != nil {
						b.Fatal(err)
					}
					p.out = p.out[:0]
				}
			}
		})
	}
}
