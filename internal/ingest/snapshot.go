package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// An idempotency snapshot is the index as of some events-topic offsets, so
// a start reads only the records after them. The file is
//
//	magic "hookline-idx-1\n"
//	uint16 length + events topic name
//	int64 window (ns), int64 taken at (unix ms)
//	uint32 partitions, then per partition: int32 partition, int64 next offset
//	then per entry: 16-byte key hash, int64 time (unix ms), uint16 length + event id
//	a zero-length terminator: 16 zero bytes, int64 0, uint16 0
//	uint32 CRC-32C of everything before it
//
// all big-endian. It is written to a temporary file and renamed, so a
// crash leaves the previous snapshot.
const snapshotMagic = "hookline-idx-1\n"

var errNoSnapshot = errors.New("no snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeSnapshot writes d, which has read the events topic up to pos, to
// path, and returns the number of keys written. pos must be taken before d
// is read: an entry past pos is read again from the topic, harmlessly.
func writeSnapshot(path, topic string, window time.Duration, now time.Time, pos map[int32]int64, d *dedupe) (int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("create directory of %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("create snapshot: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(tmp, crc), 1<<20)
	var buf []byte
	buf = append(buf, snapshotMagic...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(topic)))
	buf = append(buf, topic...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(window))
	buf = binary.BigEndian.AppendUint64(buf, uint64(now.UnixMilli()))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(pos)))
	for p, off := range pos {
		buf = binary.BigEndian.AppendUint32(buf, uint32(p))
		buf = binary.BigEndian.AppendUint64(buf, uint64(off))
	}
	_, _ = w.Write(buf)
	n := 0
	d.each(func(h keyHash, e seenEntry) {
		buf = append(buf[:0], h[:]...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.at))
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(e.id)))
		buf = append(buf, e.id...)
		_, _ = w.Write(buf)
		n++
	})
	var end [16 + 8 + 2]byte
	_, _ = w.Write(end[:])
	if err := w.Flush(); err != nil {
		_ = tmp.Close()
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := tmp.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		_ = tmp.Close()
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return 0, fmt.Errorf("sync snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("rename snapshot into place: %w", err)
	}
	return n, nil
}

// crcReader checksums what is read through it.
type crcReader struct {
	r   io.Reader
	crc hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

// readSnapshot reads the snapshot at path into a new index, and returns it
// with the offsets it covers. It returns errNoSnapshot if there is none,
// and an error saying why for a snapshot that is corrupt or does not fit:
// another topic or window, or taken longer than a window ago.
func readSnapshot(path, topic string, window time.Duration, now func() time.Time) (*dedupe, map[int32]int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errNoSnapshot
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot: %w", err)
	}
	defer func() { _ = f.Close() }()
	br := bufio.NewReaderSize(f, 1<<20)
	cr := &crcReader{r: br, crc: crc32.New(castagnoli)}
	corrupt := func(what string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("snapshot is truncated in its %s", what)
		}
		return fmt.Errorf("read snapshot %s: %w", what, err)
	}
	buf := make([]byte, len(snapshotMagic)+2)
	if _, err := io.ReadFull(cr, buf); err != nil {
		return nil, nil, corrupt("header", err)
	}
	if string(buf[:len(snapshotMagic)]) != snapshotMagic {
		return nil, nil, errors.New("not an idempotency snapshot, or of another version")
	}
	name := make([]byte, binary.BigEndian.Uint16(buf[len(snapshotMagic):]))
	var head [8 + 8 + 4]byte
	if _, err := io.ReadFull(cr, name); err != nil {
		return nil, nil, corrupt("header", err)
	}
	if _, err := io.ReadFull(cr, head[:]); err != nil {
		return nil, nil, corrupt("header", err)
	}
	if string(name) != topic {
		return nil, nil, fmt.Errorf("snapshot is of topic %q, not %q", name, topic)
	}
	if w := time.Duration(binary.BigEndian.Uint64(head[:8])); w != window {
		return nil, nil, fmt.Errorf("snapshot is of a %v window, not %v", w, window)
	}
	taken := time.UnixMilli(int64(binary.BigEndian.Uint64(head[8:16])))
	if now().Sub(taken) >= window {
		return nil, nil, fmt.Errorf("snapshot was taken at %s, longer than the window ago", taken.UTC().Format(time.RFC3339))
	}
	parts := binary.BigEndian.Uint32(head[16:])
	if parts > 1<<20 {
		return nil, nil, fmt.Errorf("snapshot claims %d partitions", parts)
	}
	covered := make(map[int32]int64, parts)
	var po [12]byte
	for range parts {
		if _, err := io.ReadFull(cr, po[:]); err != nil {
			return nil, nil, corrupt("offsets", err)
		}
		covered[int32(binary.BigEndian.Uint32(po[:4]))] = int64(binary.BigEndian.Uint64(po[4:]))
	}
	d := newDedupe(window, now)
	var entry [16 + 8 + 2]byte
	id := make([]byte, 1<<16)
	for {
		if _, err := io.ReadFull(cr, entry[:]); err != nil {
			return nil, nil, corrupt("entries", err)
		}
		h := keyHash(entry[:16])
		at := int64(binary.BigEndian.Uint64(entry[16:24]))
		n := binary.BigEndian.Uint16(entry[24:])
		if n == 0 {
			if h != (keyHash{}) || at != 0 {
				return nil, nil, errors.New("snapshot has an entry without an event id")
			}
			break
		}
		if _, err := io.ReadFull(cr, id[:n]); err != nil {
			return nil, nil, corrupt("entries", err)
		}
		d.load(h, string(id[:n]), time.UnixMilli(at))
	}
	want := cr.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return nil, nil, corrupt("checksum", err)
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return nil, nil, errors.New("snapshot checksum does not match its content")
	}
	return d, covered, nil
}
