package storetest

import (
	"testing"
	"time"
)

// testHeartbeat: nodes seen recently are counted; a node that stopped beating drops out.
func (s *suite) testHeartbeat(t *testing.T) {
	st := s.store(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	n, err := st.Heartbeat(ctxT(t), "node-a", now, 10*time.Second)
	must(t, "Heartbeat", err)
	if n != 1 {
		t.Fatalf("one node: Heartbeat = %d", n)
	}
	n, err = st.Heartbeat(ctxT(t), "node-b", now.Add(time.Second), 10*time.Second)
	must(t, "Heartbeat", err)
	if n != 2 {
		t.Fatalf("two nodes: Heartbeat = %d", n)
	}
	// node-a stops; 20 s later node-b is alone again.
	n, err = st.Heartbeat(ctxT(t), "node-b", now.Add(20*time.Second), 10*time.Second)
	must(t, "Heartbeat", err)
	if n != 1 {
		t.Fatalf("after node-a went quiet: Heartbeat = %d", n)
	}
}
