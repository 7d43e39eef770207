package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// sources records where each setting came from, for --print-config.
type sources map[string]string

// notInFile are flags that make no sense in a configuration file.
var notInFile = map[string]bool{"config": true, "print-config": true, "check-config": true, "version": true, "help": true}

func commandLineSources(fs *pflag.FlagSet) sources {
	src := sources{}
	fs.Visit(func(f *pflag.Flag) {
		if !compatFlag(f) { // an alias's target is visited too
			src[f.Name] = "command line"
		}
	})
	return src
}

func envName(flag string) string {
	return "HORNBEAM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from HORNBEAM_<FLAG>.
func applyEnv(fs *pflag.FlagSet, src sources) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || compatFlag(f) {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("invalid value %q for %s: %v", v, name, serr)
				return
			}
			src[f.Name] = "env " + name
		}
	})
	return err
}

// applyFile sets the flags still unset from a TOML file whose keys are the
// flag names (dashes or underscores).
func applyFile(fs *pflag.FlagSet, path string, src sources) error {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		f := fs.Lookup(name)
		if f != nil && compatFlag(f) {
			if a := f.Annotations[compatKey]; a[0] == "alias" {
				name, f = a[1], fs.Lookup(a[1]) // gunicorn's spelling of a setting
			} else {
				f = nil
			}
		}
		if f == nil || notInFile[name] {
			return fmt.Errorf("--config %s: unknown setting %q (settings are named like the flags: hornbeam --help)", path, k)
		}
		if f.Changed {
			continue // a flag or an environment variable wins
		}
		if tbl, ok := raw[k].(map[string]any); ok && name == "mount" {
			// [mount] "/api" = "api:app": a table, one entry per mount.
			prefixes := make([]string, 0, len(tbl))
			for p := range tbl {
				prefixes = append(prefixes, p)
			}
			sort.Strings(prefixes)
			var arr []any
			for _, p := range prefixes {
				spec, err := tomlString(tbl[p])
				if err != nil {
					return fmt.Errorf("--config %s: [mount] %q: %v", path, p, err)
				}
				arr = append(arr, p+"="+spec)
			}
			raw[k] = arr
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if arr, ok := raw[k].([]any); ok {
				// Each element as it is: Set would split a string
				// holding a comma (--static, --bind take one per entry).
				elems := make([]string, len(arr))
				for i, e := range arr {
					s, err := tomlString(e)
					if err != nil {
						return fmt.Errorf("--config %s: %s: %v", path, k, err)
					}
					elems[i] = s
				}
				if err := sv.Replace(elems); err != nil {
					return fmt.Errorf("--config %s: %s = %q: %v", path, k, elems, err)
				}
				src[name] = "file " + path
				continue
			}
		}
		val, err := tomlString(raw[k])
		if err != nil {
			return fmt.Errorf("--config %s: %s: %v", path, k, err)
		}
		if err := fs.Set(name, val); err != nil {
			return fmt.Errorf("--config %s: %s = %q: %v", path, k, val, err)
		}
		src[name] = "file " + path
	}
	return nil
}

func tomlString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64, float64, bool:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := tomlString(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v (%T)", v, v)
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// printConfig writes the effective settings as TOML, each with its source:
// a file that --config loads back to the same settings.
func printConfig(w io.Writer, fs *pflag.FlagSet, src sources) {
	fmt.Fprintln(w, "# hornbeam's effective configuration (usable as --config)")
	fs.VisitAll(func(f *pflag.Flag) {
		if notInFile[f.Name] || compatFlag(f) {
			return
		}
		from := src[f.Name]
		if from == "" {
			from = "default"
		}
		var val string
		switch sv, slice := f.Value.(pflag.SliceValue); {
		case slice:
			elems := sv.GetSlice()
			q := make([]string, len(elems))
			for i, s := range elems {
				q[i] = tomlQuote(s)
			}
			val = "[" + strings.Join(q, ", ") + "]"
		case f.Value.Type() == "int" || f.Value.Type() == "int64" || f.Value.Type() == "bool":
			val = f.Value.String()
		default: // strings, durations ("1m30s") and sizes, which parse back
			val = tomlQuote(f.Value.String())
		}
		fmt.Fprintf(w, "%s = %s  # %s\n", strings.ReplaceAll(f.Name, "-", "_"), val, from)
	})
}
