package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookline/hookline/internal/topics"
)

// provision creates the topics, waiting for a broker that is still starting,
// and returns once the client's metadata knows every topic.
func provision(ctx context.Context, set topics.Set, adm *kadm.Client, log *slog.Logger) error {
	b := backoff.NewExponentialBackOff()
	b.MaxElapsedTime = time.Minute
	return backoff.RetryNotify(func() error {
		err := KafkaAuthError(set.Provision(ctx, adm))
		if errors.Is(err, topics.ErrPartitionMismatch) || errors.Is(err, ErrKafkaAuth) {
			return backoff.Permanent(err)
		}
		if err != nil {
			return err
		}
		// kgo caches "unknown topic" for a while; asking for authorized
		// operations forces a fresh metadata request that refreshes it.
		ds, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), set.Provisioned()...)
		if err = KafkaAuthError(err); errors.Is(err, ErrKafkaAuth) {
			return backoff.Permanent(err)
		}
		if err != nil {
			return err
		}
		for _, t := range set.Provisioned() {
			if d, ok := ds[t]; !ok || d.Err != nil {
				return fmt.Errorf("topic %s not visible yet", t)
			}
		}
		// On a cluster, a broker's metadata can lag a create: wait until
		// every partition has a leader that answers for it.
		ends, err := adm.ListEndOffsets(ctx, set.Provisioned()...)
		if err != nil {
			return err
		}
		return ends.Error()
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		log.Warn("provision topics, retrying", "err", err, "wait", wait)
	})
}
