package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateOperational(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"webhook with secret", func(c *Config) { c.OperatorWebhook, c.OperatorWebhookSecret = "https://ops.example.com/h", secret }, ""},
		{"webhook without secret", func(c *Config) { c.OperatorWebhook = "https://ops.example.com/h" }, "operator_webhook_secret: is required"},
		{"bad secret", func(c *Config) { c.OperatorWebhook, c.OperatorWebhookSecret = "https://ops.example.com/h", "hunter2" }, "operator_webhook_secret:"},
		{"relative webhook", func(c *Config) { c.OperatorWebhook, c.OperatorWebhookSecret = "/h", secret }, "operator_webhook: must be an absolute"},
		{"secret without webhook", func(c *Config) { c.OperatorWebhookSecret = secret }, "operator_webhook: is required"},
		{"negative disable after", func(c *Config) { c.EndpointDisableAfter = -time.Hour }, "endpoint_disable_after:"},
		{"disable after off", func(c *Config) { c.EndpointDisableAfter = 0 }, ""},
		{"negative failing after", func(c *Config) { c.FailingAfter = -1 }, "failing_after:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatal("the error shows the secret")
			}
		})
	}
}
