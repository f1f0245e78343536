package envelope

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// idEncoding is base32hex in lower case: its alphabet is in ASCII order, so
// ids sort like the bytes they encode.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewID returns a new event id, "evt_" and 26 characters: 48 bits of the
// millisecond timestamp, then 80 random bits. Ids of different milliseconds
// sort by time; within a millisecond their order is random.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails since Go 1.24
	return "evt_" + idEncoding.EncodeToString(b[:])
}

// CompactID returns the 16 bytes a generated id (one NewID returned)
// encodes, so an index can hold it without its text; ok is false for any
// other id, such as one a client chose.
func CompactID(id string) (b [16]byte, ok bool) {
	const prefix = "evt_"
	if len(id) != len(prefix)+idEncoding.EncodedLen(len(b)) || id[:len(prefix)] != prefix {
		return b, false
	}
	n, err := idEncoding.Decode(b[:], []byte(id[len(prefix):]))
	if err != nil || n != len(b) || idEncoding.EncodeToString(b[:]) != id[len(prefix):] {
		return [16]byte{}, false
	}
	return b, true
}

// IDFromCompact is the id CompactID took apart.
func IDFromCompact(b [16]byte) string { return "evt_" + idEncoding.EncodeToString(b[:]) }
