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
var notInFile = map[string]bool{"config": true, "print-config": true, "version": true, "help": true}

func commandLineSources(fs *pflag.FlagSet) sources {
	src := sources{}
	fs.Visit(func(f *pflag.Flag) { src[f.Name] = "command line" })
	return src
}

func envName(flag string) string {
	return "HORNBEAM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from HORNBEAM_<FLAG>.
func applyEnv(fs *pflag.FlagSet, src sources) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
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
		if f == nil || notInFile[name] {
			return fmt.Errorf("--config %s: unknown setting %q (settings are named like the flags: hornbeam --help)", path, k)
		}
		if f.Changed {
			continue // a flag or an environment variable wins
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

// printConfig writes the effective settings as TOML, each with its source.
func printConfig(w io.Writer, fs *pflag.FlagSet, src sources) {
	fmt.Fprintln(w, "# hornbeam's effective configuration (usable as --config)")
	fs.VisitAll(func(f *pflag.Flag) {
		if notInFile[f.Name] {
			return
		}
		from := src[f.Name]
		if from == "" {
			from = "default"
		}
		var val string
		switch f.Value.Type() {
		case "stringSlice":
			sv, _ := fs.GetStringSlice(f.Name)
			q := make([]string, len(sv))
			for i, s := range sv {
				q[i] = fmt.Sprintf("%q", s)
			}
			val = "[" + strings.Join(q, ", ") + "]"
		case "int", "int64", "bool":
			val = f.Value.String()
		default:
			val = fmt.Sprintf("%q", f.Value.String())
		}
		fmt.Fprintf(w, "%s = %s  # %s\n", strings.ReplaceAll(f.Name, "-", "_"), val, from)
	})
}
