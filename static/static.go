// Package static serves static files from a directory under a URL prefix,
// in Go, before requests reach the Python workers (nginx's
// "location /assets/ { alias ./static/; }").
//
//	h, err := static.New("/assets", "./static")   // or static.ParseMapping("/assets=./static")
//	handler = h.Wrap(handler)                     // /assets/... from ./static, the rest to handler
//
// The prefix is owned entirely: every request under it is answered from
// the directory (404 when there is no such file) and never reaches next.
//
// What is served:
//
//   - only regular files. Relative symlinks are followed while they stay
//     inside the directory; absolute symlinks are refused (os.Root). Directories are never listed and index.html is not
//     looked up: a directory path is 404. So are paths with "." or ".."
//     segments, empty segments ("a//b"), a trailing slash, backslashes,
//     NUL bytes, encoded slashes (%2F, %5C), dotfiles (any segment starting
//     with '.', like .git or .env), and anything a symlink leads outside
//     the directory (os.Root enforces it).
//   - only GET and HEAD; other methods get 405 with "Allow: GET, HEAD".
//   - with http.ServeContent: Range, If-Range, If-Modified-Since,
//     If-Unmodified-Since, Last-Modified, HEAD and Content-Length.
//   - a strong ETag from the file's size, modification time and inode;
//     If-None-Match / If-Match use it (304 / 412).
//   - Content-Type from the extension (mime.TypeByExtension), else by
//     sniffing the first 512 bytes (http.DetectContentType).
//   - precompressed variants: when FILE.br (or FILE.gz) exists next to FILE
//     and the client's Accept-Encoding accepts br (or gzip, x-gzip, or *)
//     with a non-zero q, it is sent instead with Content-Encoding, FILE's
//     Content-Type and the variant's own ETag and Last-Modified. The
//     highest q wins, br on a tie. Responses for a file that has a
//     variant carry "Vary: Accept-Encoding". Variants are trusted to
//     match FILE: keep them in sync when deploying.
//
// The directory is opened on every request, so replacing it (or a symlink
// to it) with a new release takes effect at once.
package static

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Handler serves the files of a directory under a URL prefix.
type Handler struct {
	prefix string // "/assets" (no trailing slash), or "/"
	dir    string // absolute
}

// ParseMapping splits a --static flag value "PREFIX=DIR", like
// "/assets=./static", into its prefix and directory. The prefix must
// start with '/'.
func ParseMapping(s string) (prefix, dir string, err error) {
	prefix, dir, ok := strings.Cut(s, "=")
	prefix, dir = strings.TrimSpace(prefix), strings.TrimSpace(dir)
	if !ok || prefix == "" || dir == "" {
		return "", "", fmt.Errorf("static mapping %q: want URL_PREFIX=DIRECTORY, like /assets=./static", s)
	}
	if !strings.HasPrefix(prefix, "/") {
		return "", "", fmt.Errorf("static mapping %q: the URL prefix %q must start with '/'", s, prefix)
	}
	return prefix, dir, nil
}

// New returns a Handler serving dir under prefix ("/assets": the file
// dir/css/site.css is /assets/css/site.css). prefix must start with '/'
// and be a clean path ("/assets" or "/assets/"; "/" serves the whole
// site); dir must be an existing directory, and is made absolute.
func New(prefix, dir string) (*Handler, error) {
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("static prefix %q must start with '/'", prefix)
	}
	p := prefix
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if path.Clean(p) != p || strings.ContainsAny(p, "\\\x00") {
		return nil, fmt.Errorf("static prefix %q is not a clean path (no '.', '..', '//' segments)", prefix)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("static directory %q: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("static directory for %s: %w", prefix, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("static directory for %s: %s is not a directory", prefix, abs)
	}
	return &Handler{prefix: p, dir: abs}, nil
}

// Prefix returns the URL prefix, without a trailing slash ("/" stays "/").
func (h *Handler) Prefix() string { return h.prefix }

// Dir returns the absolute directory served.
func (h *Handler) Dir() string { return h.dir }

// Match reports whether r's path is under the prefix: the prefix itself or
// PREFIX/anything (so "/assets" does not match "/assetsx").
func (h *Handler) Match(r *http.Request) bool {
	p := r.URL.Path
	if h.prefix == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == h.prefix || (strings.HasPrefix(p, h.prefix) && p[len(h.prefix)] == '/')
}

