package flows

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The fast decoder reads the Hubble jsonpb lines that make up nearly all real input
// (a GetFlowsResponse carrying a Flow with an IP layer) straight into a Flow, decoding
// only the fields Flow keeps and checking the rest against the schema without building
// them. protojson builds the whole message (dozens of allocations per line) and was most
// of the time of a file replay.
//
// Correctness rests on one rule: the fast decoder either returns exactly the Event the
// protojson path returns for the line, or declines and the protojson path runs. It
// declines whenever anything is unusual: escapes or non-ASCII bytes in strings, null,
// numbers that are not plain integers, numeric enums, any schema violation, a message
// other than a flow, a flow without an IP layer, unparsable addresses or ports out of
// range. Those lines are rare in practice, and the slow path gives them their exact
// treatment, error messages included. fast_test.go holds the two paths to agreement on
// generated and fixture lines, and FuzzFastDecoder on everything else.
//
// The schema check is driven by the protobuf descriptors, the same ones protojson reads,
// so a field Hubble adds in a newer API module is checked the same way by both paths;
// fields the module does not know are skipped as protojson's DiscardUnknown skips them.

// parseFast decodes line (already trimmed of JSON whitespace) or returns ok=false when
// the protojson path must decide.
func parseFast(line []byte) (Event, bool) {
	d := fastPool.Get().(*fastDecoder)
	ev, ok := d.parse(line)
	putFast(d)
	return ev, ok
}

// putFast returns d to the pool, keeping nothing of the caller's line.
func putFast(d *fastDecoder) {
	d.srcWorkloads, d.dstWorkloads = d.src.workloads[:0], d.dst.workloads[:0]
	d.lineState = lineState{}
	clear(d.elems[:cap(d.elems)])
	fastPool.Put(d)
}

var fastPool = sync.Pool{New: func() any { return &fastDecoder{} }}

// maxInterned bounds a decoder's string table. Namespaces, pod names, labels and node
// names repeat from line to line, so a table this size holds a large cluster's working
// set; when it fills it is emptied, which only costs the allocations it was saving.
const maxInterned = 1 << 18

// maxDepth bounds nesting, as protojson's recursion limit does; deeper input declines.
const maxDepth = 64

// endpointScratch collects one endpoint. e's slices are the Flow's to keep (shared,
// read-only); workloads is reused from line to line.
type endpointScratch struct {
	e         Endpoint
	workloads []Workload
}

// fastDecoder holds the tables that outlive a line and, embedded, one line's state.
// Decoders are pooled.
type fastDecoder struct {
	lineState
	intern internTable
	lists  listTable
	memo   memoTable[Endpoint]
	tails  memoTable[tailRun]
	elems  [][]byte // the elements of the list being read
	days   dayCache
	// Workloads being read, reused from line to line (endpointScratch.workloads).
	srcWorkloads, dstWorkloads []Workload
}

// lineState is what reset clears for each line.
type lineState struct {
	b []byte
	i int

	haveFlow bool
	envNode  string
	envTime  time.Time

	time               time.Time
	lastTS             []byte    // the last timestamp read: the envelope usually repeats the flow's
	lastTime           time.Time // what it read as
	uuid               []byte
	tail               tailState
	captured           uint64 // 1<<fieldID for every field captured so far
	haveIP             bool
	ipSrc, ipDst       []byte
	hasIPSrc, hasIPDst bool
	protocol           string
	sport, dport       uint64
	flags              TCPFlags
	src, dst           endpointScratch
	ep                 *endpointScratch // the endpoint being read
	workload           *Workload        // the workload being read
}

// tailState holds the flow fields that usually follow "destination" in a line and vary
// little from line to line, so that a run of them can be remembered (memoTable).
type tailState struct {
	node, verdict, dropReason, typ, direction string
	isReply, hasIsReply, reply                bool
	srcNames, dstNames                        []string
}

// tailFields are the fields whose capture writes only tailState: a run of members that
// captures nothing else can be remembered.
const tailFields = 1<<fNodeName | 1<<fVerdict | 1<<fDropReasonDesc | 1<<fType | 1<<fTrafficDirection |
	1<<fIsReply | 1<<fReply | 1<<fSourceNames | 1<<fDestinationNames

