package heatmap

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

const (
	hotPID  = 100
	coldPID = 200
	ms      = int64(time.Millisecond)
	sec     = int64(time.Second)
)

// phased builds a 5 s cpu capture: the "hot" stack sampled every 5 ms in
// seconds 2 and 3 at offsets 0-200 ms only, the "cold" stack (another
// process) at offsets 500-900 ms of every second, and idle samples
// everywhere. It returns the capture and the number of hot samples.
func phased(t testing.TB) (*capture.Capture, int64) {
	t.Helper()
	b := capture.NewBuilder(capture.Meta{
		Type:       capture.CPU,
		Start:      time.Unix(1700000000, 250_000_000),
		Duration:   5 * time.Second,
		Timestamps: true,
	})
	stack := func(names ...string) uint32 {
		ids := []uint32{b.Frame(capture.Frame{Name: names[0], Kind: capture.KindProcess})}
		for _, n := range names[1:] {
			ids = append(ids, b.Frame(capture.Frame{Name: n}))
		}
		return b.Stack(ids)
	}
	hot := stack("app", "main", "hot_loop")
	cold := stack("other", "main", "cold_loop")
	idle := stack("swapper", "cpu_idle")
	var hotN int64
	for s := int64(0); s < 5; s++ {
		for off := int64(0); off < 1000; off += 5 {
			// +1 ms keeps samples off the cell boundaries, which float
			// seconds in a Query could round either way.
			ts := s*sec + off*ms + ms
			switch {
			case (s == 2 || s == 3) && off < 200:
				b.Add(capture.Event{Time: ts, Value: 1, Stack: hot, PID: hotPID, TID: hotPID, CPU: 0})
				hotN++
			case off >= 500 && off < 900:
				b.Add(capture.Event{Time: ts, Value: 1, Stack: cold, PID: coldPID, TID: coldPID + 1, CPU: 1})
			}
			b.Add(capture.Event{Time: ts + 2*ms, Value: 1, Stack: idle, CPU: 1, Flags: capture.FlagIdle})
		}
	}
	return b.Capture(), hotN
}

func TestHotCellsOnly(t *testing.T) {
	c, hotN := phased(t)
	h, err := Compute(c, capture.Query{PIDs: []uint32{hotPID}}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if h.Columns != 5 || h.Rows != 50 || h.ColumnSeconds != 1 || h.Unit != "samples" {
		t.Fatalf("got %d columns x %d rows of %gs in %q, want 5 x 50 of 1s in samples", h.Columns, h.Rows, h.ColumnSeconds, h.Unit)
	}
	if h.Start != 1700000000.25 {
		t.Errorf("got start %f, want 1700000000.25", h.Start)
	}
	var sum int64
	for col := range h.Values {
		for row, v := range h.Values[col] {
			sum += v
			// 20 ms cells, a sample every 5 ms: 4 per cell in rows 0-9
			// (0-200 ms) of columns 2 and 3, nothing anywhere else.
			want := int64(0)
			if (col == 2 || col == 3) && row < 10 {
				want = 4
			}
			if v != want {
				t.Errorf("cell [%d][%d] = %d, want %d", col, row, v, want)
			}
		}
	}
	if sum != hotN || h.Max != 4 {
		t.Errorf("got sum %d max %d, want %d and 4", sum, h.Max, hotN)
	}
}

func TestFilters(t *testing.T) {
	c, hotN := phased(t)
	coldN := int64(5 * 80)
	idleN := int64(5 * 200)
	tests := []struct {
		name string
		q    capture.Query
		want int64
	}{
		{"default excludes idle", capture.Query{}, hotN + coldN},
		{"idle included", capture.Query{IncludeIdle: true}, hotN + coldN + idleN},
		{"pid", capture.Query{PIDs: []uint32{coldPID}}, coldN},
		{"tid", capture.Query{TIDs: []uint32{coldPID + 1}}, coldN},
		{"comm", capture.Query{Comm: "app"}, hotN},
		{"cpu 0", capture.Query{CPUs: []int{0}}, hotN},
		{"cpu 1 with idle", capture.Query{CPUs: []int{1}, IncludeIdle: true}, coldN + idleN},
		{"range is ignored", capture.Query{From: 2, To: 2.1}, hotN + coldN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Compute(c, tt.q, 50)
			if err != nil {
				t.Fatal(err)
			}
			if got := total(h); got != tt.want {
				t.Errorf("got total %d, want %d", got, tt.want)
			}
			if h.Columns != 5 {
				t.Errorf("got %d columns, want 5 whatever the filter", h.Columns)
			}
		})
	}
}

