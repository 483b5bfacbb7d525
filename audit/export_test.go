package audit

// SetVerifyChunk sets how many entries Verify reads from a RangeSource at a time (a power of
// two) until the returned function restores it. Tests only; not concurrently with Verify.
func SetVerifyChunk(n uint64) (restore func()) {
	old := verifyChunk
	verifyChunk = n
	return func() { verifyChunk = old }
}