func (d *fastDecoder) reset(line []byte) {
	// The tables stay where they are: copying the whole decoder showed in profiles.
	d.lineState = lineState{b: line}
	d.src.workloads, d.dst.workloads = d.srcWorkloads[:0], d.dstWorkloads[:0]
}

func (d *fastDecoder) parse(line []byte) (Event, bool) {
	return d.parseInto(line, nil)
}

// parseInto is parse writing the Flow into *a, which the caller reuses from line to line,
// instead of a new allocation; a nil a allocates.
func (d *fastDecoder) parseInto(line []byte, a *flowAlloc) (Event, bool) {
	d.reset(line)
	if !d.object(responseSpec, 0) || d.i != len(d.b) || !d.haveFlow || !d.haveIP {
		return Event{}, false
	}
	return d.event(a)
}

// event assembles the Flow exactly as FromResponse(FromProto(...)) would, in *a (nil: a
// new allocation).
func (d *fastDecoder) event(a *flowAlloc) (Event, bool) {
	src, ok := d.addr(d.ipSrc, d.hasIPSrc)
	if !ok {
		return Event{}, false
	}
	dst, ok := d.addr(d.ipDst, d.hasIPDst)
	if !ok || src.Is4() != dst.Is4() {
		return Event{}, false
	}
	if d.sport > 65535 || d.dport > 65535 {
		return Event{}, false
	}
	if a == nil {
		a = &flowAlloc{}
	}
	f := &a.f
	*f = Flow{
		Time: d.time, NodeName: d.tail.node,
		Verdict: d.tail.verdict, DropReason: d.tail.dropReason, Type: d.tail.typ, TrafficDirection: d.tail.direction,
		Source: d.src.e, Destination: d.dst.e,
		Protocol: d.protocol, SourcePort: uint32(d.sport), DestinationPort: uint32(d.dport), TCPFlags: d.flags,
	}
	f.Source.IP, f.Destination.IP = src, dst
	f.Source.Names, f.Destination.Names = d.tail.srcNames, d.tail.dstNames
	switch {
	case len(d.uuid) == 0:
	case len(d.uuid) <= len(a.uuid):
		// The UUID lives in the Flow's own allocation: one allocation per line instead
		// of two. The string is never written after this, except by the next line when
		// the caller reuses a (FileSource.ReuseFlows), which then owns the Flow only
		// until that line.
		n := copy(a.uuid[:], d.uuid)
		f.UUID = unsafe.String(&a.uuid[0], n)
	default:
		f.UUID = string(d.uuid)
	}
	switch {
	case d.tail.hasIsReply:
		a.reply = d.tail.isReply
		f.IsReply = &a.reply
	case d.tail.reply:
		a.reply = true
		f.IsReply = &a.reply
	}
	if f.Time.IsZero() {
		f.Time = d.envTime
	}
	if f.NodeName == "" {
		f.NodeName = d.envNode
	}
	return Event{Kind: KindFlow, Flow: f}, true
}

// flowAlloc puts a Flow, the bool its IsReply points to and the bytes of its UUID (36 in
// the canonical form) in one allocation.
type flowAlloc struct {
	f     Flow
	reply bool
	uuid  [36]byte
}