// TestRowsAndRanges checks, for every offered row count, that each cell's
// value is exactly what a range flame graph over that cell's time range
// counts: the heatmap and the range selection agree.
func TestRowsAndRanges(t *testing.T) {
	c, hotN := phased(t)
	for _, rows := range AllowedRows {
		h, err := Compute(c, capture.Query{}, rows)
		if err != nil {
			t.Fatalf("rows %d: %v", rows, err)
		}
		if h.Rows != rows || len(h.Values) != h.Columns {
			t.Fatalf("rows %d: got %d rows, %d value columns for %d columns", rows, h.Rows, len(h.Values), h.Columns)
		}
		var hotCells int64
		for col := range h.Values {
			if len(h.Values[col]) != rows {
				t.Fatalf("rows %d: column %d has %d values", rows, col, len(h.Values[col]))
			}
			for row, v := range h.Values[col] {
				from, to := cellRange(h, col, row)
				var n int64
				for _, sv := range c.Aggregate(capture.Query{From: from, To: to}) {
					n += sv.Count
				}
				if n != v {
					t.Errorf("rows %d: cell [%d][%d] (%.4f-%.4fs) = %d, range flame graph counts %d", rows, col, row, from, to, v, n)
				}
				if (col == 2 || col == 3) && to <= 0.21+float64(col) {
					hotCells += v
				}
			}
		}
		if hotCells != hotN {
			t.Errorf("rows %d: cells of the first 200 ms of seconds 2-3 hold %d samples, want %d", rows, hotCells, hotN)
		}
	}
}

func TestRangeFlameGraph(t *testing.T) {
	c, hotN := phased(t)
	for _, r := range [][2]float64{{2, 2.2}, {3, 3.2}} {
		var n int64
		for _, sv := range c.Aggregate(capture.Query{From: r[0], To: r[1]}) {
			stack := strings.Join(c.FoldedStack(sv.Stack), ";")
			if stack != "app;main;hot_loop" {
				t.Errorf("range %v: unexpected stack %q (%d samples)", r, stack, sv.Value)
			}
			n += sv.Value
		}
		if n != hotN/2 {
			t.Errorf("range %v: %d samples, want %d", r, n, hotN/2)
		}
	}
	// A range over the hot window and the cold one has both stacks.
	stacks := map[string]int64{}
	for _, sv := range c.Aggregate(capture.Query{From: 2, To: 3}) {
		stacks[strings.Join(c.FoldedStack(sv.Stack), ";")] += sv.Value
	}
	if stacks["app;main;hot_loop"] != hotN/2 || stacks["other;main;cold_loop"] != 80 || len(stacks) != 2 {
		t.Errorf("range 2-3: got %v, want 40 hot and 80 cold samples", stacks)
	}
}

func TestOffCPUSpread(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.OffCPU, Duration: 6 * time.Second, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), b.Frame(capture.Frame{Name: capture.FrameBlocked, Kind: capture.KindSynthetic})})
	// 30 ms from 1.990 s: 10 ms in the last cell of second 1, 20 ms in
	// the first of second 2.
	b.Add(capture.Event{Time: 1990 * ms, Value: 30 * ms, Stack: st, PID: 1, TID: 1})
	// 3 s from 2.5 s on another thread: whole 20 ms cells up to 5.5 s.
	b.Add(capture.Event{Time: 2500 * ms, Value: 3 * sec, Stack: st, PID: 1, TID: 2})
	// Blocked since before the capture began: only the part inside counts.
	b.Add(capture.Event{Time: -500 * ms, Value: 510 * ms, Stack: st, PID: 1, TID: 3})
	h, err := Compute(b.Capture(), capture.Query{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if h.Unit != "ns" {
		t.Errorf("got unit %q, want ns", h.Unit)
	}
	checks := []struct {
		col, row int
		want     int64
	}{
		{0, 0, 10 * ms},
		{0, 1, 0},
		{1, 48, 0},
		{1, 49, 10 * ms},
		{2, 0, 20 * ms},
		{2, 1, 0},
		{2, 24, 0},
		{2, 25, 20 * ms},
		{4, 13, 20 * ms},
		{5, 24, 20 * ms},
		{5, 25, 0},
	}
	for _, ck := range checks {
		if got := h.Values[ck.col][ck.row]; got != ck.want {
			t.Errorf("cell [%d][%d] = %d ns, want %d", ck.col, ck.row, got, ck.want)
		}
	}
	if want := 30*ms + 3*sec + 10*ms; total(h) != want {
		t.Errorf("got total %d ns, want %d (blocked time is conserved)", total(h), want)
	}
	if h.Max != 20*ms {
		t.Errorf("got max %d, want %d: no cell holds more than its length per thread", h.Max, 20*ms)
	}
}

func TestOffCPUSpreadUnevenCells(t *testing.T) {
	// 49 rows: cells of 20.408... ms whose edges fall between nanoseconds.
	b := capture.NewBuilder(capture.Meta{Type: capture.OffCPU, Duration: 2 * time.Second, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})})
	b.Add(capture.Event{Time: 123_456_789, Value: 1_234_567_891, Stack: st})
	h, err := Compute(b.Capture(), capture.Query{}, 49)
	if err != nil {
		t.Fatal(err)
	}
	if total(h) != 1_234_567_891 {
		t.Errorf("got total %d, want 1234567891", total(h))
	}
	if h.Max > sec/49+1 {
		t.Errorf("max %d exceeds one 49-row cell (%d ns)", h.Max, sec/49+1)
	}
}

