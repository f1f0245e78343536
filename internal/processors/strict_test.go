package processors

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func holdRecord(t *testing.T, off int64, key []byte, h *Hold) *kgo.Record {
	t.Helper()
	r := &kgo.Record{Offset: off, Key: key}
	if h != nil {
		h.V = HoldVersion
		v, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		r.Value = v
	}
	return r
}

// What a new owner loads from the holds topic, and which releases apply.
func TestHoldsLoadAndApply(t *testing.T) {
	k := HoldKey("ep", []byte("K"))
	since := time.UnixMilli(1_700_000_000_000).UTC()
	dead := Hold{EndpointID: "ep", EventID: "e1", ParkOffset: 7, Since: since, Attempts: 5, State: HoldDead}
	for _, tc := range []struct {
		name      string
		recs      []*Hold
		apply     *Hold
		wantHeld  bool
		wantState string
	}{
		{"a tombstone releases", []*Hold{{EventID: "e1", ParkOffset: 7}, nil}, nil, false, ""},
		{"the latest value wins", []*Hold{{EventID: "e1", ParkOffset: 7, Attempts: 1}, {EventID: "e1", ParkOffset: 7, Attempts: 2}}, nil, true, ""},
		{"a loaded release keeps the dead hold's facts", []*Hold{&dead, {EventID: "e1", ParkOffset: 7, State: HoldSkip, By: "op"}}, nil, true, HoldSkip},
		{"a release applies to the dead hold of its event", []*Hold{&dead}, &Hold{EventID: "e1", ParkOffset: 7, State: HoldReplay}, true, HoldReplay},
		{"a release of another event is ignored", []*Hold{&dead}, &Hold{EventID: "e0", ParkOffset: 3, State: HoldSkip}, true, HoldDead},
		{"a release of a key still retrying is ignored", []*Hold{{EventID: "e1", ParkOffset: 7}}, &Hold{EventID: "e1", ParkOffset: 7, State: HoldSkip}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := NewHolds()
			var recs []*kgo.Record
			for i, h := range tc.recs {
				var c *Hold
				if h != nil {
					cp := *h
					c = &cp
				}
				recs = append(recs, holdRecord(t, int64(i), k, c))
			}
			if err := hs.Load(3, recs); err != nil {
				t.Fatal(err)
			}
			if tc.apply != nil {
				hs.Apply(3, k, *tc.apply)
			}
			h, ok := hs.get(3, k)
			if ok != tc.wantHeld || h.State != tc.wantState {
				t.Fatalf("held %v state %q, want %v %q", ok, h.State, tc.wantHeld, tc.wantState)
			}
			if tc.name == "a loaded release keeps the dead hold's facts" && (!h.Since.Equal(since) || h.Attempts != 5 || h.By != "op") {
				t.Errorf("merged hold %+v lost the dead hold's since or attempts, or the release's operator", h)
			}
			if n := hs.Len(); (n == 1) != tc.wantHeld {
				t.Errorf("Len = %d", n)
			}
		})
	}
	hs := NewHolds()
	if err := hs.Load(0, []*kgo.Record{{Key: k, Value: []byte(`{"v":99}`)}}); err == nil {
		t.Error("a hold of an unknown version loaded without an error")
	}
}

func TestHoldKeyRoundTrip(t *testing.T) {
	ep, key, ok := SplitHoldKey(HoldKey("ep.1", []byte("a\x00b")))
	if !ok || ep != "ep.1" || string(key) != "a\x00b" {
		t.Errorf("SplitHoldKey(HoldKey) = %q %q %v", ep, key, ok)
	}
}
