// Package groupcommit is the batching queue both stores write through: concurrent callers
// hand their work to a few writer goroutines, each of which takes every call waiting (up to
// a size and a number of callers), has the store commit them together in one transaction
// (its flush function), and answers each caller. Only the flush function is the store's;
// the batching, draining, carry-over, cancellation and answering live here, once (compare
// transparency-dev/tessera storage/internal/queue.go).
//
// A call whose context is done before a writer takes it is answered with the context's
// error and never reaches the flush function; once taken, it is committed (or fails) with
// its group, whatever happens to its context, so that a nil error always means written and
// an error means not written.
package groupcommit

import (
	"context"
	"sync"
)

// Options configures a Queue.
type Options struct {
	// MaxBatch is the most work (as counted by the size function) one group takes. A single
	// call is never split, so one call may exceed it. Must be positive.
	MaxBatch int
	// MaxCallers, if positive, is the most calls one group takes.
	MaxCallers int
	// Writers is the number of writer goroutines (at least one).
	Writers int
	// Closed is the error a call gets after Close.
	Closed error
}

// Call is one caller's work in a group. The flush function sets First and Err.
type Call[T any] struct {
	Ctx  context.Context // the caller's; the flush function must not bound the commit by it
	Work T
	// First is returned to the caller with Err (the stores use it for the index of the
	// call's first audit entry).
	First uint64
	Err   error

	reply chan struct{}
}

// Queue batches calls for a flush function.
type Queue[T any] struct {
	opts    Options
	size    func(T) int
	flush   func([]*Call[T])
	reqs    chan *Call[T] // unbuffered: a send completes when a writer takes the call
	closing chan struct{}
	writers sync.WaitGroup
	once    sync.Once
}

// New starts a queue whose writers commit groups with flush. flush gets the calls of one
// group that were live when taken (at least one), in the order they were taken, and sets
// each call's result before it returns; it runs on one writer goroutine at a time per group,
// and with Writers > 1 groups may be flushed concurrently. size returns how much of MaxBatch
// a call's work takes.
func New[T any](opts Options, size func(T) int, flush func([]*Call[T])) *Queue[T] {
	if opts.Writers < 1 {
		opts.Writers = 1
	}
	if opts.MaxBatch < 1 {
		opts.MaxBatch = 1
	}
	q := &Queue[T]{opts: opts, size: size, flush: flush,
		reqs: make(chan *Call[T]), closing: make(chan struct{})}
	for range opts.Writers {
		q.writers.Go(q.writer)
	}
	return q
}

// Submit hands work to a writer and waits for its group's commit. If ctx is done before a
// writer takes it, Submit returns ctx.Err() and the work is not written; after Close it
// returns Options.Closed.
func (q *Queue[T]) Submit(ctx context.Context, work T) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c := &Call[T]{Ctx: ctx, Work: work, reply: make(chan struct{})}
	select {
	case q.reqs <- c:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-q.closing:
		return 0, q.opts.Closed
	}
	<-c.reply
	return c.First, c.Err
}

// Closed reports whether Close has been called.
func (q *Queue[T]) Closed() bool {
	select {
	case <-q.closing:
		return true
	default:
		return false
	}
}

// Close stops taking calls and waits until every group already taken is committed and
// answered. Calls after the first do nothing.
func (q *Queue[T]) Close() {
	q.once.Do(func() {
		close(q.closing)
		q.writers.Wait()
	})
}

// writer takes groups until the queue is closing and it holds no call.
func (q *Queue[T]) writer() {
	var carry *Call[T] // taken, but did not fit the previous group
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-q.reqs:
			case <-q.closing:
				return
			}
		}
		group := []*Call[T]{first}
		n := q.size(first.Work)
	drain:
		for n < q.opts.MaxBatch && (q.opts.MaxCallers <= 0 || len(group) < q.opts.MaxCallers) {
			select {
			case c := <-q.reqs:
				if n+q.size(c.Work) > q.opts.MaxBatch {
					carry = c
					break drain
				}
				group = append(group, c)
				n += q.size(c.Work)
			default:
				break drain
			}
		}
		q.commit(group)
	}
}

// commit flushes the live calls of group and answers every call.
func (q *Queue[T]) commit(group []*Call[T]) {
	live := make([]*Call[T], 0, len(group))
	for _, c := range group {
		if err := c.Ctx.Err(); err != nil {
			c.Err = err // done before a writer took it up: not written
		} else {
			live = append(live, c)
		}
	}
	if len(live) > 0 {
		q.flush(live)
	}
	for _, c := range group {
		close(c.reply)
	}
}
