package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override. The rest of the name is the
// field's YAML path in upper case joined by "_": MILLRACE_AMQP_URL sets amqp.url.
const EnvPrefix = "MILLRACE_"

// EnvFile names the environment variable that points at a config file.
const EnvFile = EnvPrefix + "CONFIG"

// DefaultFile is read when no file is named and it exists, which is the case
// when a service runs from the repository root.
const DefaultFile = "configs/default.yaml"

// Load builds the effective configuration: defaults, then the file at path
// (or MILLRACE_CONFIG, or DefaultFile when present), then MILLRACE_*
// overrides from environ (os.Environ form). It returns the file it read, ""
// when it read none, and every problem found at once.
func Load(path string, environ []string) (Config, string, error) {
	cfg := Default()

	env := envMap(environ)
	if path == "" {
		path = env[EnvFile]
	}
	if path == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			path = DefaultFile
		}
	}

	if path != "" {
		if err := readFile(path, &cfg); err != nil {
			return Config{}, path, err
		}
	}

	// A value the environment gets wrong is reported with every problem of
	// the rest, not on its own.
	if err := errors.Join(applyEnv(&cfg, env), cfg.Validate()); err != nil {
		return Config{}, path, fmt.Errorf("invalid config:\n%w", bulleted{err})
	}

	return cfg, path, nil
}

func readFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("config file %s does not exist", path)
	}
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if err := checkWholeNumbers(&root); err != nil {
		return fmt.Errorf("config file %s:\n%w", path, bulleted{err})
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(cfg)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err == nil {
		err = onlyOneDocument(dec)
	}
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}

	return nil
}

func envMap(environ []string) map[string]string {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}

	return env
}

// applyEnv sets every field whose MILLRACE_* variable is present and reports
// unparsable values and unknown MILLRACE_* names together.
func applyEnv(cfg *Config, env map[string]string) error {
	known := map[string]bool{EnvFile: true}
	var errs []error

	walk(reflect.ValueOf(cfg).Elem(), nil, func(path []string, v reflect.Value, _ reflect.StructField) {
		name := EnvName(path)
		known[name] = true
		raw, ok := env[name]
		if !ok {
			return
		}
		if err := setFromString(v, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", name, strings.Join(path, "."), err))
		}
	})

	for name := range env {
		if !known[name] {
			errs = append(errs, fmt.Errorf("%s: unknown setting (see configs/default.yaml for the valid ones)", name))
		}
	}
	return errors.Join(errs...)
}

// EnvName is the environment variable that overrides the field at path.
func EnvName(path []string) string {
	return EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
}

// walk calls fn for every leaf field of the struct v with its YAML path.
func walk(v reflect.Value, prefix []string, fn func(path []string, v reflect.Value, f reflect.StructField)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := append(append([]string(nil), prefix...), tag)
		if f.Type.Kind() == reflect.Struct {
			walk(v.Field(i), path, fn)
			continue
		}
		fn(path, v.Field(i), f)
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func setFromString(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 5s or 250ms", raw)
		}
		v.SetInt(int64(d))

		return nil
	}

	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("fields of kind %s cannot be set from the environment", v.Kind())
	}

	return nil
}

// LogValue logs the effective configuration, every field under its YAML
// path, with the password of any URL field masked.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	walk(reflect.ValueOf(c), nil, func(path []string, v reflect.Value, f reflect.StructField) {
		value := v.Interface()
		if f.Tag.Get("redact") == "url" {
			value = RedactURL(v.String())
		}
		attrs = append(attrs, slog.Any(strings.Join(path, "."), value))
	})

	return slog.GroupValue(attrs...)
}

// bulleted prints each of a joined error's lines as a list item.
type bulleted struct{ error }

func (b bulleted) Error() string {
	return "  - " + strings.ReplaceAll(b.error.Error(), "\n", "\n  - ")
}

func (b bulleted) Unwrap() error { return b.error }
