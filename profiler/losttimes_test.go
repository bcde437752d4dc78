package profiler

import (
	"reflect"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

func TestLostTimesMark(t *testing.T) {
	var st capture.Stats
	var l lostTimes
	l.mark(&st, []uint64{0, 0}, 0, 250)   // nothing lost yet
	l.mark(&st, []uint64{5, 0}, 0, 500)   // cpu 0 lost 5
	l.mark(&st, []uint64{5, 2}, 1, 750)   // cpu 1 lost 2, one record undecodable
	l.mark(&st, []uint64{9, 2}, 1, 750)   // no time passed: wait for the next look
	l.mark(&st, nil, 1, 900)              // the counters could not be read
	l.mark(&st, []uint64{12, 2}, 1, 1000) // cpu 0: 7 more since 750
	want := []capture.LostSpan{
		{From: 250, To: 500, CPU: 0, Count: 5},
		{From: 500, To: 750, CPU: 1, Count: 2},
		{From: 500, To: 750, CPU: -1, Count: 1},
		{From: 750, To: 1000, CPU: 0, Count: 7},
	}
	if !reflect.DeepEqual(st.LostAt, want) {
		t.Errorf("spans\n got %+v\nwant %+v", st.LostAt, want)
	}
}
