package wire

import "fmt"

// ECA is a CA status code (ECA_*): the message number shifted left by three,
// ORed with a severity in the low three bits.
type ECA uint32

// ECA severities (the low three bits of a code).
const (
	ECASevWarning = 0
	ECASevSuccess = 1
	ECASevError   = 2
	ECASevInfo    = 3
	ECASevSevere  = 4
	ECASevFatal   = ECASevError | ECASevSevere
)

// The ECA status codes of CA 4.13.
const (
	ECANormal         ECA = 1
	ECAMaxIOC         ECA = 10
	ECAUknHost        ECA = 18
	ECAUknServ        ECA = 26
	ECASock           ECA = 34
	ECAConn           ECA = 40
	ECAAllocMem       ECA = 48
	ECAUknChan        ECA = 56
	ECAUknField       ECA = 64
	ECATooLarge       ECA = 72
	ECATimeout        ECA = 80
	ECANoSupport      ECA = 88
	ECAStrTooBig      ECA = 96
	ECADisconnChID    ECA = 106
	ECABadType        ECA = 114
	ECAChIDNotFnd     ECA = 123
	ECAChIDRetry      ECA = 131
	ECAInternal       ECA = 142
	ECADblClFail      ECA = 144
	ECAGetFail        ECA = 152
	ECAPutFail        ECA = 160
	ECAAddFail        ECA = 168
	ECABadCount       ECA = 176
	ECABadStr         ECA = 186
	ECADisconn        ECA = 192
	ECADblChnl        ECA = 200
	ECAEvDisallow     ECA = 210
	ECABuildGet       ECA = 216
	ECANeedsFP        ECA = 224
	ECAOvEvFail       ECA = 232
	ECABadMonID       ECA = 242
	ECANewAddr        ECA = 248
	ECANewConn        ECA = 259
	ECANoCACtx        ECA = 264
	ECADefunct        ECA = 278
	ECAEmptyStr       ECA = 280
	ECANoRepeater     ECA = 288
	ECANoChanMsg      ECA = 296
	ECADlckRest       ECA = 304
	ECAServBehind     ECA = 312
	ECANoCast         ECA = 320
	ECABadMask        ECA = 330
	ECAIODone         ECA = 339
	ECAIOInProgress   ECA = 347
	ECABadSyncGrp     ECA = 354
	ECAPutCBInProg    ECA = 362
	ECANoRdAccess     ECA = 368
	ECANoWtAccess     ECA = 376
	ECAAnachronism    ECA = 386
	ECANoSearchAddr   ECA = 392
	ECANoConvert      ECA = 400
	ECABadChID        ECA = 410
	ECABadFuncPtr     ECA = 418
	ECAIsAttached     ECA = 424
	ECAUnavailInServ  ECA = 432
	ECAChanDestroy    ECA = 440
	ECABadPriority    ECA = 450
	ECANotThreaded    ECA = 458
	ECA16KArrayClient ECA = 464
	ECAConnSeqTmo     ECA = 472
	ECAUnrespTmo      ECA = 480
)

type ecaInfo struct {
	name string
	text string
}

