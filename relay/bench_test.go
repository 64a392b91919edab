package relay

import (
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/pvhub/pvhub/ca/wire"
)

func BenchmarkPutScalar(b *testing.B) {
	s := newState(b, "RELAY:bench_f1")
	v := dbl(0)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.Doubles[0] = float64(i)
		if err := s.Put(v, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutScalarFromString(b *testing.B) {
	s := newState(b, "RELAY:bench_f1")
	v := str("12.5")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Put(v, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutBuffer1000 appends one element to a full 1000-element buffer.
func BenchmarkPutBuffer1000(b *testing.B) {
	s := newState(b, "RELAY:bench_F1000")
	if err := s.Put(dbl(make([]float64, 1000)...), time.Now()); err != nil {
		b.Fatal(err)
	}
	v := dbl(0)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.Doubles[0] = float64(i)
		if err := s.Put(v, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutBuffer1000Value is a put to a full 1000-element buffer followed
// by Value, which is what a relay PV actor does to post the update.
func BenchmarkPutBuffer1000Value(b *testing.B) {
	s := newState(b, "RELAY:bench_F1000")
	if err := s.Put(dbl(make([]float64, 1000)...), time.Now()); err != nil {
		b.Fatal(err)
	}
	v := dbl(0)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.Doubles[0] = float64(i)
		if err := s.Put(v, now); err != nil {
			b.Fatal(err)
		}
		_ = s.Value()
	}
}

// TestStateMemory reports the heap taken by 100,000 scalar states, each with
// its name and one value, and by the same states with units set.
func TestStateMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 states")
	}
	const n = 100_000
	measure := func(setup func(*State)) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		states := make([]*State, n)
		for i := range states {
			name, ok := ParseName(DefaultPrefix, "RELAY:pv"+strconv.Itoa(100000+i)+"_f1")
			if !ok {
				t.Fatal("bad name")
			}
			states[i] = New(name)
			setup(states[i])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(states)
		// The slice of pointers is the caller's, not the states'.
		return (float64(after.HeapAlloc) - float64(before.HeapAlloc) - 8*n) / n
	}
	now := time.Now()
	v := dbl(1.5)
	plain := measure(func(s *State) {
		if err := s.Put(v, now); err != nil {
			t.Fatal(err)
		}
	})
	attrs := measure(func(s *State) {
		if err := s.Put(v, now); err != nil {
			t.Fatal(err)
		}
		if err := s.PutField("EGU", wire.Value{Type: wire.DBRString, Strings: []string{"mm"}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("a scalar state named RELAY:pvNNNNNN_f1 with a value takes %.0f bytes (State struct %d bytes); with EGU set, %.0f bytes",
		plain, stateSize, attrs)
	if plain > 256 {
		t.Errorf("a scalar state takes %.0f bytes, more than 256", plain)
	}
}

// stateSize is the size of the State struct itself.
const stateSize = int(unsafe.Sizeof(State{}))

// BenchmarkAutosave100k saves and loads 100,000 scalar PVs with a value.
func BenchmarkAutosave100k(b *testing.B) {
	pvs := make([]Saved, 100_000)
	for i := range pvs {
		pvs[i] = Saved{Name: "pv" + strconv.Itoa(i) + "_f1", Defined: true, Value: dbl(float64(i) / 7),
			Stamp: wire.TimestampOf(t0)}
	}
	path := b.TempDir() + "/relay.json"
	if err := Save(path, pvs); err != nil {
		b.Fatal(err)
	}
	b.Run("Save", func(b *testing.B) {
		for b.Loop() {
			if err := Save(path, pvs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := Load(path)
			if err != nil || len(got) != len(pvs) {
				b.Fatal(len(got), err)
			}
		}
	})
}
