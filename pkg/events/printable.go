package events

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Printable renders an event body for one line of terminal output: text
// stays as it is, while line breaks, other control characters, terminal
// escape sequences, bidirectional overrides and bytes that are not UTF-8 are
// written as Go escapes (\n, \r, \x1b, \u202e, \xff). A body can then
// neither fake more output lines nor drive the terminal. Backslashes are left
// alone, so a body that already holds the text `\n` prints the same.
func Printable(body []byte) string {
	var b strings.Builder
	b.Grow(len(body))
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, body[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteByte('\t')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.Write(body[i : i+size])
		}
		i += size
	}

	return b.String()
}
