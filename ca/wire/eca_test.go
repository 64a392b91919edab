package wire

import (
	"fmt"
	"strings"
	"testing"
)

// ecaTableDoc is the full ECA table of docs/ca-protocol.md section 4
// (name, message number -> code).
const ecaTableDoc = `NORMAL 0→1, MAXIOC 1→10, UKNHOST 2→18,
  UKNSERV 3→26, SOCK 4→34, CONN 5→40, ALLOCMEM 6→48, UKNCHAN 7→56,
  UKNFIELD 8→64, TOLARGE 9→72, TIMEOUT 10→80, NOSUPPORT 11→88,
  STRTOBIG 12→96, DISCONNCHID 13→106, BADTYPE 14→114, CHIDNOTFND 15→123,
  CHIDRETRY 16→131, INTERNAL 17→142, DBLCLFAIL 18→144, GETFAIL 19→152,
  PUTFAIL 20→160, ADDFAIL 21→168, BADCOUNT 22→176, BADSTR 23→186,
  DISCONN 24→192, DBLCHNL 25→200, EVDISALLOW 26→210, BUILDGET 27→216,
  NEEDSFP 28→224, OVEVFAIL 29→232, BADMONID 30→242, NEWADDR 31→248,
  NEWCONN 32→259, NOCACTX 33→264, DEFUNCT 34→278, EMPTYSTR 35→280,
  NOREPEATER 36→288, NOCHANMSG 37→296, DLCKREST 38→304, SERVBEHIND 39→312,
  NOCAST 40→320, BADMASK 41→330, IODONE 42→339, IOINPROGRESS 43→347,
  BADSYNCGRP 44→354, PUTCBINPROG 45→362, NORDACCESS 46→368,
  NOWTACCESS 47→376, ANACHRONISM 48→386, NOSEARCHADDR 49→392,
  NOCONVERT 50→400, BADCHID 51→410, BADFUNCPTR 52→418, ISATTACHED 53→424,
  UNAVAILINSERV 54→432, CHANDESTROY 55→440, BADPRIORITY 56→450,
  NOTTHREADED 57→458, 16KARRAYCLIENT 58→464, CONNSEQTMO 59→472,
  UNRESPTMO 60→480`

// TestECATable checks every ECA code's name, message number, severity and
// success bit against the protocol document.
func TestECATable(t *testing.T) {
	entries := strings.Split(strings.Join(strings.Fields(ecaTableDoc), " "), ", ")
	if len(entries) != 61 {
		t.Fatalf("parsed %d entries", len(entries))
	}
	for _, e := range entries {
		var name string
		var msg, code uint32
		if _, err := fmt.Sscanf(strings.Replace(e, "→", " ", 1), "%s %d %d", &name, &msg, &code); err != nil {
			t.Fatalf("%q: %v", e, err)
		}
		c := ECA(code)
		if !c.Known() || c.Name() != "ECA_"+name || c.Msg() != msg || c.Severity() != code&7 {
			t.Errorf("ECA(%d): Known %v Name %q Msg %d Severity %d; want ECA_%s %d", code, c.Known(), c.Name(), c.Msg(), c.Severity(), name, msg)
		}
		if c.Success() != (code&1 == 1) {
			t.Errorf("%s: Success() = %v", c.Name(), c.Success())
		}
		if s := c.String(); !strings.HasPrefix(s, c.Name()+": ") || len(s) < len(c.Name())+10 || c.Error() != s {
			t.Errorf("%s: String() = %q", c.Name(), s)
		}
	}
	// The constants the codec exports agree with the table.
	for c, want := range map[ECA]string{ECANormal: "ECA_NORMAL", ECAPutFail: "ECA_PUTFAIL", ECANoRdAccess: "ECA_NORDACCESS",
		ECA16KArrayClient: "ECA_16KARRAYCLIENT", ECAUnrespTmo: "ECA_UNRESPTMO", ECABadChID: "ECA_BADCHID"} {
		if c.Name() != want {
			t.Errorf("%d is %s, want %s", uint32(c), c.Name(), want)
		}
	}
	// Codes that are not in the table: a known message number with the wrong
	// severity, and numbers beyond the table.
	for _, code := range []ECA{0, 2, 9, 11, 481, 488, 0xFFFFFFFF} {
		if code.Known() || code.Name() != fmt.Sprintf("ECA(%d)", uint32(code)) || !strings.Contains(code.String(), "unknown") {
			t.Errorf("ECA(%d): Known %v Name %q String %q", uint32(code), code.Known(), code.Name(), code.String())
		}
	}
	if ECASevFatal != 6 || ECASevWarning != 0 || ECASevSuccess != 1 || ECASevError != 2 || ECASevInfo != 3 || ECASevSevere != 4 {
		t.Errorf("severity constants")
	}
}

// TestAlarmNames checks the alarm severity and status names of section 5.1.
func TestAlarmNames(t *testing.T) {
	sevs := []string{"NO_ALARM", "MINOR", "MAJOR", "INVALID"}
	for i, want := range sevs {
		if got := AlarmSeverity(i).String(); got != want {
			t.Errorf("AlarmSeverity(%d) = %q, want %q", i, got, want)
		}
	}
	stats := strings.Fields("NO_ALARM READ WRITE HIHI HIGH LOLO LOW STATE COS COMM TIMEOUT HWLIMIT CALC SCAN LINK SOFT " +
		"BAD_SUB UDF DISABLE SIMM READ_ACCESS WRITE_ACCESS")
	for i, want := range stats {
		if got := AlarmStatus(i).String(); got != want {
			t.Errorf("AlarmStatus(%d) = %q, want %q", i, got, want)
		}
	}
	if StatWriteAccess != 21 || SevInvalid != 3 || StatUDF != 17 || StatHigh != 4 {
		t.Errorf("alarm constants")
	}
	if AlarmSeverity(4).String() != "SEVERITY(4)" || AlarmStatus(22).String() != "STATUS(22)" {
		t.Errorf("out-of-range alarm names")
	}
}