// ecaTable is indexed by message number (code >> 3). The texts are short
// descriptions written for pvhub's users.
var ecaTable = [...]ecaInfo{
	{"ECA_NORMAL", "normal successful completion"},
	{"ECA_MAXIOC", "maximum simultaneous IOC connections exceeded"},
	{"ECA_UKNHOST", "unknown internet host"},
	{"ECA_UKNSERV", "unknown internet service"},
	{"ECA_SOCK", "unable to allocate a new socket"},
	{"ECA_CONN", "unable to connect to internet host or service"},
	{"ECA_ALLOCMEM", "unable to allocate memory"},
	{"ECA_UKNCHAN", "unknown IO channel"},
	{"ECA_UKNFIELD", "record field specified inappropriate for channel specified"},
	{"ECA_TOLARGE", "the requested transfer is larger than the maximum array size (EPICS_CA_MAX_ARRAY_BYTES)"},
	{"ECA_TIMEOUT", "user-specified timeout on IO operation expired"},
	{"ECA_NOSUPPORT", "feature not supported by this server"},
	{"ECA_STRTOBIG", "the supplied string is unusually large"},
	{"ECA_DISCONNCHID", "the request was ignored because the channel is disconnected"},
	{"ECA_BADTYPE", "the data type specified is invalid"},
	{"ECA_CHIDNOTFND", "remote channel not found"},
	{"ECA_CHIDRETRY", "unable to locate all user-specified channels"},
	{"ECA_INTERNAL", "channel access internal failure"},
	{"ECA_DBLCLFAIL", "the requested local database operation failed"},
	{"ECA_GETFAIL", "could not perform a database value get for that channel"},
	{"ECA_PUTFAIL", "could not perform a database value put for that channel"},
	{"ECA_ADDFAIL", "could not perform a database event add for that channel"},
	{"ECA_BADCOUNT", "count requested inappropriate for that channel"},
	{"ECA_BADSTR", "the supplied string has improper format"},
	{"ECA_DISCONN", "virtual circuit disconnect"},
	{"ECA_DBLCHNL", "identical process variable names on multiple servers"},
	{"ECA_EVDISALLOW", "request inappropriate within subscription (monitor) update callback"},
	{"ECA_BUILDGET", "database value get for that channel failed during channel search"},
	{"ECA_NEEDSFP", "unable to initialize without the vxWorks VX_FP_TASK task option set"},
	{"ECA_OVEVFAIL", "event queue overflow has prevented first pass event after event add"},
	{"ECA_BADMONID", "bad event subscription (monitor) identifier"},
	{"ECA_NEWADDR", "remote channel has new network address"},
	{"ECA_NEWCONN", "new or resumed network connection"},
	{"ECA_NOCACTX", "specified task isn't a member of a CA context"},
	{"ECA_DEFUNCT", "attempt to use a defunct CA feature failed"},
	{"ECA_EMPTYSTR", "the supplied string is empty"},
	{"ECA_NOREPEATER", "unable to spawn the CA repeater thread; auto reconnect will fail"},
	{"ECA_NOCHANMSG", "no channel id match for search reply; search reply ignored"},
	{"ECA_DLCKREST", "reseting dead connection; will try to reconnect"},
	{"ECA_SERVBEHIND", "server (IOC) has fallen behind or is not responding; still waiting"},
	{"ECA_NOCAST", "no internet interface with broadcast available"},
	{"ECA_BADMASK", "invalid event selection mask"},
	{"ECA_IODONE", "IO operations have completed"},
	{"ECA_IOINPROGRESS", "IO operations are in progress"},
	{"ECA_BADSYNCGRP", "invalid synchronous group identifier"},
	{"ECA_PUTCBINPROG", "put callback timed out"},
	{"ECA_NORDACCESS", "read access denied"},
	{"ECA_NOWTACCESS", "write access denied"},
	{"ECA_ANACHRONISM", "requested feature is no longer supported"},
	{"ECA_NOSEARCHADDR", "empty PV search address list"},
	{"ECA_NOCONVERT", "no reasonable data conversion between client and server types"},
	{"ECA_BADCHID", "invalid channel identifier"},
	{"ECA_BADFUNCPTR", "invalid function pointer"},
	{"ECA_ISATTACHED", "thread is already attached to a client context"},
	{"ECA_UNAVAILINSERV", "not supported by attached service"},
	{"ECA_CHANDESTROY", "user destroyed channel"},
	{"ECA_BADPRIORITY", "invalid channel priority"},
	{"ECA_NOTTHREADED", "preemptive callback not enabled; additional threads may not join context"},
	{"ECA_16KARRAYCLIENT", "client's protocol revision does not support transfers exceeding 16k bytes"},
	{"ECA_CONNSEQTMO", "virtual circuit connection sequence aborted"},
	{"ECA_UNRESPTMO", "virtual circuit unresponsive"},
}

// Msg returns the message number of the code.
func (e ECA) Msg() uint32 { return uint32(e) >> 3 }

// Severity returns the severity bits of the code.
func (e ECA) Severity() uint32 { return uint32(e) & 7 }

// Success reports whether the code denotes success (its low bit is set).
func (e ECA) Success() bool { return e&1 != 0 }

// Known reports whether the code is one of the CA 4.13 codes.
func (e ECA) Known() bool {
	m := e.Msg()
	if int(m) >= len(ecaTable) {
		return false
	}
	return ecaCodes[m] == e
}

var ecaCodes = [...]ECA{
	ECANormal, ECAMaxIOC, ECAUknHost, ECAUknServ, ECASock, ECAConn, ECAAllocMem, ECAUknChan,
	ECAUknField, ECATooLarge, ECATimeout, ECANoSupport, ECAStrTooBig, ECADisconnChID, ECABadType,
	ECAChIDNotFnd, ECAChIDRetry, ECAInternal, ECADblClFail, ECAGetFail, ECAPutFail, ECAAddFail,
	ECABadCount, ECABadStr, ECADisconn, ECADblChnl, ECAEvDisallow, ECABuildGet, ECANeedsFP,
	ECAOvEvFail, ECABadMonID, ECANewAddr, ECANewConn, ECANoCACtx, ECADefunct, ECAEmptyStr,
	ECANoRepeater, ECANoChanMsg, ECADlckRest, ECAServBehind, ECANoCast, ECABadMask, ECAIODone,
	ECAIOInProgress, ECABadSyncGrp, ECAPutCBInProg, ECANoRdAccess, ECANoWtAccess, ECAAnachronism,
	ECANoSearchAddr, ECANoConvert, ECABadChID, ECABadFuncPtr, ECAIsAttached, ECAUnavailInServ,
	ECAChanDestroy, ECABadPriority, ECANotThreaded, ECA16KArrayClient, ECAConnSeqTmo, ECAUnrespTmo,
}

// Name returns the code's ECA_* name, or "ECA(n)" for an unknown code.
func (e ECA) Name() string {
	if e.Known() {
		return ecaTable[e.Msg()].name
	}
	return fmt.Sprintf("ECA(%d)", uint32(e))
}

// String returns the name and description, e.g. "ECA_PUTFAIL: could not perform ...".
func (e ECA) String() string {
	if e.Known() {
		return ecaTable[e.Msg()].name + ": " + ecaTable[e.Msg()].text
	}
	return fmt.Sprintf("ECA(%d): unknown status code", uint32(e))
}

// Error makes an ECA usable as an error value.
func (e ECA) Error() string { return e.String() }
