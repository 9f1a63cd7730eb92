package soak

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"k8s.io/utils/clock"
)

// Snapshot file layout (all integers big-endian):
//
//	magic    8 bytes  "\x89SGSOAK\n" (the high byte catches 7-bit mangling, the newline
//	                  text-mode conversions)
//	version  uint32   FormatVersion
//	length   uint64   payload length
//	sha256   32 bytes over version, length and payload
//	payload  gzip of the encoded store (see encodeLocked)
//
// The version comes before anything else is trusted, so a future format may change
// everything after it.
var magic = [8]byte{0x89, 'S', 'G', 'S', 'O', 'A', 'K', '\n'}

// FormatVersion is the snapshot format this package writes and reads.
const FormatVersion uint32 = 1

const (
	headerLen = 8 + 4 + 8 + sha256.Size
	// maxPayload bounds what a header may claim, so a corrupt length cannot make Load try to
	// read forever; 4 GiB is far above the largest store the caps allow.
	maxPayload = 4 << 30
)

// Problem classifies why a snapshot could not be loaded.
type Problem string

const (
	ProblemUnreadable  Problem = "unreadable"
	ProblemNotSnapshot Problem = "not-a-snapshot"
	ProblemVersion     Problem = "unsupported-version"
	ProblemTruncated   Problem = "truncated"
	ProblemChecksum    Problem = "checksum-mismatch"
	ProblemCorrupt     Problem = "corrupt"
)

// SnapshotError reports a snapshot that could not be loaded.
type SnapshotError struct {
	// Path is the file, empty for Load from a reader.
	Path    string
	Problem Problem
	// Version is the version the file claims, for ProblemVersion.
	Version uint32
	// MovedTo is where LoadFile moved the file aside, when it did.
	MovedTo string
	Err     error
}

func (e *SnapshotError) Error() string {
	s := "soak snapshot"
	if e.Path != "" {
		s += " " + e.Path
	}
	s += ": " + string(e.Problem)
	if e.Problem == ProblemVersion {
		s += fmt.Sprintf(" %d (this build reads %d)", e.Version, FormatVersion)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.MovedTo != "" {
		s += " (moved aside to " + e.MovedTo + ")"
	}
	return s
}

func (e *SnapshotError) Unwrap() error { return e.Err }

// Save writes a snapshot of the store to w and records its time as the heartbeat: a later
// Load treats the time from then until the load as shadowgate-down. The store is locked only
// while its content is encoded, not while it is compressed and written.
func (s *Store) Save(w io.Writer) error {
	s.mu.Lock()
	s.heartbeat = s.clock.Now().UnixNano()
	raw := s.encodeLocked()
	s.mu.Unlock()

	var payload bytes.Buffer
	zw := gzip.NewWriter(&payload)
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("compress soak snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress soak snapshot: %w", err)
	}
	hdr := make([]byte, headerLen)
	copy(hdr, magic[:])
	binary.BigEndian.PutUint32(hdr[8:], FormatVersion)
	binary.BigEndian.PutUint64(hdr[12:], uint64(payload.Len()))
	sum := checksum(hdr[8:20], payload.Bytes())
	copy(hdr[20:], sum[:])
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("write soak snapshot: %w", err)
	}
	if _, err := w.Write(payload.Bytes()); err != nil {
		return fmt.Errorf("write soak snapshot: %w", err)
	}
	return nil
}

