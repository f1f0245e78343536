package main

import (
	"context"
	"strings"
	"testing"
)

// The CLI refuses a reserved header by name, before it connects to Kafka.
func TestEndpointsRefusesReservedHeaders(t *testing.T) {
	for _, sub := range []string{"add", "update"} {
		for _, name := range []string{"Webhook-Id", "content-type", "Content-Length", "Host"} {
			args := []string{sub, "--header", name + ": x", "--brokers", "127.0.0.1:1"}
			if sub == "add" {
				args = append(args, "--url", "https://hooks.example.com/in")
			} else {
				args = append([]string{sub, "ep_1"}, args[1:]...)
			}
			err := runEndpoints(context.Background(), args)
			if err == nil || !strings.Contains(err.Error(), "--header "+name) {
				t.Errorf("endpoints %s --header %q: %v; want a refusal naming the header", sub, name, err)
			}
		}
	}
	if err := (headerFlags{}).Set("no colon"); err == nil {
		t.Error("--header without a colon was accepted")
	}
}
