package endpoints

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const testTopic = "hookline.endpoints"

// testCluster is a kfake cluster on an in-memory network, so that a test
// that waits for a registry may run in a synctest bubble: a goroutine
// blocked on loopback TCP is not durably blocked, and the bubble's clock
// could not advance.
type testCluster struct {
	*kfake.Cluster
	net *kfake.VirtualNetwork
}

// opts are the client options that reach the cluster.
func (c *testCluster) opts(more ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.Dialer(c.net.DialContext)}, more...)
}

// newBareCluster starts a cluster without topics; it is closed at the end
// of the test.
func newBareCluster(t *testing.T) *testCluster {
	t.Helper()
	// The port is only a name on the in-memory network. Nothing listens on
	// port 1 of the host: a client left without the virtual dialer fails
	// instead of reaching a real broker on the default port, 9092.
	vn := new(kfake.VirtualNetwork)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(1), kfake.ListenFn(vn.Listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &testCluster{Cluster: c, net: vn}
}

// newCluster starts a cluster with the endpoints topic.
func newCluster(t *testing.T) *testCluster {
	t.Helper()
	c := newBareCluster(t)
	if err := c.CreateTopic(testTopic, 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	return c
}

func newClient(t *testing.T, c *testCluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(c.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// startRegistry runs a registry on its own client until the test ends and
// waits until it has read the topic.
func startRegistry(t *testing.T, c *testCluster) *Registry {
	t.Helper()
	r := NewRegistry(newClient(t, c), testTopic, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func testEndpoint(t *testing.T, id string) Endpoint {
	t.Helper()
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return Endpoint{ID: id, URL: "https://example.com/hooks/" + id, Secrets: []string{secret}, Enabled: true}
}

// eventually polls cond until it holds or the deadline passes; in a
// synctest bubble its sleeps and deadline are virtual.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ids(eps []Endpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.ID
	}
	return out
}

func TestRegistryPutGetDelete(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, newCluster(t))

	e := testEndpoint(t, "ep_one")
	if err := r.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, ok := r.Get("ep_one")
	if !ok {
		t.Fatal("endpoint not visible right after Put")
	}
	if got.URL != e.URL || !slices.Equal(got.Secrets, e.Secrets) || !got.Enabled || got.CreatedAt.IsZero() {
		t.Fatalf("Get = %+v, want %+v with timestamps", got, e)
	}

	if err := r.Create(ctx, e); !errors.Is(err, ErrExists) {
		t.Fatalf("Create of an existing id = %v, want ErrExists", err)
	}

	if err := r.Disable(ctx, "ep_one", "HTTP 410 Gone"); err != nil {
		t.Fatal(err)
	}
	got, _ = r.Get("ep_one")
	if got.Enabled || got.DisabledReason != "HTTP 410 Gone" {
		t.Fatalf("after Disable: enabled=%v reason=%q", got.Enabled, got.DisabledReason)
	}
	if err := r.Disable(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Disable unknown = %v, want ErrNotFound", err)
	}

	if err := r.Delete(ctx, "ep_one"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get("ep_one"); ok {
		t.Fatal("endpoint still visible after Delete")
	}
	if err := r.Delete(ctx, "ep_one"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}

	bad := testEndpoint(t, "ep_bad")
	bad.URL = "ftp://example.com"
	var fe *FieldError
	if err := r.Put(ctx, bad); !errors.As(err, &fe) || fe.Field != "url" {
		t.Fatalf("Put of an invalid endpoint = %v, want a url FieldError", err)
	}
	if len(r.List()) != 0 {
		t.Fatalf("List = %v, want empty", ids(r.List()))
	}
}

func TestRegistryGetReturnsCopies(t *testing.T) {
	r := startRegistry(t, newCluster(t))
	e := testEndpoint(t, "ep_copy")
	if err := r.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Get("ep_copy")
	got.Secrets[0] = "changed"
	again, _ := r.Get("ep_copy")
	if again.Secrets[0] != e.Secrets[0] {
		t.Fatal("changing a returned endpoint changed the registry")
	}
}

func TestRegistrySecondProcessSeesChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newCluster(t)
		a := startRegistry(t, c)
		b := startRegistry(t, c)

		if err := a.Put(ctx, testEndpoint(t, "ep_shared")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "second registry sees the new endpoint", func() bool {
			_, ok := b.Get("ep_shared")
			return ok
		})
		if err := a.Disable(ctx, "ep_shared", "paused by operator"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "second registry sees the endpoint disabled", func() bool {
			e, _ := b.Get("ep_shared")
			return !e.Enabled
		})
		if err := b.Delete(ctx, "ep_shared"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "first registry sees the tombstone", func() bool {
			_, ok := a.Get("ep_shared")
			return !ok
		})
	})
}

func TestRegistryRestartRebuildsState(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	first := NewRegistry(newClient(t, c), testTopic, nil)
	// Writing needs no Run: a CLI can add endpoints without tailing the topic.
	for i := range 5 {
		if err := first.Put(ctx, testEndpoint(t, fmt.Sprintf("ep_%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Delete(ctx, "ep_1"); err != nil {
		t.Fatal(err)
	}
	changed := testEndpoint(t, "ep_3")
	changed.URL = "https://example.org/v2"
	changed.TimeoutMS = 2500
	if err := first.Put(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if err := first.Disable(ctx, "ep_4", "HTTP 410 Gone"); err != nil {
		t.Fatal(err)
	}

	restarted := startRegistry(t, c)
	if got, want := ids(restarted.List()), []string{"ep_0", "ep_2", "ep_3", "ep_4"}; !slices.Equal(got, want) {
		t.Fatalf("after restart List = %v, want %v", got, want)
	}
	e3, _ := restarted.Get("ep_3")
	if e3.URL != changed.URL || e3.Timeout() != 2500*time.Millisecond {
		t.Fatalf("after restart ep_3 = %+v, want the last version", e3)
	}
	e4, _ := restarted.Get("ep_4")
	if e4.Enabled || e4.DisabledReason != "HTTP 410 Gone" {
		t.Fatalf("after restart ep_4 = %+v, want disabled", e4)
	}
	if orig, _ := first.Get("ep_3"); !e3.CreatedAt.Equal(orig.CreatedAt) {
		t.Fatalf("created_at changed over restart: %v vs %v", e3.CreatedAt, orig.CreatedAt)
	}
}

func TestRegistryReadyOnEmptyTopic(t *testing.T) {
	r := startRegistry(t, newCluster(t))
	if n := len(r.List()); n != 0 {
		t.Fatalf("List on an empty topic has %d endpoints", n)
	}
}

func TestRegistryMissingTopic(t *testing.T) {
	c := newBareCluster(t)
	r := NewRegistry(newClient(t, c), "does-not-exist", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); err == nil {
		t.Fatal("Run on a missing topic returned nil")
	}
	if err := r.WaitReady(ctx); err == nil {
		t.Fatal("WaitReady after a failed Run returned nil")
	}
}

func TestRegistryByTenant(t *testing.T) {
	ctx := context.Background()
	r := startRegistry(t, newCluster(t))
	put := func(id, tenant string, enabled bool, types ...string) {
		e := testEndpoint(t, id)
		e.Tenant, e.Enabled, e.EventTypes = tenant, enabled, types
		if err := r.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	put("a_all", "acme", true)
	put("b_invoice", "acme", true, "invoice.*")
	put("c_paid", "acme", true, "invoice.paid", "user.created")
	put("d_disabled", "acme", false)
	put("e_other", "globex", true)
	put("f_users", "acme", true, "user.*")

	for _, tc := range []struct {
		tenant, eventType string
		want              []string
	}{
		{"acme", "invoice.paid", []string{"a_all", "b_invoice", "c_paid"}},
		{"acme", "invoice.created", []string{"a_all", "b_invoice"}},
		{"acme", "invoice", []string{"a_all"}},
		{"acme", "user.created", []string{"a_all", "c_paid", "f_users"}},
		{"globex", "invoice.paid", []string{"e_other"}},
		{"nobody", "invoice.paid", nil},
	} {
		t.Run(tc.tenant+"/"+tc.eventType, func(t *testing.T) {
			if got := ids(r.ByTenant(tc.tenant, tc.eventType)); !slices.Equal(got, tc.want) {
				t.Fatalf("ByTenant = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRegistryIgnoresStaleRecords(t *testing.T) {
	r := NewRegistry(nil, testTopic, nil)
	newer := &kgo.Record{Key: []byte("ep"), Value: []byte(`{"url":"https://new.example"}`), Offset: 5}
	older := &kgo.Record{Key: []byte("ep"), Value: []byte(`{"url":"https://old.example"}`), Offset: 3}
	r.apply(newer)
	r.apply(older)
	if e, _ := r.Get("ep"); e.URL != "https://new.example" {
		t.Fatalf("an older record replaced a newer one: %+v", e)
	}
	r.apply(&kgo.Record{Key: []byte("ep"), Offset: 6})
	r.apply(older)
	if _, ok := r.Get("ep"); ok {
		t.Fatal("an older record resurrected a deleted endpoint")
	}
	r.apply(&kgo.Record{Key: []byte("bad"), Value: []byte("{"), Offset: 7})
	if _, ok := r.Get("bad"); ok {
		t.Fatal("a malformed record was applied")
	}
}