// addr parses an IP.source or IP.destination as parseIP does; anything parseIP would
// reject declines, so that the error comes from the protojson path.
func (d *fastDecoder) addr(raw []byte, present bool) (netip.Addr, bool) {
	if !present || len(raw) == 0 {
		return netip.Addr{}, false
	}
	if a, ok := parseIPv4(raw); ok {
		return a, true
	}
	a, err := netip.ParseAddr(string(raw))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseIPv4 reads a dotted quad in the canonical form netip.ParseAddr accepts (no
// leading zeros), without allocating; anything else is left to netip.
func parseIPv4(s []byte) (netip.Addr, bool) {
	var out [4]byte
	part, digits, val := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(val)
			part, digits, val = part+1, 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits == 1 && val == 0) {
			return netip.Addr{}, false
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}

// JSON scanning. Every method reports false to decline; the position is then
// meaningless.

// jsonSpaceTable marks the four whitespace bytes JSON allows.
var jsonSpaceTable = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// plainString marks the bytes a string may hold without the fast decoder declining:
// printable ASCII other than the quote and the backslash.
var plainString = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// wordMasks flags, in the high bit of each byte of w, the quotes and the bytes that
// need a closer look (backslash, control, non-ASCII), with the classic "has zero byte"
// bit tricks. A flag can be spurious only above a genuine one of its mask, so the lowest
// flag of quote|bad is exact, which is all string reads.
func wordMasks(w uint64) (quote, bad uint64) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	quote = (q - ones) &^ q & highs
	bad = ((w-ones*0x20)&^w | (bs-ones)&^bs | w) & highs
	return quote, bad
}

func (d *fastDecoder) ws() {
	// Compact JSON has no whitespace: the first comparison settles nearly every call.
	for d.i < len(d.b) && d.b[d.i] <= ' ' && jsonSpaceTable[d.b[d.i]] {
		d.i++
	}
}

func (d *fastDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *fastDecoder) consume(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// string reads a string token without escapes and returns its content.
func (d *fastDecoder) string() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	start := d.i + 1
	i := start
	// Eight bytes at a time: the first byte that is a quote or needs a closer look
	// (escape, control, non-ASCII) ends the scan, and only a quote ends the string.
	for i+8 <= len(d.b) {
		quote, bad := wordMasks(binary.LittleEndian.Uint64(d.b[i:]))
		if m := quote | bad; m != 0 {
			i += bits.TrailingZeros64(m) / 8
			if d.b[i] != '"' {
				return nil, false
			}
			d.i = i + 1
			return d.b[start:i], true
		}
		i += 8
	}
	for i < len(d.b) && plainString[d.b[i]] {
		i++
	}
	if i >= len(d.b) || d.b[i] != '"' {
		return nil, false
	}
	d.i = i + 1
	return d.b[start:i], true
}

// literal reads true, false or null.
func (d *fastDecoder) literal(word string) bool {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return false
	}
	d.i += len(word)
	return d.i == len(d.b) || !isNumberByte(d.b[d.i]) && !isLetter(d.b[d.i])
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
}
func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
func (d *fastDecoder) at() byte { return d.b[d.i] }

func (d *fastDecoder) boolean() (v, ok bool) {
	switch d.peek() {
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	}
	return false, false
}

// integer reads a JSON number that is a plain integer (no fraction or exponent) and
// fits in bits, signed or not; anything else declines.
func (d *fastDecoder) integer(signed bool, bits uint) (uint64, bool) {
	if d.peek() == 0 {
		return 0, false
	}
	neg := false
	if d.at() == '-' {
		if !signed {
			return 0, false
		}
		neg = true
		d.i++
	}
	start := d.i
	var v uint64
	for d.i < len(d.b) && isDigit(d.b[d.i]) {
		if d.i-start >= 19 {
			return 0, false
		}
		v = v*10 + uint64(d.b[d.i]-'0')
		d.i++
	}
	n := d.i - start
	if n == 0 || n > 1 && d.b[start] == '0' || d.i < len(d.b) && isNumberByte(d.b[d.i]) {
		return 0, false
	}
	limit := uint64(1)<<bits - 1
	if signed {
		limit = uint64(1) << (bits - 1)
		if !neg {
			limit--
		}
	}
	if v > limit {
		return 0, false
	}
	return v, true
}

// timestamp reads the RFC 3339 form Hubble writes, YYYY-MM-DDTHH:MM:SS[.fraction]Z with
// at most nine fraction digits, validated as time.Parse validates it. Offsets other than
// Z, and everything else protojson might still accept, decline.
func (d *fastDecoder) timestamp() (time.Time, bool) {
	s, ok := d.string()
	if !ok || len(s) < 20 {
		return time.Time{}, false
	}
	if string(s) == string(d.lastTS) {
		return d.lastTime, true
	}
	t, ok := d.parseTimestamp(s)
	if ok {
		d.lastTS, d.lastTime = s, t
	}
	return t, ok
}