func checksum(versionAndLength, payload []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(versionAndLength)
	h.Write(payload)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// SaveFile writes a snapshot to path atomically: a reader (or a crash) sees the old file or
// the new one, never a mix. The temporary file lives in the same directory so the rename
// stays on one filesystem, and the directory is synced so the rename itself is durable.
func (s *Store) SaveFile(path string) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save soak snapshot %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = s.Save(f); err != nil {
		return fmt.Errorf("save soak snapshot %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save soak snapshot %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save soak snapshot %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save soak snapshot %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save soak snapshot %s: open directory: %w", path, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("save soak snapshot %s: sync directory: %w", path, err)
	}
	return nil
}

// Load reads a snapshot written by Save. Errors are *SnapshotError. The time between the
// snapshot's heartbeat and the clock's now is recorded as a shadowgate-down gap in every
// namespace. When opts keep a longer window than the snapshot's, tracking is moved up to where
// the retained data begins, so a gate cannot count expired history as clean.
func Load(r io.Reader, opts Options, clk clock.PassiveClock) (*Store, error) {
	s, err := New(opts, clk)
	if err != nil {
		return nil, err
	}
	raw, err := readSnapshot(r)
	if err != nil {
		return nil, err
	}
	window, err := s.decode(raw)
	if err != nil {
		return nil, &SnapshotError{Problem: ProblemCorrupt, Err: err}
	}
	now := clk.Now().UnixNano()
	if window < opts.Window && s.heartbeat != 0 {
		retained := hourOf(s.heartbeat-int64(window)) * nsPerHour
		for _, d := range s.ns {
			d.since = max(d.since, retained)
		}
	}
	if s.heartbeat != 0 && now > s.heartbeat {
		down := gapRec{start: s.heartbeat, end: now, reason: GapShadowgateDown, source: "shadowgate",
			message: "not running since the snapshot at " + unixTime(s.heartbeat).Format(time.RFC3339)}
		for _, d := range s.ns {
			s.addGaps(d, down)
		}
	}
	return s, nil
}

func readSnapshot(r io.Reader) ([]byte, error) {
	hdr := make([]byte, headerLen)
	n, err := io.ReadFull(r, hdr)
	switch {
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, &SnapshotError{Problem: ProblemUnreadable, Err: err}
	case n >= 8 && !bytes.Equal(hdr[:8], magic[:]):
		return nil, &SnapshotError{Problem: ProblemNotSnapshot, Err: errors.New("bad magic")}
	case n < 12 && bytes.HasPrefix(magic[:], hdr[:min(n, 8)]):
		return nil, &SnapshotError{Problem: ProblemTruncated, Err: fmt.Errorf("%d bytes, header is %d", n, headerLen)}
	case n < 12:
		return nil, &SnapshotError{Problem: ProblemNotSnapshot, Err: errors.New("bad magic")}
	}
	if v := binary.BigEndian.Uint32(hdr[8:]); v != FormatVersion {
		return nil, &SnapshotError{Problem: ProblemVersion, Version: v}
	}
	if n < headerLen {
		return nil, &SnapshotError{Problem: ProblemTruncated, Err: fmt.Errorf("%d bytes, header is %d", n, headerLen)}
	}
	length := binary.BigEndian.Uint64(hdr[12:])
	if length > maxPayload {
		return nil, &SnapshotError{Problem: ProblemCorrupt, Err: fmt.Errorf("payload length %d exceeds %d", length, maxPayload)}
	}
	payload, err := io.ReadAll(io.LimitReader(r, int64(length)+1))
	switch {
	case err != nil:
		return nil, &SnapshotError{Problem: ProblemUnreadable, Err: err}
	case uint64(len(payload)) < length:
		return nil, &SnapshotError{Problem: ProblemTruncated, Err: fmt.Errorf("payload is %d of %d bytes", len(payload), length)}
	case uint64(len(payload)) > length:
		return nil, &SnapshotError{Problem: ProblemCorrupt, Err: fmt.Errorf("data after the %d-byte payload", length)}
	}
	if sum := checksum(hdr[8:20], payload); !bytes.Equal(sum[:], hdr[20:headerLen]) {
		return nil, &SnapshotError{Problem: ProblemChecksum, Err: errors.New("sha256 does not match the content")}
	}
	zr, err := gzip.NewReader(bytes.NewReader(payload))
	if err != nil {
		return nil, &SnapshotError{Problem: ProblemCorrupt, Err: err}
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, &SnapshotError{Problem: ProblemCorrupt, Err: err}
	}
	return raw, nil
}

// LoadFile loads the snapshot at path. It always returns a usable store unless opts or clk are
// invalid:
//   - the file does not exist (first start): an empty store, and an error matching
//     fs.ErrNotExist;
//   - the file cannot be used (unreadable, corrupt, truncated, another version): it is moved
//     aside to path.corrupt-<unix seconds> so nothing overwrites it, and an empty store is
//     returned with a *SnapshotError. That store remembers the loss: a namespace tracked in it
//     cannot claim history from before now, and gets a snapshot-lost gap for what it claims.
func LoadFile(path string, opts Options, clk clock.PassiveClock) (*Store, error) {
	fresh, err := New(opts, clk)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, fmt.Errorf("soak snapshot %s: %w", path, err)
	}
	var s *Store
	if err == nil {
		s, err = Load(f, opts, clk)
		f.Close()
		if err == nil {
			return s, nil
		}
	} else {
		err = &SnapshotError{Problem: ProblemUnreadable, Err: err}
	}
	var se *SnapshotError
	if !errors.As(err, &se) {
		se = &SnapshotError{Problem: ProblemUnreadable, Err: err}
	}
	se.Path = path
	now := clk.Now()
	aside := path + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
	if rerr := os.Rename(path, aside); rerr == nil {
		se.MovedTo = aside
	} else {
		se.Err = errors.Join(se.Err, fmt.Errorf("could not move it aside: %w", rerr))
	}
	fresh.snapshotLost = now.UnixNano()
	fresh.snapshotLostDetail = se.Error()
	return fresh, se
}