func TestOtherTypesSumValues(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.Mem, Event: "malloc", Duration: time.Second, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})})
	b.Add(capture.Event{Time: 10 * ms, Value: 4096, Value2: 1, Stack: st})
	b.Add(capture.Event{Time: 15 * ms, Value: 100, Value2: 1, Stack: st})
	b.Add(capture.Event{Time: 990 * ms, Value: 7, Value2: 1, Stack: st})
	h, err := Compute(b.Capture(), capture.Query{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if h.Unit != "bytes" || h.Values[0][0] != 4196 || h.Values[0][9] != 7 || h.Max != 4196 {
		t.Errorf("got unit %q, cells %v, max %d; want bytes, 4196 in row 0, 7 in row 9", h.Unit, h.Values[0], h.Max)
	}
}

func TestLongCaptureWidensColumns(t *testing.T) {
	tests := []struct {
		dur     time.Duration
		colSecs float64
		cols    int
	}{
		{10 * time.Second, 1, 10},
		{300 * time.Second, 1, 300},
		{301 * time.Second, 2, 151},
		{time.Hour, 15, 240},
		{30 * 24 * time.Hour, 10800, 240},
	}
	for _, tt := range tests {
		t.Run(tt.dur.String(), func(t *testing.T) {
			b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Duration: tt.dur, Timestamps: true})
			st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})})
			last := int64(tt.dur) - 1
			b.Add(capture.Event{Time: 0, Value: 1, Stack: st})
			b.Add(capture.Event{Time: last, Value: 1, Stack: st})
			h, err := Compute(b.Capture(), capture.Query{}, 50)
			if err != nil {
				t.Fatal(err)
			}
			if h.ColumnSeconds != tt.colSecs || h.Columns != tt.cols {
				t.Errorf("got %d columns of %gs, want %d of %gs", h.Columns, h.ColumnSeconds, tt.cols, tt.colSecs)
			}
			if h.Columns > MaxColumns {
				t.Errorf("%d columns is over the limit of %d", h.Columns, MaxColumns)
			}
			lastCol := int(last / int64(h.ColumnSeconds*1e9))
			lastRow := int(float64(last)/1e9/h.ColumnSeconds*float64(h.Rows)) % h.Rows
			if lastCol != h.Columns-1 || h.Values[0][0] != 1 || h.Values[lastCol][lastRow] != 1 || total(h) != 2 {
				t.Errorf("first and last samples not in [0][0] and [%d][%d] of %d columns", lastCol, lastRow, h.Columns)
			}
		})
	}
}

func TestEventsAfterDurationExtendTheGrid(t *testing.T) {
	// Imported perf scripts may have a duration shorter than their events.
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})})
	b.Add(capture.Event{Time: 7*sec + 500*ms, Value: 1, Stack: st})
	h, err := Compute(b.Capture(), capture.Query{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if h.Columns != 8 || h.Values[7][5] != 1 {
		t.Errorf("got %d columns, want 8 with the sample in [7][5]", h.Columns)
	}
}

func TestErrors(t *testing.T) {
	c, _ := phased(t)
	if _, err := Compute(c, capture.Query{}, 7); err == nil || !strings.Contains(err.Error(), "10, 25, 49, 50, 99, 100") {
		t.Errorf("rows 7: got %v, want an error naming the allowed values", err)
	}
	noTS := capture.NewBuilder(capture.Meta{Type: capture.CPU, Source: "folded"}).Capture()
	if _, err := Compute(noTS, capture.Query{}, 50); !errors.Is(err, ErrNoTimestamps) || !strings.Contains(err.Error(), "this capture has no timestamps") {
		t.Errorf("no timestamps: got %v", err)
	}
	bad := capture.NewBuilder(capture.Meta{Type: capture.OffCPU, Timestamps: true})
	bad.Add(capture.Event{Time: 1 << 62, Value: 1 << 62})
	if _, err := Compute(bad.Capture(), capture.Query{}, 50); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("huge times: got %v, want an out of range error", err)
	}
}