func (d *fastDecoder) parseTimestamp(s []byte) (time.Time, bool) {
	num := func(from, n int) (int, bool) {
		v := 0
		for _, c := range s[from : from+n] {
			if !isDigit(c) {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	midnight, ok := d.days.get(s)
	if !ok {
		year, ok1 := num(0, 4)
		month, ok2 := num(5, 2)
		day, ok3 := num(8, 2)
		if !(ok1 && ok2 && ok3) || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
			year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
			return time.Time{}, false
		}
		midnight = time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
		d.days.put(s, midnight)
	}
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok4 && ok5 && ok6) || s[13] != ':' || s[16] != ':' || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nanos := 0
	if rest[0] == '.' {
		digits := 0
		for digits+1 < len(rest) && isDigit(rest[digits+1]) {
			digits++
		}
		if digits == 0 || digits > 9 {
			return time.Time{}, false
		}
		frac, _ := num(20, digits)
		for range 9 - digits {
			frac *= 10
		}
		nanos = frac
		rest = rest[1+digits:]
	}
	if len(rest) != 1 || rest[0] != 'Z' {
		return time.Time{}, false
	}
	// The same value, location and representation as time.Date with every field.
	return midnight.Add(time.Duration(hour*3600+minute*60+sec)*time.Second + time.Duration(nanos)), true
}

// dayCache remembers the last date a timestamp named: a capture's lines are mostly of one
// day, and time.Date was a good part of reading a timestamp.
type dayCache struct {
	prefix   [11]byte // "YYYY-MM-DDT", validated
	midnight time.Time
	valid    bool
}

func (c *dayCache) get(s []byte) (time.Time, bool) {
	if c.valid && string(s[:len(c.prefix)]) == string(c.prefix[:]) {
		return c.midnight, true
	}
	return time.Time{}, false
}

func (c *dayCache) put(s []byte, midnight time.Time) {
	copy(c.prefix[:], s)
	c.midnight, c.valid = midnight, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// skip validates and skips any JSON value, as protojson skips an unknown field's.
func (d *fastDecoder) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch d.peek() {
	case '"':
		_, ok := d.string()
		return ok
	case '{':
		d.i++
		if d.consume('}') {
			return true
		}
		for {
			if _, ok := d.string(); !ok || !d.consume(':') || !d.skip(depth+1) {
				return false
			}
			if d.consume(',') {
				continue
			}
			return d.consume('}')
		}
	case '[':
		d.i++
		if d.consume(']') {
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			if d.consume(',') {
				continue
			}
			return d.consume(']')
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.number()
}

// number validates any JSON number.
func (d *fastDecoder) number() bool {
	if d.i < len(d.b) && d.at() == '-' {
		d.i++
	}
	switch {
	case d.i >= len(d.b) || !isDigit(d.at()):
		return false
	case d.at() == '0':
		d.i++
	default:
		for d.i < len(d.b) && isDigit(d.at()) {
			d.i++
		}
	}
	if d.i < len(d.b) && d.at() == '.' {
		d.i++
		if d.i >= len(d.b) || !isDigit(d.at()) {
			return false
		}
		for d.i < len(d.b) && isDigit(d.at()) {
			d.i++
		}
	}
	if d.i < len(d.b) && (d.at() == 'e' || d.at() == 'E') {
		d.i++
		if d.i < len(d.b) && (d.at() == '+' || d.at() == '-') {
			d.i++
		}
		if d.i >= len(d.b) || !isDigit(d.at()) {
			return false
		}
		for d.i < len(d.b) && isDigit(d.at()) {
			d.i++
		}
	}
	return d.i == len(d.b) || !isNumberByte(d.at()) && !isLetter(d.at())
}

// object reads a message: every member is checked for duplicates and oneof conflicts as
// protojson checks them, kept fields are captured, other known fields validated, and
// unknown ones skipped.
func (d *fastDecoder) object(m *msgSpec, depth int) bool {
	if depth > maxDepth || !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	var seen [maxFields / 64]uint64
	var oneofs uint64
	var run tailStart
	for {
		key, ok := d.string()
		if !ok {
			return false
		}
		if d.i < len(d.b) && d.b[d.i] == ':' {
			d.i++
		} else if !d.consume(':') {
			return false
		}
		fs, _ := m.keys.lookup(key)
		if fs == nil && len(key) > 0 && key[0] == '[' {
			// An extension name, which protojson resolves through the registry.
			return false
		}
		if fs == nil {
			if !d.skip(depth + 1) {
				return false
			}
		} else {
			if fs.index >= maxFields || seen[fs.index/64]&(1<<(fs.index%64)) != 0 {
				return false
			}
			seen[fs.index/64] |= 1 << (fs.index % 64)
			if fs.oneof >= 0 {
				if fs.oneof >= 64 || oneofs&(1<<fs.oneof) != 0 {
					return false
				}
				oneofs |= 1 << fs.oneof
			}
			if d.peek() == 'n' { // null: protojson leaves the field unset; rare, decline
				return false
			}
			if fs.id != fNone {
				ok = d.capture(fs, depth+1)
			} else {
				ok = d.value(fs, depth+1)
			}
			if !ok {
				return false
			}
			if fs.id == fDestination {
				// The rest of the flow object may be a remembered run of members.
				key, end := d.tailKey()
				if d.tailFromMemo(key, end, &seen, &oneofs) {
					return true
				}
				run = tailStart{at: d.i, end: end, key: key, seen: seen, oneofs: oneofs, captured: d.captured, ok: true}
			}
		}
		if d.consume(',') {
			continue
		}
		if !d.consume('}') {
			return false
		}
		if run.ok {
			d.rememberTail(run, seen, oneofs)
		}
		return true
	}
}

// tailRun is what the members of a flow object from the end of "destination" to the
// closing brace did: the fields they set (duplicate and oneof checks) and what they
// captured, all of it into tailState.
type tailRun struct {
	seen     [maxFields / 64]uint64
	oneofs   uint64
	captured uint64
	st       tailState
}

// tailStart is the state of a flow object at the end of "destination".
type tailStart struct {
	at, end  int    // where the run starts, and where tailKey guessed it ends
	key      uint64 // tailKey
	seen     [maxFields / 64]uint64
	oneofs   uint64
	captured uint64
	ok       bool
}

// tailFromMemo applies a remembered run of members if the line continues with one, and
// reports whether it did; the flow object is then read to its closing brace.
func (d *fastDecoder) tailFromMemo(key uint64, end int, seen *[maxFields / 64]uint64, oneofs *uint64) bool {
	r, n := d.tails.find(key, d.b[d.i:])
	if r == nil || d.i+n != end {
		return false
	}
	for k := range seen {
		if seen[k]&r.seen[k] != 0 {
			return false // a field the run sets was already set: parse, and decline
		}
	}
	if *oneofs&r.oneofs != 0 {
		return false
	}
	c := r.captured
	if c&(1<<fNodeName) != 0 {
		d.tail.node = r.st.node
	}
	if c&(1<<fVerdict) != 0 {
		d.tail.verdict = r.st.verdict
	}
	if c&(1<<fDropReasonDesc) != 0 {
		d.tail.dropReason = r.st.dropReason
	}
	if c&(1<<fType) != 0 {
		d.tail.typ = r.st.typ
	}
	if c&(1<<fTrafficDirection) != 0 {
		d.tail.direction = r.st.direction
	}
	if c&(1<<fIsReply) != 0 {
		d.tail.isReply, d.tail.hasIsReply = r.st.isReply, r.st.hasIsReply
	}
	if c&(1<<fReply) != 0 {
		d.tail.reply = r.st.reply
	}
	if c&(1<<fSourceNames) != 0 {
		d.tail.srcNames = r.st.srcNames
	}
	if c&(1<<fDestinationNames) != 0 {
		d.tail.dstNames = r.st.dstNames
	}
	d.captured |= c
	d.i += n
	return true
}

// rememberTail remembers the run of members read since start, up to and including the
// flow object's closing brace, unless it captured a field outside tailState (a time, a
// UUID: such runs do not repeat).
func (d *fastDecoder) rememberTail(start tailStart, seen [maxFields / 64]uint64, oneofs uint64) {
	c := d.captured &^ start.captured
	if c&^tailFields != 0 {
		return
	}
	r := tailRun{oneofs: oneofs &^ start.oneofs, captured: c, st: d.tail}
	for k := range seen {
		r.seen[k] = seen[k] &^ start.seen[k]
	}
	if d.i != start.end {
		return // tailKey guessed wrong for this line, and would for its like
	}
	d.tails.add(start.key, d.b[start.at:d.i], r)
}

// tailKey keys the run of members from here to the end of the flow object. The members
// vary late in the run (service, direction, reply, summary), so the key covers all of it,
// up to where the flow object most likely ends: the last brace but one of the line,
// since the envelope's members after the flow (node name, time) hold none. A line where
// that guess is wrong is only read in full.
func (d *fastDecoder) tailKey() (key uint64, end int) {
	last := bytes.LastIndexByte(d.b, '}')
	if last <= d.i {
		return 0, -1
	}
	end = bytes.LastIndexByte(d.b[d.i:last], '}') + 1
	if end <= 0 {
		return 0, -1
	}
	end += d.i
	return hashOf(d.b[d.i:end]), end
}

// value validates a field's value against its descriptor without keeping it.
func (d *fastDecoder) value(fs *fieldSpec, depth int) bool {
	if fs.isMap {
		return false
	}
	if !fs.list {
		return d.single(fs, depth)
	}
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !d.single(fs, depth) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

func (d *fastDecoder) single(fs *fieldSpec, depth int) bool {
	var ok bool
	switch fs.kind {
	case protoreflect.BoolKind:
		_, ok = d.boolean()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		_, ok = d.integer(true, 32)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		_, ok = d.integer(true, 64)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		_, ok = d.integer(false, 32)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		_, ok = d.integer(false, 64)
	case protoreflect.StringKind:
		_, ok = d.string()
	case protoreflect.EnumKind:
		// Any name is fine: unknown ones are discarded. Numbers decline.
		_, ok = d.string()
	case protoreflect.MessageKind:
		switch fs.msg.wkt {
		case wktNone:
			ok = d.object(fs.msg, depth)
		case wktTimestamp:
			_, ok = d.timestamp()
		case wktWrapper:
			ok = d.single(fs.msg.fields[""], depth)
		}
	}
	return ok
}

// capture reads a kept field into the decoder's state.
func (d *fastDecoder) capture(fs *fieldSpec, depth int) bool {
	d.captured |= 1 << fs.id
	switch fs.id {
	case fRespFlow:
		d.haveFlow = true
		return d.object(flowSpec, depth)
	case fRespNodeName:
		s, ok := d.string()
		d.envNode = d.str(s)
		return ok
	case fRespTime:
		t, ok := d.timestamp()
		d.envTime = t
		return ok
	case fTime:
		t, ok := d.timestamp()
		d.time = t
		return ok
	case fUUID:
		s, ok := d.string()
		d.uuid = s
		return ok
	case fNodeName:
		s, ok := d.string()
		d.tail.node = d.str(s)
		return ok
	case fVerdict:
		return d.enum(fs, &d.tail.verdict)
	case fDropReasonDesc:
		return d.enum(fs, &d.tail.dropReason)
	case fType:
		return d.enum(fs, &d.tail.typ)
	case fTrafficDirection:
		return d.enum(fs, &d.tail.direction)
	case fIsReply:
		v, ok := d.boolean()
		d.tail.isReply, d.tail.hasIsReply = v, true
		return ok
	case fReply:
		v, ok := d.boolean()
		d.tail.reply = v
		return ok
	case fIP:
		d.haveIP = true
		return d.object(ipSpec, depth)
	case fIPSource:
		s, ok := d.string()
		d.ipSrc, d.hasIPSrc = s, true
		return ok
	case fIPDestination:
		s, ok := d.string()
		d.ipDst, d.hasIPDst = s, true
		return ok
	case fL4:
		return d.object(l4Spec, depth)
	case fTCP:
		d.protocol = "TCP"
		return d.object(tcpSpec, depth)
	case fUDP:
		d.protocol = "UDP"
		return d.object(udpSpec, depth)
	case fSCTP:
		d.protocol = "SCTP"
		return d.object(sctpSpec, depth)
	case fICMPv4:
		d.protocol = "ICMPv4"
		return d.object(fs.msg, depth)
	case fICMPv6:
		d.protocol = "ICMPv6"
		return d.object(fs.msg, depth)
	case fVRRP:
		d.protocol = "VRRP"
		return d.object(fs.msg, depth)
	case fIGMP:
		d.protocol = "IGMP"
		return d.object(fs.msg, depth)
	case fSourcePort:
		v, ok := d.integer(false, 32)
		d.sport = v
		return ok
	case fDestinationPort:
		v, ok := d.integer(false, 32)
		d.dport = v
		return ok
	case fFlags:
		return d.object(flagsSpec, depth)
	case fSYN, fACK, fFIN, fRST, fPSH:
		v, ok := d.boolean()
		switch fs.id {
		case fSYN:
			d.flags.SYN = v
		case fACK:
			d.flags.ACK = v
		case fFIN:
			d.flags.FIN = v
		case fRST:
			d.flags.RST = v
		default:
			d.flags.PSH = v
		}
		return ok
	case fSource:
		return d.endpoint(&d.src, depth)
	case fDestination:
		return d.endpoint(&d.dst, depth)
	case fSourceNames:
		return d.strings(&d.tail.srcNames)
	case fDestinationNames:
		return d.strings(&d.tail.dstNames)
	case fIdentity:
		v, ok := d.integer(false, 32)
		d.ep.e.Identity = uint32(v)
		return ok
	case fNamespace:
		s, ok := d.string()
		d.ep.e.Namespace = d.str(s)
		return ok
	case fPodName:
		s, ok := d.string()
		d.ep.e.PodName = d.str(s)
		return ok
	case fLabels:
		return d.strings(&d.ep.e.Labels)
	case fWorkloads:
		if !d.consume('[') {
			return false
		}
		if d.consume(']') {
			return true
		}
		for {
			d.ep.workloads = append(d.ep.workloads, Workload{})
			d.workload = &d.ep.workloads[len(d.ep.workloads)-1]
			if d.peek() == 'n' || !d.object(workloadSpec, depth) {
				return false
			}
			if d.consume(',') {
				continue
			}
			return d.consume(']')
		}
	case fWorkloadName:
		s, ok := d.string()
		d.workload.Name = d.str(s)
		return ok
	case fWorkloadKind:
		s, ok := d.string()
		d.workload.Kind = d.str(s)
		return ok
	}
	return false
}

// endpoint reads a source or destination object, from the memo when its bytes have been
// seen before (memoTable).
func (d *fastDecoder) endpoint(ep *endpointScratch, depth int) bool {
	d.ep = ep
	d.ws()
	h := memoKey(d.b[d.i:])
	if v, n := d.memo.find(h, d.b[d.i:]); v != nil {
		ep.e = *v
		d.i += n
		return true
	}
	start := d.i
	if !d.object(endpointSpec, depth) {
		return false
	}
	ep.e.Workloads = cloneWorkloads(ep.workloads)
	d.memo.add(h, d.b[start:d.i], Endpoint{
		Namespace: ep.e.Namespace, PodName: ep.e.PodName, Identity: ep.e.Identity,
		Labels: ep.e.Labels, Workloads: ep.e.Workloads,
	})
	return true
}

func (d *fastDecoder) enum(fs *fieldSpec, dst *string) bool {
	s, ok := d.string()
	if !ok {
		return false
	}
	// An unknown name is discarded by protojson (DiscardUnknown), leaving the enum
	// unset, which reads as "".
	*dst, _ = fs.enum.lookup(s)
	return true
}

// strings reads a list of strings. An endpoint's labels are the same list in every flow
// of its pod, so whole lists are interned by their bytes: one lookup per list instead
// of one per label, which matters because each lookup is a likely cache miss.
func (d *fastDecoder) strings(dst *[]string) bool {
	d.ws()
	start := d.i
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	d.elems = d.elems[:0]
	for {
		s, ok := d.string()
		if !ok {
			return false
		}
		d.elems = append(d.elems, s)
		if d.consume(',') {
			continue
		}
		if !d.consume(']') {
			return false
		}
		break
	}
	*dst = d.lists.get(d, d.b[start:d.i])
	return true
}
