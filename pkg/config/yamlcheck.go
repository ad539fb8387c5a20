package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// errSecondDocument refuses a config file with more than one YAML document:
// only the first would be read, and the others silently ignored.
var errSecondDocument = errors.New("holds more than one YAML document (a '---' line starts a second one); " +
	"put every setting in one document")

// onlyOneDocument reports a second document left in dec after the first.
func onlyOneDocument(dec *yaml.Decoder) error {
	var next yaml.Node
	err := dec.Decode(&next)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}

	return fmt.Errorf("line %d: %w", next.Line, errSecondDocument)
}

// checkWholeNumbers reports every integer field that the YAML document root
// gives a number with a fraction (max_body_bytes: 1.5). The YAML decoder
// would silently truncate it.
func checkWholeNumbers(root *yaml.Node) error {
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}

	return errors.Join(wholeNumbers(root, reflect.TypeFor[Config](), nil)...)
}

func wholeNumbers(n *yaml.Node, t reflect.Type, prefix []string) []error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i].Value, n.Content[i+1]
		f, ok := fieldByTag(t, key)
		if !ok {
			continue // an unknown key is the decoder's to report
		}
		path := append(append([]string(nil), prefix...), key)
		switch {
		case f.Type.Kind() == reflect.Struct:
			errs = append(errs, wholeNumbers(value, f.Type, path)...)
		case isInteger(f.Type) && value.Kind == yaml.ScalarNode && value.ShortTag() == "!!float":
			if v, err := strconv.ParseFloat(value.Value, 64); err != nil || v != math.Trunc(v) || math.Abs(v) > 1<<53 {
				errs = append(errs, fmt.Errorf("%s: line %d: %s is not a whole number",
					strings.Join(path, "."), value.Line, value.Value))
			}
		}
	}

	return errs
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == key {
			return f, true
		}
	}

	return reflect.StructField{}, false
}

func isInteger(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return t != durationType
	}

	return false
}