// encodeLocked encodes the store (v1):
//
//	uvarint window hours; varint heartbeat; varint snapshotLost; string snapshotLostDetail
//	uvarint #peers, each 5 strings; uvarint #protocols, strings; uvarint #reasons, strings
//	uvarint #namespaces, each:
//	  string name; varint since
//	  uvarint #edges, each: uvarint src, dst; varint port; uvarint proto; byte flags (1 =
//	    uncovered); uvarint reason; varint first; uvarint last-first; uvarint len, hours
//	  lost, overflow: uvarint #buckets, each varint hour, uvarint count
//	  uvarint #gaps, each varint start; uvarint end-start; strings reason, source, node, message
//	  uvarint #open gaps, each strings source, reason, node; varint start; string message
//
// Peer and reason ids are renumbered densely, so freed ids are not written.
func (s *Store) encodeLocked() []byte {
	s.sweep()
	b := make([]byte, 0, 256+s.edgeCount*96)
	b = binary.AppendUvarint(b, uint64(s.opts.Window/time.Hour))
	b = binary.AppendVarint(b, s.heartbeat)
	b = binary.AppendVarint(b, s.snapshotLost)
	b = appendString(b, s.snapshotLostDetail)

	peerIDs := dense(len(s.peers), s.freePeers)
	b = binary.AppendUvarint(b, uint64(len(s.peers)-len(s.freePeers)))
	for id, p := range s.peers {
		if peerIDs[id] != 0 {
			b = appendString(b, p.Namespace)
			b = appendString(b, p.Workload)
			b = appendString(b, p.Kind)
			b = appendString(b, p.CIDR)
			b = appendString(b, p.Node)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.protos)))
	for _, p := range s.protos {
		b = appendString(b, p)
	}
	reasonIDs := dense(len(s.reasons), s.freeRsns)
	b = binary.AppendUvarint(b, uint64(len(s.reasons)-len(s.freeRsns)))
	for id, r := range s.reasons {
		if reasonIDs[id] != 0 {
			b = appendString(b, r)
		}
	}

	names := make([]string, 0, len(s.ns))
	for n := range s.ns {
		names = append(names, n)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		d := s.ns[n]
		b = appendString(b, d.name)
		b = binary.AppendVarint(b, d.since)
		b = binary.AppendUvarint(b, uint64(len(d.edges)))
		for i := range d.edges {
			e := &d.edges[i]
			b = binary.AppendUvarint(b, uint64(peerIDs[e.src]-1))
			b = binary.AppendUvarint(b, uint64(peerIDs[e.dst]-1))
			b = binary.AppendVarint(b, int64(e.port))
			b = binary.AppendUvarint(b, uint64(e.proto))
			var flags byte
			if e.uncovered {
				flags = 1
			}
			b = append(b, flags)
			b = binary.AppendUvarint(b, uint64(reasonIDs[e.reason]-1))
			b = binary.AppendVarint(b, e.first)
			b = binary.AppendUvarint(b, uint64(e.last-e.first))
			b = binary.AppendUvarint(b, uint64(len(e.hours)))
			b = append(b, e.hours...)
		}
		b = appendBuckets(b, d.lost)
		b = appendBuckets(b, d.overflow)
		b = binary.AppendUvarint(b, uint64(len(d.gaps)))
		for _, g := range d.gaps {
			b = binary.AppendVarint(b, g.start)
			b = binary.AppendUvarint(b, uint64(g.end-g.start))
			b = appendString(b, string(g.reason))
			b = appendString(b, g.source)
			b = appendString(b, g.node)
			b = appendString(b, g.message)
		}
		keys := make([]openKey, 0, len(d.open))
		for k := range d.open {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y openKey) int {
			return cmp.Or(cmp.Compare(x.source, y.source), cmp.Compare(x.reason, y.reason), cmp.Compare(x.node, y.node))
		})
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			o := d.open[k]
			b = appendString(b, k.source)
			b = appendString(b, string(k.reason))
			b = appendString(b, k.node)
			b = binary.AppendVarint(b, o.start)
			b = appendString(b, o.message)
		}
	}
	return b
}

