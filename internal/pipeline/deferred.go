package pipeline

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Deferred is implemented by the error a Stage returns for a record (a
// lane) it has not finished and wants to process again at a later time:
// a strict endpoint's event that failed and holds its key. The record stays
// in the window, not done, and its key's later records wait behind it; it
// is started again once At has come. Out are records to commit meanwhile,
// in the next transaction, without the record's offset: the attempt record
// of the attempt made and the state that makes At durable. After an abort
// or a crash the record is processed again from the start, and the stage
// reads that state to know when it is due.
type Deferred interface {
	error
	Deferred() (at time.Time, out []*kgo.Record)
}

// DeferredOf returns the Deferred in err's chain, if any.
func DeferredOf(err error) (Deferred, bool) {
	var d Deferred
	if errors.As(err, &d) {
		return d, true
	}
	return nil, false
}
