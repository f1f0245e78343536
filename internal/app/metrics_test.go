package app

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/internal/config"
)

// config.Default cannot refer to app's default (app imports config); this
// holds them equal.
func TestConfigDefaultsAreTheApps(t *testing.T) {
	c := config.Default()
	if c.MetricsEndpointLabels != DefaultEndpointLabels {
		t.Fatalf("config.Default has metrics_endpoint_labels %d; app's default is %d", c.MetricsEndpointLabels, DefaultEndpointLabels)
	}
}

// The endpoint label holds at most metrics_endpoint_labels endpoints; later
// ones count as _other, and 0 puts every endpoint there.
func TestEndpointLabelIsBounded(t *testing.T) {
	tests := []struct {
		name string
		max  int
		ids  []string
		want []string
	}{
		{"under the bound", 3, []string{"a", "b", "a"}, []string{"a", "b", "a"}},
		{"past the bound", 2, []string{"a", "b", "c", "a", "d", "b"}, []string{"a", "b", OtherEndpoint, "a", OtherEndpoint, "b"}},
		{"off", 0, []string{"a", "b"}, []string{OtherEndpoint, OtherEndpoint}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry(), tt.max)
			for i, id := range tt.ids {
				if got := m.endpoints.label(id); got != tt.want[i] {
					t.Errorf("label(%q) #%d = %q, want %q", id, i, got, tt.want[i])
				}
			}
		})
	}
}

func TestStatusLabel(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{200, "2xx"}, {204, "2xx"}, {301, "3xx"}, {400, "4xx"}, {401, "401"}, {403, "403"},
		{404, "4xx"}, {410, "4xx"}, {429, "4xx"}, {500, "5xx"}, {503, "5xx"}, {0, "none"}, {99, "none"}, {600, "none"},
	}
	for _, tt := range tests {
		if got := StatusLabel(tt.code); got != tt.want {
			t.Errorf("StatusLabel(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
}
