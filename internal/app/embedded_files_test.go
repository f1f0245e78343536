package app

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The embedded broker's data is readable by its own user only: its
// directory and every directory under it 0700, every file 0600, both for
// one it creates and for one left looser by an older version. A data
// directory it creates is 0700; an existing one keeps its mode.
func TestEmbeddedDataIsPrivate(t *testing.T) {
	for _, tt := range []struct {
		name        string
		prepare     func(t *testing.T, dir string)
		dataDirMode fs.FileMode
	}{
		{"new data dir", func(*testing.T, string) {}, 0o700},
		{"existing loose data dir", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "kafka", "old"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "kafka", "old", "state"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, 0o755},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tt.prepare(t, dir)
			e, err := StartEmbedded("127.0.0.1:0", dir, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			e.Close()

			info, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.dataDirMode; info.Mode().Perm() != want {
				t.Errorf("data dir is %v, want %v", info.Mode().Perm(), want)
			}
			files := 0
			err = filepath.WalkDir(filepath.Join(dir, "kafka"), func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				want := fs.FileMode(0o600)
				if d.IsDir() {
					want = 0o700
				} else {
					files++
				}
				if got := info.Mode().Perm(); got != want {
					t.Errorf("%s is %v, want %v", path, got, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if files == 0 {
				t.Fatal("the broker wrote no files to check")
			}
		})
	}
}
