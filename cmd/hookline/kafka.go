package main

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/topics"
)

// connect opens a client to the configured cluster: --brokers, or, when none
// are set, the embedded broker of a running `hookline serve` at --kafka-listen.
// It also returns the options beyond the seed brokers (TLS, SASL) that any
// further client of the cluster needs.
func connect(cfg config.Config) (*kgo.Client, []kgo.Opt, topics.Set, error) {
	brokers := cfg.Brokers
	if cfg.Embedded() {
		brokers = []string{cfg.KafkaListen}
	}
	set := topics.New(cfg.TopicPrefix, cfg.Tiers, cfg.TierScale, int32(cfg.Partitions), int16(cfg.ReplicationFactor))
	secure, err := app.KafkaOpts(cfg)
	if err != nil {
		return nil, nil, set, err
	}
	if !cfg.Embedded() && cfg.KafkaTLS && cfg.KafkaTLSInsecureSkipVerify {
		fmt.Fprintln(os.Stderr, "warning: kafka_tls_insecure_skip_verify is on: the brokers' certificates are not verified; anyone on the network path can impersonate the cluster")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, secure...)...)
	if err != nil {
		return nil, nil, set, fmt.Errorf("connect to kafka %v: %w", brokers, err)
	}
	return cl, secure, set, nil
}
