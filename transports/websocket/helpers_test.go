package websocket

import (
	"encoding/base64"
	"encoding/binary"
)

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
