package relay

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pvhub/pvhub/ca/wire"
)

// FuzzParseName checks that ParseName never panics and that what it accepts
// is consistent: the parts rebuild the name, the PV name parses to the same PV,
// and a State made from it reports the same name. The seed corpus is in
// testdata/fuzz/FuzzParseName.
func FuzzParseName(f *testing.F) {
	f.Fuzz(func(t *testing.T, prefix, full string) {
		ParseService(prefix, full)
		n, ok := ParseName(prefix, full)
		if !ok {
			if n != (Name{}) {
				t.Fatalf("ParseName(%q, %q) = %+v with false", prefix, full, n)
			}
			return
		}
		if n.Full != full || !strings.HasPrefix(full, prefix) || len(full) >= wire.MaxNameSize {
			t.Fatalf("ParseName(%q, %q) = %+v", prefix, full, n)
		}
		if n.Base == "" || !utf8.ValidString(n.Base) || n.Count < 1 || n.Buffer && n.Count < 2 || n.Kind > Char {
			t.Fatalf("ParseName(%q, %q) = %+v", prefix, full, n)
		}
		letter := "fic"[n.Kind]
		if n.Buffer {
			letter -= 'a' - 'A'
		}
		pv := prefix + n.Base + "_" + string(letter) + strconv.Itoa(n.Count)
		if n.PVName() != pv {
			t.Fatalf("PVName() = %q, rebuilt %q", n.PVName(), pv)
		}
		if n.Field != "" && (full != pv+"."+n.Field || !IsField(n.Field)) {
			t.Fatalf("field %q of %q", n.Field, full)
		}
		m, ok := ParseName(prefix, pv)
		want := n
		want.Full, want.Field = pv, ""
		if !ok || m != want {
			t.Fatalf("ParseName(%q, %q) = %+v, %v; want %+v", prefix, pv, m, ok, want)
		}
		if _, ok := ParseService(prefix, full); ok {
			t.Fatalf("%q is both a relay name and a service", full)
		}
		s := New(n)
		if s.PVName() != pv || s.Name() != want {
			t.Fatalf("New(%+v): PVName %q, Name %+v", n, s.PVName(), s.Name())
		}
		if sv := s.Save(); sv.Name != pv[len(prefix):] {
			t.Fatalf("saved name %q", sv.Name)
		}
		if _, err := Restore(s.Save(), prefix); err != nil {
			t.Fatalf("Restore: %v", err)
		}
	})
}
