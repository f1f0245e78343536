package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Given tells a setting found in the file, the environment or the flags
// from one left at its default.
func TestGiven(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(file, []byte("partitions: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOOKLINE_CONFIG": file, "HOOKLINE_JITTER": "0.1"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := Load(fs, []string{"--tier-scale", "0.5"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"partitions": true, "jitter": true, "tier_scale": true, "listen": false, "analytics_retention": false} {
		if got := Given(fs, name); got != want {
			t.Errorf("Given(%q) = %v, want %v", name, got, want)
		}
	}
	if Given(flag.NewFlagSet("none", flag.ContinueOnError), "partitions") {
		t.Error("Given on a flag set Load never saw")
	}
}
