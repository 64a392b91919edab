package relay

import (
	"errors"
	"strings"
	"testing"

	"github.com/pvhub/pvhub/ca/wire"
)

func TestParseName(t *testing.T) {
	const p = DefaultPrefix
	tests := []struct {
		full string
		ok   bool
		want Name // Full is filled in from full
	}{
		{"RELAY:temp_f1", true, Name{Base: "temp", Kind: Float, Count: 1}},
		{"RELAY:temp_i1", true, Name{Base: "temp", Kind: Int, Count: 1}},
		{"RELAY:msg_c40", true, Name{Base: "msg", Kind: Char, Count: 40}},
		{"RELAY:msg_c1", true, Name{Base: "msg", Kind: Char, Count: 1}},
		{"RELAY:wf_f1000", true, Name{Base: "wf", Kind: Float, Count: 1000}},
		{"RELAY:p_F100", true, Name{Base: "p", Kind: Float, Buffer: true, Count: 100}},
		{"RELAY:n_I2", true, Name{Base: "n", Kind: Int, Buffer: true, Count: 2}},
		{"RELAY:x_C2", true, Name{Base: "x", Kind: Char, Buffer: true, Count: 2}},
		{"RELAY:log_C1000", true, Name{Base: "log", Kind: Char, Buffer: true, Count: 1000}},
		// The dtype follows the last underscore; <name> may hold _ : and .
		{"RELAY:a_b_f3", true, Name{Base: "a_b", Kind: Float, Count: 3}},
		{"RELAY:a:b.c_f3", true, Name{Base: "a:b.c", Kind: Float, Count: 3}},
		{"RELAY:a.EGU_f3", true, Name{Base: "a.EGU", Kind: Float, Count: 3}},
		{"RELAY:a_f3.EGU_f3", true, Name{Base: "a_f3.EGU", Kind: Float, Count: 3}},
		{"RELAY:__f3", true, Name{Base: "_", Kind: Float, Count: 3}},
		{"RELAY:RELAY:x_f3", true, Name{Base: "RELAY:x", Kind: Float, Count: 3}},
		// Fields.
		{"RELAY:x_f3.EGU", true, Name{Base: "x", Kind: Float, Count: 3, Field: "EGU"}},
		{"RELAY:x_f3.VAL", true, Name{Base: "x", Kind: Float, Count: 3, Field: "VAL"}},
		{"RELAY:x_F3.LLSV", true, Name{Base: "x", Kind: Float, Buffer: true, Count: 3, Field: "LLSV"}},
		{"RELAY:x_c3.DESC", true, Name{Base: "x", Kind: Char, Count: 3, Field: "DESC"}},
		{"RELAY:x_f3.XYZ", false, Name{}},
		{"RELAY:x_f3.egu", false, Name{}},
		{"RELAY:x_f3.", false, Name{}},
		{"RELAY:x_f3.EGU.VAL", false, Name{}},
		{"RELAY:x_f3.NAME", false, Name{}},
		// Counts.
		{"RELAY:x_f0", false, Name{}},
		{"RELAY:x_f007", false, Name{}},
		{"RELAY:x_f07", false, Name{}},
		{"RELAY:x_F1", false, Name{}},
		{"RELAY:x_I1", false, Name{}},
		{"RELAY:x_C1", false, Name{}},
		{"RELAY:x_f", false, Name{}},
		{"RELAY:x_F", false, Name{}},
		{"RELAY:x_f-1", false, Name{}},
		{"RELAY:x_f+1", false, Name{}},
		{"RELAY:x_f1e3", false, Name{}},
		{"RELAY:x_f 1", false, Name{}},
		{"RELAY:x_f1 ", false, Name{}},
		{"RELAY:x_f2147483647", true, Name{Base: "x", Kind: Float, Count: 2147483647}},
		{"RELAY:x_f2147483648", false, Name{}},
		{"RELAY:x_f9999999999", false, Name{}},
		{"RELAY:x_f99999999999999999999", false, Name{}},
		{"RELAY:x_f18446744073709551617", false, Name{}},
		// Dtypes.
		{"RELAY:x_x3", false, Name{}},
		{"RELAY:x_d3", false, Name{}},
		{"RELAY:x_s3", false, Name{}},
		{"RELAY:x_3", false, Name{}},
		{"RELAY:x_ff3", false, Name{}},
		// Prefix and name.
		{"temp_f1", false, Name{}},
		{"relay:temp_f1", false, Name{}},
		{"RELAY", false, Name{}},
		{"", false, Name{}},
		{"RELAY:_f1", false, Name{}},
		{"RELAY:f1", false, Name{}},
		{"RELAY:x", false, Name{}},
		{"RELAY:pvlist", false, Name{}},
		{"RELAY:delpv", false, Name{}},
		// Non-ASCII.
		{"RELAY:température_f1", true, Name{Base: "température", Kind: Float, Count: 1}},
		{"RELAY:温度_I10", true, Name{Base: "温度", Kind: Int, Buffer: true, Count: 10}},
		{"RELAY:x_f١", false, Name{}},     // an Arabic-Indic digit
		{"RELAY:x_f３", false, Name{}},     // a full-width digit
		{"RELAY:x_ｆ3", false, Name{}},     // a full-width f
		{"RELAY:x\xff_f1", false, Name{}}, // invalid UTF-8
		{"RELAY:x\x00_f1", false, Name{}},
		{"RELAY:x\n_f1", false, Name{}},
		{"RELAY:x\x7f_f1", false, Name{}},
		{"RELAY:a b_f1", true, Name{Base: "a b", Kind: Float, Count: 1}},
		// Length.
		{"RELAY:" + strings.Repeat("a", wire.MaxNameSize-9) + "_f1", false, Name{}},
		{"RELAY:" + strings.Repeat("a", wire.MaxNameSize-10) + "_f1", true, Name{Base: strings.Repeat("a", wire.MaxNameSize-10), Kind: Float, Count: 1}},
	}
	for _, tt := range tests {
		got, ok := ParseName(p, tt.full)
		if ok != tt.ok {
			t.Errorf("ParseName(%q) ok = %v, want %v (%+v)", tt.full, ok, tt.ok, got)
			continue
		}
		if !ok {
			if got != (Name{}) {
				t.Errorf("ParseName(%q) = %+v with false", tt.full, got)
			}
			continue
		}
		want := tt.want
		want.Full = tt.full
		if got != want {
			t.Errorf("ParseName(%q) = %+v, want %+v", tt.full, got, want)
		}
	}
}

