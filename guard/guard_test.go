package guard_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/guard"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := guard.NewLimiter(2, 3, clock) // 2/s, burst 3
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("over the burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key is limited by a's use")
	}
	mu.Lock()
	now = now.Add(500 * time.Millisecond)
	mu.Unlock()
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after refill")
	}
	if got := guard.RetryAfterSeconds(1500 * time.Millisecond); got != 2 {
		t.Fatalf("RetryAfterSeconds = %d", got)
	}
}

func TestConcurrency(t *testing.T) {
	c := guard.NewConcurrency(2)
	first, second, third := c.Acquire("k"), c.Acquire("k"), c.Acquire("k")
	if !first || !second || third {
		t.Fatal("limit of 2 not enforced")
	}
	c.Release("k")
	if !c.Acquire("k") || c.InFlight("k") != 2 {
		t.Fatal("release did not free a slot")
	}
}

func TestListenerLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var rejected []string
	var mu sync.Mutex
	gl := guard.NewListener(ln, guard.ConnLimits{Total: 10, PerIP: 2}, func(r string) { mu.Lock(); rejected = append(rejected, r); mu.Unlock() })
	defer gl.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	a1, a2 := <-accepted, <-accepted
	// The third connection from the same address is closed by the server.
	_ = clients[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection from one address was not closed")
	}
	if gl.Open() != 2 {
		t.Fatalf("Open = %d, want 2", gl.Open())
	}
	a1.Close()
	c4, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	select {
	case a4 := <-accepted:
		a4.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not reused")
	}
	a2.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) != 1 || rejected[0] != "per_ip" {
		t.Fatalf("rejected = %v", rejected)
	}
	for _, c := range clients {
		c.Close()
	}
}

func TestLimiterSetRate(t *testing.T) {
	now := time.Unix(1000, 0)
	l := guard.NewLimiter(10, 4, func() time.Time { return now })
	l.Allow("a") // the bucket exists before the change
	l.SetRate(5, 2)
	allowed := 0
	for i := 0; i < 10; i++ {
		if ok, _ := l.Allow("a"); ok {
			allowed++
		}
		if ok, _ := l.Allow("new"); ok {
			allowed++
		}
	}
	if allowed > 4 {
		t.Fatalf("after halving the burst to 2, %d of 20 quick requests from two keys passed", allowed)
	}
}
