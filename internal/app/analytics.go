package app

import (
	"context"

	"github.com/hookline/hookline/internal/analytics"
	"github.com/hookline/hookline/internal/config"
)

// AnalyticsExtras runs analytics.Extras beside the stages, on the service's
// clients: the ClickHouse attempt sink and its pruner, when cfg names a
// ClickHouse server.
func AnalyticsExtras(cfg config.Config) []Extra {
	var out []Extra
	for _, x := range analytics.Extras(cfg) {
		out = append(out, func(ctx context.Context, env *Env) error {
			return x(ctx, analytics.Env{
				Brokers:       env.Brokers,
				KafkaOpts:     env.KafkaOpts,
				AttemptsTopic: env.Topics.Attempts,
				Registerer:    env.Prom,
				Logger:        env.Logger,
			})
		})
	}
	return out
}