func TestParseNamePrefixes(t *testing.T) {
	if n, ok := ParseName("5trap:relay:", "5trap:relay:p_F100"); !ok || n.Base != "p" || n.Count != 100 {
		t.Errorf("custom prefix: %+v %v", n, ok)
	}
	if _, ok := ParseName("5trap:relay:", "RELAY:p_F100"); ok {
		t.Error("a name with another prefix parsed")
	}
	if n, ok := ParseName("", "temp_f1"); !ok || n.Base != "temp" {
		t.Errorf("empty prefix: %+v %v", n, ok)
	}
}

func TestNameMethods(t *testing.T) {
	for _, tt := range []struct {
		full, pv string
		typ      wire.DBRType
		value    bool
	}{
		{"RELAY:x_f3", "RELAY:x_f3", wire.DBRDouble, true},
		{"RELAY:x_f3.EGU", "RELAY:x_f3", wire.DBRDouble, false},
		{"RELAY:x_f3.VAL", "RELAY:x_f3", wire.DBRDouble, true},
		{"RELAY:a.b_I20.HIHI", "RELAY:a.b_I20", wire.DBRLong, false},
		{"RELAY:t_c40", "RELAY:t_c40", wire.DBRChar, true},
		{"RELAY:t_C40.DESC", "RELAY:t_C40", wire.DBRChar, false},
	} {
		n, ok := ParseName(DefaultPrefix, tt.full)
		if !ok {
			t.Fatalf("%q does not parse", tt.full)
		}
		if n.PVName() != tt.pv || n.NativeType() != tt.typ || n.IsValue() != tt.value {
			t.Errorf("%q: PVName %q, NativeType %v, IsValue %v", tt.full, n.PVName(), n.NativeType(), n.IsValue())
		}
	}
	if Float.String() != "float" || Int.String() != "int" || Char.String() != "char" || Kind(9).String() != "Kind(9)" {
		t.Error("Kind.String")
	}
}

func TestNameCheck(t *testing.T) {
	n, _ := ParseName(DefaultPrefix, "RELAY:big_F5000")
	if err := n.Check(5000); err != nil {
		t.Errorf("Check(5000) = %v", err)
	}
	if err := n.Check(0); err != nil {
		t.Errorf("Check(0) = %v", err)
	}
	err := n.Check(4999)
	var eca wire.ECA
	if !errors.As(err, &eca) || eca != wire.ECABadCount || !strings.Contains(err.Error(), "4999") {
		t.Errorf("Check(4999) = %v", err)
	}
}

func TestParseService(t *testing.T) {
	for _, tt := range []struct {
		full string
		s    Service
		ok   bool
	}{
		{"RELAY:pvlist", PVList, true},
		{"RELAY:delpv", DelPV, true},
		{"RELAY:pvlist.VAL", 0, false},
		{"RELAY:PVLIST", 0, false},
		{"pvlist", 0, false},
		{"RELAY:x_f1", 0, false},
	} {
		s, ok := ParseService(DefaultPrefix, tt.full)
		if s != tt.s || ok != tt.ok {
			t.Errorf("ParseService(%q) = %v, %v", tt.full, s, ok)
		}
	}
	if PVList.String() != "pvlist" || DelPV.String() != "delpv" {
		t.Error("Service.String")
	}
}

func TestIsField(t *testing.T) {
	for _, f := range []string{"VAL", "EGU", "PREC", "DESC", "HOPR", "LOPR", "DRVH", "DRVL", "HIHI", "HIGH", "LOW", "LOLO", "HHSV", "HSV", "LSV", "LLSV"} {
		if !IsField(f) {
			t.Errorf("IsField(%q) = false", f)
		}
	}
	for _, f := range []string{"", "val", "SEVR", "STAT", "NAME", "RTYP", "NELM"} {
		if IsField(f) {
			t.Errorf("IsField(%q) = true", f)
		}
	}
}
