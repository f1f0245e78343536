package app

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The embedded broker (kfake) stores each partition as segment files,
// <base>.dat, holding Kafka record batches back to back, and beside each an
// index, <base>.idx, with one fixed-size entry per batch. The entry holds the
// one fact the batch does not: whether the batch belongs to a transaction
// that was still open when it was written. On a restart kfake reads that
// flag to decide which records a crash left uncommitted: a transaction with
// records but no commit or abort marker is aborted.
//
// kfake writes a batch to the segment and then its entry to the index, in
// two writes. A SIGKILL between them leaves a batch without an entry, and
// kfake loads such a batch as if no transaction had held it: the records of
// a transaction the crash interrupted become visible to read-committed
// consumers, and a stage that redoes the interrupted work hands the same
// records on a second time. Worse, the next batch's entry is then appended
// in the missing entry's place, so every later batch of the segment is
// read with its neighbour's flag.
//
// repairTornIndexes runs before kfake opens the data directory. For each
// partition's last segment (the only one being written; kfake rolls to a
// new segment before it writes) it appends the entry of every batch that
// has none, built from the batch itself: the transactional attribute of a
// data batch is what kfake would have written. It repairs nothing else: a
// batch cut short is truncated by kfake itself.
//
// The entry layout is kfake's (persist.go, version 1); a test compares
// it with what kfake writes, so that an upgrade that changes it fails.
func repairTornIndexes(dir string) (repaired []string, err error) {
	parts, err := os.ReadDir(filepath.Join(dir, "partitions"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range parts {
		if !p.IsDir() {
			continue
		}
		n, err := repairPartitionIndex(filepath.Join(dir, "partitions", p.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		}
		if n > 0 {
			repaired = append(repaired, fmt.Sprintf("%s (%d batches)", p.Name(), n))
		}
	}
	return repaired, errors.Join(errs...)
}

// kfake's index entry: version (1 byte), CRC-32C of the rest (1 byte),
// leader epoch (4, little-endian), max earlier timestamp (8, little-endian;
// kfake recomputes it on load), flags (1; bit 0: in an open transaction).
const (
	kfakeIndexEntrySize = 15
	kfakeIndexVersion   = 1
)

// Record batch header fields (Kafka's RecordBatch, magic 2).
const (
	batchHeaderLen      = 12 // base offset (8) and batch length (4)
	batchEpochAt        = 12 // partition leader epoch, 4 bytes
	batchAttributesAt   = 21 // after epoch (4), magic (1) and CRC (4)
	attrTransactional   = 0x10
	attrControl         = 0x20
	batchMinLen         = batchAttributesAt + 2
	maxPlausibleBatchSz = 1 << 30
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// repairPartitionIndex appends the missing index entries of one partition's
// last segment and returns how many it wrote.
func repairPartitionIndex(pdir string) (int, error) {
	entries, err := os.ReadDir(pdir)
	if err != nil {
		return 0, err
	}
	var bases []int64
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".dat"); ok {
			if base, err := strconv.ParseInt(name, 10, 64); err == nil {
				bases = append(bases, base)
			}
		}
	}
	if len(bases) == 0 {
		return 0, nil
	}
	last := slices.Max(bases)
	segPath := filepath.Join(pdir, strconv.FormatInt(last, 10)+".dat")
	idxPath := filepath.Join(pdir, strconv.FormatInt(last, 10)+".idx")
	seg, err := os.ReadFile(segPath)
	if err != nil {
		return 0, err
	}
	idx, err := os.ReadFile(idxPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	batches := segmentBatches(seg)
	have := len(idx) / kfakeIndexEntrySize
	if have >= len(batches) {
		return 0, nil
	}
	// A torn entry (a write cut short) is rewritten whole.
	idx = idx[:have*kfakeIndexEntrySize]
	for _, b := range batches[have:] {
		idx = append(idx, kfakeIndexEntry(b)...)
	}
	if err := os.WriteFile(idxPath, idx, 0o600); err != nil {
		return 0, err
	}
	return len(batches) - have, nil
}

// segmentBatches splits a segment into its whole record batches; a batch
// cut short at the end is left out.
func segmentBatches(seg []byte) [][]byte {
	var out [][]byte
	for pos := 0; pos+batchHeaderLen <= len(seg); {
		n := int(binary.BigEndian.Uint32(seg[pos+8 : pos+12]))
		if n < batchMinLen-batchHeaderLen || n > maxPlausibleBatchSz || pos+batchHeaderLen+n > len(seg) {
			break
		}
		out = append(out, seg[pos:pos+batchHeaderLen+n])
		pos += batchHeaderLen + n
	}
	return out
}

// kfakeIndexEntry is the entry kfake writes for batch b.
func kfakeIndexEntry(b []byte) []byte {
	var e [kfakeIndexEntrySize]byte
	e[0] = kfakeIndexVersion
	binary.LittleEndian.PutUint32(e[2:6], binary.BigEndian.Uint32(b[batchEpochAt:batchEpochAt+4]))
	attrs := binary.BigEndian.Uint16(b[batchAttributesAt : batchAttributesAt+2])
	if attrs&attrTransactional != 0 && attrs&attrControl == 0 {
		e[14] = 1
	}
	e[1] = byte(crc32.Checksum(e[2:], crc32c))
	return e[:]
}
