package events

import "testing"

func TestPrintableKeepsTextOnOneHarmlessLine(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, body, want string
	}{
		{name: "plain text is unchanged", body: "Hello World", want: "Hello World"},
		{name: "unicode of every width is unchanged", body: "héllo 日本 🎉 👩‍👩‍👧", want: "héllo 日本 🎉 👩‍👩‍👧"},
		{name: "form-encoded text is unchanged", body: "a=1&b=x+y%21", want: "a=1&b=x+y%21"},
		{name: "leading and trailing spaces and tabs stay", body: " \tpadded\t ", want: " \tpadded\t "},
		{name: "a newline cannot start a fake output line",
			body: "one\nConsumer (Instance: 1) received: spoof", want: `one\nConsumer (Instance: 1) received: spoof`},
		{name: "CRLF is escaped", body: "a\r\nb", want: `a\r\nb`},
		{name: "terminal escape sequences are escaped", body: "\x1b[31mRED\x1b[0m", want: `\x1b[31mRED\x1b[0m`},
		{name: "NUL and DEL are escaped", body: "a\x00b\x7f", want: `a\x00b\x7f`},
		{name: "bytes that are not UTF-8 are escaped", body: "ok\xff\xfe", want: `ok\xff\xfe`},
		{name: "C1 controls are escaped", body: "a\u009bb", want: `a\u009bb`},
		{name: "a bidirectional override is escaped", body: "abc\u202edef", want: `abc\u202edef`},
		{name: "backslashes are left alone", body: `C:\dir\n`, want: `C:\dir\n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Printable([]byte(tt.body)); got != tt.want {
				t.Errorf("Printable(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}
