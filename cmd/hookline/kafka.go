package main

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/config"
	"github.com/hookline/hookline/topics"
)

// connect opens a client to the configured cluster: --brokers, or, when none
// are set, the embedded broker of a running `hookline serve` at --kafka-listen.
func connect(cfg config.Config) (*kgo.Client, topics.Set, error) {
	brokers := cfg.Brokers
	if cfg.Embedded() {
		brokers = []string{cfg.KafkaListen}
	}
	set := topics.New(cfg.TopicPrefix, cfg.Tiers, cfg.TierScale, int32(cfg.Partitions), int16(cfg.ReplicationFactor))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, set, fmt.Errorf("connect to kafka %v: %w", brokers, err)
	}
	return cl, set, nil
}