func TestParseRows(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", 50, false},
		{"10", 10, false},
		{"49", 49, false},
		{"99", 99, false},
		{"100", 100, false},
		{"0", 0, true},
		{"51", 0, true},
		{"-10", 0, true},
		{"ten", 0, true},
		{"1e2", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRows(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRows(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "allowed values are 10, 25, 49, 50, 99, 100") {
			t.Errorf("ParseRows(%q): error %q does not name the allowed values", tt.in, err)
		}
	}
}

func TestJSONShape(t *testing.T) {
	c, _ := phased(t)
	h, err := Compute(c, capture.Query{}, 25)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Start         *float64  `json:"start"`
		ColumnSeconds *float64  `json:"column_seconds"`
		Columns       *int      `json:"columns"`
		Rows          *int      `json:"rows"`
		Unit          *string   `json:"unit"`
		Values        [][]int64 `json:"values"`
		Max           *int64    `json:"max"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Start == nil || got.ColumnSeconds == nil || got.Columns == nil || got.Rows == nil || got.Unit == nil || got.Max == nil {
		t.Fatalf("missing fields in %s", data[:200])
	}
	if *got.Columns != 5 || *got.Rows != 25 || len(got.Values) != 5 || len(got.Values[0]) != 25 || *got.Unit != "samples" || *got.Max != h.Max {
		t.Errorf("unexpected shape: columns %d rows %d values %dx%d unit %q max %d", *got.Columns, *got.Rows, len(got.Values), len(got.Values[0]), *got.Unit, *got.Max)
	}
}

func FuzzCompute(f *testing.F) {
	f.Add([]byte{0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		types := []capture.Type{capture.CPU, capture.OffCPU, capture.Mem}
		typ := types[int(data[0])%len(types)]
		rows := AllowedRows[int(data[1])%len(AllowedRows)]
		b := capture.NewBuilder(capture.Meta{Type: typ, Timestamps: true, Duration: time.Duration(data[1]) * time.Second})
		st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})})
		n := 0
		for p := data[2:]; len(p) >= 16; p = p[16:] {
			b.Add(capture.Event{Time: int64(binary.LittleEndian.Uint64(p)), Value: int64(binary.LittleEndian.Uint64(p[8:])), Stack: st})
			n++
		}
		h, err := Compute(b.Capture(), capture.Query{}, rows)
		if err != nil {
			if !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if h.Columns < 1 || h.Columns > MaxColumns || len(h.Values) != h.Columns {
			t.Fatalf("got %d columns (%d value columns)", h.Columns, len(h.Values))
		}
		if typ == capture.CPU && total(h) > int64(n) {
			t.Fatalf("%d samples counted from %d events", total(h), n)
		}
		if typ == capture.OffCPU {
			for _, col := range h.Values {
				for _, v := range col {
					if v < 0 || float64(v) > h.ColumnSeconds*1e9/float64(rows)*float64(n)+float64(n) {
						t.Fatalf("cell value %d outside 0..cell length x %d events", v, n)
					}
				}
			}
		}
	})
}

func total(h *Heatmap) int64 {
	var s int64
	for _, col := range h.Values {
		for _, v := range col {
			s += v
		}
	}
	return s
}

func TestWriteJSON(t *testing.T) {
	c, hotN := phased(t)
	var buf strings.Builder
	if err := WriteJSON(&buf, c, capture.Query{Comm: "app"}, 10); err != nil {
		t.Fatal(err)
	}
	var h Heatmap
	if err := json.Unmarshal([]byte(buf.String()), &h); err != nil {
		t.Fatal(err)
	}
	// 100 ms cells: the hot 200 ms of seconds 2 and 3 fill rows 0 and 1.
	if h.Rows != 10 || h.Values[2][0] != hotN/4 || h.Values[3][1] != hotN/4 || total(&h) != hotN {
		t.Errorf("got rows %d, [2][0]=%d [3][1]=%d total %d; want 10, %d, %d, %d", h.Rows, h.Values[2][0], h.Values[3][1], total(&h), hotN/4, hotN/4, hotN)
	}
	if err := WriteJSON(&buf, capture.NewBuilder(capture.Meta{Type: capture.CPU}).Capture(), capture.Query{}, 50); !errors.Is(err, ErrNoTimestamps) {
		t.Errorf("no timestamps: got %v", err)
	}
}