// Wrap returns a handler that serves requests under the prefix and passes
// every other request to next.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.Match(r) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the file r's path names (404 if r is not under the
// prefix or names no servable file).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Match(r) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := h.fileName(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(h.dir)
	if err != nil {
		http.Error(w, "500 static directory unavailable", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	f, fi, err := openRegular(root, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()

	hd := w.Header()
	ctype, err := contentType(name, f)
	if err != nil {
		http.Error(w, "500 cannot read file", http.StatusInternalServerError)
		return
	}
	hd.Set("Content-Type", ctype)

	// Precompressed variants.
	qBr, qGz := acceptedEncodings(r.Header.Values("Accept-Encoding"))
	served, servedInfo, encoding := f, fi, ""
	hasVariant := false
	for _, v := range preferred(qBr, qGz) {
		if v.q > 0 && encoding == "" {
			if vf, vfi, err := openRegular(root, name+v.ext); err == nil {
				defer vf.Close()
				served, servedInfo, encoding = vf, vfi, v.coding
				hasVariant = true
			}
		} else if !hasVariant {
			if st, err := root.Stat(filepath.FromSlash(name + v.ext)); err == nil && st.Mode().IsRegular() {
				hasVariant = true // not sent, but the response varies
			}
		}
	}
	if hasVariant {
		hd.Add("Vary", "Accept-Encoding")
	}
	if encoding != "" {
		hd.Set("Content-Encoding", encoding)
		// ServeContent leaves Content-Length out when Content-Encoding is
		// set (for on-the-fly compressors); this is the variant's own
		// size. ServeContent replaces it for ranges and drops it for
		// 304s and errors.
		hd.Set("Content-Length", strconv.FormatInt(servedInfo.Size(), 10))
	}
	hd.Set("Etag", etag(servedInfo, encoding))
	http.ServeContent(w, r, name, servedInfo.ModTime(), served)
}

// fileName returns the slash-separated name, relative to the directory,
// that r's path names, or ok = false for a path that is never served.
func (h *Handler) fileName(r *http.Request) (string, bool) {
	if raw := strings.ToLower(r.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "", false
	}
	rel := strings.TrimPrefix(r.URL.Path, h.prefix)
	rel = strings.TrimPrefix(rel, "/")
	if rel == "" || strings.ContainsAny(rel, "\\\x00") {
		return "", false
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == "" || seg[0] == '.' { // "a//b", "a/", ".", "..", ".git"
			return "", false
		}
	}
	return rel, true
}

// openRegular opens name in root if it is a regular file. It checks before
// opening, so that a FIFO never blocks the open, and after, on the open
// file.
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	name = filepath.FromSlash(name)
	st, err := root.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, errNotRegular
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, errNotRegular
	}
	return f, fi, nil
}

var errNotRegular = errors.New("not a regular file")

// contentType is the type for name's extension, else sniffed from f's
// first 512 bytes (f is then rewound).
func contentType(name string, f *os.File) (string, error) {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t, nil
	}
	var buf [512]byte
	n, err := io.ReadFull(f, buf[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return http.DetectContentType(buf[:n]), nil
}

// etag is a strong entity tag from the file's size, modification time and
// inode, plus the content coding of a precompressed variant.
func etag(fi fs.FileInfo, encoding string) string {
	b := make([]byte, 0, 64)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.Size(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	if ino := inode(fi); ino != 0 {
		b = append(b, '-')
		b = strconv.AppendUint(b, ino, 16)
	}
	if encoding != "" {
		b = append(b, '-')
		b = append(b, encoding...)
	}
	b = append(b, '"')
	return string(b)
}

type variant struct {
	ext, coding string
	q           float64
}

// preferred lists the variants, the one to try first first: highest q,
// br on a tie.
func preferred(qBr, qGz float64) []variant {
	br := variant{".br", "br", qBr}
	gz := variant{".gz", "gzip", qGz}
	if qGz > qBr {
		return []variant{gz, br}
	}
	return []variant{br, gz}
}

// acceptedEncodings returns the q values Accept-Encoding gives br and
// gzip (x-gzip counts as gzip; "*" covers a coding not named); 0 when not
// acceptable.
func acceptedEncodings(values []string) (br, gz float64) {
	br, gz, star := -1.0, -1.0, -1.0
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0
					}
					q = f
				}
			}
			switch coding {
			case "br":
				br = q
			case "gzip", "x-gzip":
				gz = max(gz, q)
			case "*":
				star = q
			}
		}
	}
	if br < 0 {
		br = max(star, 0)
	}
	if gz < 0 {
		gz = max(star, 0)
	}
	return br, gz
}