// dense maps ids not in free to 1-based dense ids (0 = freed).
func dense(n int, free []uint32) []uint32 {
	out := make([]uint32, n)
	for _, id := range free {
		out[id] = ^uint32(0)
	}
	next := uint32(1)
	for id := range out {
		if out[id] == ^uint32(0) {
			out[id] = 0
			continue
		}
		out[id] = next
		next++
	}
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBuckets(b []byte, hs []hourCount) []byte {
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = binary.AppendVarint(b, h.hour)
		b = binary.AppendUvarint(b, h.count)
	}
	return b
}

// decoder reads the encoding; the first error sticks and every later read returns zero
// values, so decode can read straight through and check once per record.
type decoder struct {
	b   []byte
	off int
	err error
}

func (r *decoder) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

func (r *decoder) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.off += n
	return v
}

func (r *decoder) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.off += n
	return v
}

func (r *decoder) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("length %d past the end", n)
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *decoder) string() string { return string(r.bytes()) }

// count reads a number of records, each at least minSize bytes, so a corrupt count cannot
// make decode allocate more than the input justifies.
func (r *decoder) count(what string, minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64((len(r.b)-r.off)/minSize) {
		r.fail("%d %s cannot fit in the %d bytes left", n, what, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

func (r *decoder) buckets(what string) []hourCount {
	n := r.count(what, 2)
	var hs []hourCount
	for i := 0; i < n && r.err == nil; i++ {
		h := hourCount{hour: r.varint(), count: r.uvarint()}
		if r.err == nil && (h.count == 0 || (i > 0 && h.hour <= hs[i-1].hour)) {
			r.fail("%s bucket %d out of order or empty", what, i)
		}
		hs = append(hs, h)
	}
	return hs
}

// decode fills an empty store from raw and returns the window it was written with.
func (s *Store) decode(raw []byte) (time.Duration, error) {
	r := &decoder{b: raw}
	windowHours := r.uvarint()
	if r.err == nil && (windowHours == 0 || windowHours > 1<<20) {
		r.fail("window of %d hours", windowHours)
	}
	window := time.Duration(windowHours) * time.Hour
	s.heartbeat = r.varint()
	s.snapshotLost = r.varint()
	s.snapshotLostDetail = r.string()

	np := r.count("peers", 5)
	s.peers = make([]Peer, 0, np)
	for i := 0; i < np && r.err == nil; i++ {
		p := Peer{Namespace: r.string(), Workload: r.string(), Kind: r.string(), CIDR: r.string(), Node: r.string()}
		if _, dup := s.peerIDs[p]; dup && r.err == nil {
			r.fail("peer %d repeated", i)
		}
		s.peerIDs[p] = uint32(i)
		s.peers = append(s.peers, p)
	}
	nproto := r.count("protocols", 1)
	if r.err == nil && (nproto == 0 || nproto > 0xffff) {
		r.fail("%d protocols", nproto)
	}
	s.protos, s.protoIDs = s.protos[:0], map[string]uint16{}
	for i := 0; i < nproto && r.err == nil; i++ {
		p := r.string()
		if _, dup := s.protoIDs[p]; dup || (i == 0) != (p == "") {
			r.fail("protocol %d %q repeated or misplaced", i, p)
		}
		s.protoIDs[p] = uint16(i)
		s.protos = append(s.protos, p)
	}
	nr := r.count("reasons", 1)
	s.reasons, s.reasonIDs = s.reasons[:0], map[string]uint32{}
	for i := 0; i < nr && r.err == nil; i++ {
		reason := r.string()
		if _, dup := s.reasonIDs[reason]; dup || (i == 0) != (reason == "") {
			r.fail("reason %d %q repeated or misplaced", i, reason)
		}
		s.reasonIDs[reason] = uint32(i)
		s.reasons = append(s.reasons, reason)
	}
	if r.err == nil && nr == 0 {
		r.fail("no reasons table")
	}

	nns := r.count("namespaces", 4)
	var hs []hourCount
	for i := 0; i < nns && r.err == nil; i++ {
		d := newNSData(r.string(), r.varint())
		if _, dup := s.ns[d.name]; dup && r.err == nil {
			r.fail("namespace %q repeated", d.name)
		}
		s.ns[d.name] = d
		ne := r.count("edges", 10)
		d.edges = make([]edge, 0, ne)
		for j := 0; j < ne && r.err == nil; j++ {
			src, dst, port, proto := r.uvarint(), r.uvarint(), r.varint(), r.uvarint()
			var flags byte
			if r.err == nil && r.off < len(r.b) {
				flags = r.b[r.off]
				r.off++
			} else {
				r.fail("edge %d: no flags", j)
			}
			reason, first, span := r.uvarint(), r.varint(), r.uvarint()
			hours := r.bytes()
			if r.err != nil {
				break
			}
			e := edge{ekey: ekey{src: uint32(src), dst: uint32(dst), port: int32(port), proto: uint16(proto)},
				uncovered: flags == 1, reason: uint32(reason), first: first, last: first + int64(span),
				hours: append([]byte(nil), hours...)}
			var err error
			hs, err = decodeHours(hours, hs[:0])
			switch {
			case src >= uint64(len(s.peers)) || dst >= uint64(len(s.peers)) || proto >= uint64(len(s.protos)) ||
				reason >= uint64(len(s.reasons)) || port != int64(int32(port)) || flags > 1 || span > 1<<62:
				r.fail("namespace %q edge %d: field out of range", d.name, j)
			case err != nil:
				r.fail("namespace %q edge %d: %v", d.name, j, err)
			case len(hs) == 0 || hs[len(hs)-1].hour != hourOf(e.last) || hs[0].hour < hourOf(e.first):
				r.fail("namespace %q edge %d: hour buckets disagree with first/last seen", d.name, j)
			}
			if _, dup := d.index.get(d.edges, e.ekey); dup && r.err == nil {
				r.fail("namespace %q edge %d repeated", d.name, j)
			}
			s.addEdge(d, e)
		}
		d.lost = r.buckets("lost")
		d.overflow = r.buckets("overflow")
		ng := r.count("gaps", 6)
		for j := 0; j < ng && r.err == nil; j++ {
			start, span := r.varint(), r.uvarint()
			g := gapRec{start: start, end: start + int64(span), reason: GapReason(r.string()), source: r.string(),
				node: r.string(), message: r.string()}
			if r.err == nil && (span == 0 || span > 1<<62 || g.reason == "") {
				r.fail("namespace %q gap %d invalid", d.name, j)
			}
			d.gaps = append(d.gaps, g)
		}
		d.gaps = normalizeGaps(d.gaps)
		no := r.count("open gaps", 5)
		for j := 0; j < no && r.err == nil; j++ {
			k := openKey{source: r.string(), reason: GapReason(r.string()), node: r.string()}
			o := openGap{start: r.varint(), message: r.string()}
			if _, dup := d.open[k]; (dup || k.reason == "") && r.err == nil {
				r.fail("namespace %q open gap %d invalid", d.name, j)
			}
			d.open[k] = o
		}
	}
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes after the last namespace", len(r.b)-r.off)
	}
	return window, r.err
}
