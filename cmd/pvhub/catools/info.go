package catools

import (
	"fmt"
	"strings"

	"github.com/pvhub/pvhub/ca/wire"
)

// Channel states as cainfo names them.
const (
	StateNeverConnected      = "never connected"
	StatePreviouslyConnected = "previously connected"
	StateConnected           = "connected"
	StateClosed              = "closed"
)

// Info is what cainfo reports about a channel.
type Info struct {
	Name   string
	State  string       // one of the State* constants
	Host   string       // the server as host:port
	Read   bool         // read access
	Write  bool         // write access
	Native wire.DBRType // the channel's native type, DBRString to DBRDouble
	Count  int          // the channel's element count
}

// String returns cainfo's block for the channel, each line ending in a
// newline:
//
//	T:ro
//	    State:            connected
//	    Host:             127.0.0.1:5064
//	    Access:           read, no write
//	    Native data type: DBF_DOUBLE
//	    Request type:     DBR_DOUBLE
//	    Element count:    1
func (in *Info) String() string {
	var b strings.Builder
	no := func(ok bool) string {
		if ok {
			return ""
		}
		return "no "
	}
	req := "DBR_NO_ACCESS"
	if in.Native <= wire.DBRDouble {
		req = in.Native.String()
	}
	fmt.Fprintf(&b, "%s\n", in.Name)
	fmt.Fprintf(&b, "    State:            %s\n", in.State)
	fmt.Fprintf(&b, "    Host:             %s\n", in.Host)
	fmt.Fprintf(&b, "    Access:           %sread, %swrite\n", no(in.Read), no(in.Write))
	fmt.Fprintf(&b, "    Native data type: %s\n", FieldTypeName(in.Native))
	fmt.Fprintf(&b, "    Request type:     %s\n", req)
	fmt.Fprintf(&b, "    Element count:    %d\n", in.Count)
	return b.String()
}
