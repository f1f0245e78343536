package processors

import "testing"

// ErrorClasses is the list the DLQ filter accepts and the docs are held
// to: each class once, each with a meaning, and no "" (a delivered attempt
// has no class, and a filter for it would match nothing dead-lettered).
func TestErrorClassesAreDistinctAndExplained(t *testing.T) {
	seen := map[ErrorClass]bool{}
	for _, c := range ErrorClasses {
		switch {
		case c.Class == ClassNone:
			t.Error("ErrorClasses lists ClassNone")
		case seen[c.Class]:
			t.Errorf("ErrorClasses lists %s twice", c.Class)
		case c.Meaning == "":
			t.Errorf("%s has no meaning", c.Class)
		}
		seen[c.Class] = true
	}
	for _, tc := range []struct {
		class ErrorClass
		known bool
	}{
		{ClassHTTP5xx, true},
		{ClassClientCert, true},
		{ClassDestinationRefused, true},
		{ClassNone, false},
		{"http_5xxx", false},
	} {
		if got := KnownClass(tc.class); got != tc.known {
			t.Errorf("KnownClass(%q) = %v, want %v", tc.class, got, tc.known)
		}
	}
}
